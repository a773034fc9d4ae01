"""The migration that creates the staff group runs after every migration that creates a model
the group holds permissions on, whatever order the planner picks for independent apps."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import CreateModel

from reservations.staff_group import PERMISSIONS

STAFF_GROUP_MIGRATION = ("reservations", "0004_reservations_staff_group")


def test_the_staff_group_migration_depends_on_every_model_it_grants(db):
    graph = MigrationLoader(connection, ignore_no_migrations=True).graph
    before = set(graph.forwards_plan(STAFF_GROUP_MIGRATION))
    creators = {(key[0], op.name.lower()): key for key in graph.nodes
                for op in graph.nodes[key].operations if isinstance(op, CreateModel)}
    models = {(app, Permission.objects.get(content_type__app_label=app, codename=codename).content_type.model)
              for app, codename in PERMISSIONS}

    missing = sorted(f"{app}.{model} (created by {creators[(app, model)][1]})" for app, model in models
                     if creators[(app, model)] not in before)

    assert missing == []
