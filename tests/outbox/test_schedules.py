"""Deploy = migrate (G4): the schedules exist after migrate, and readiness fails while one is
missing or stalled."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django_q.models import Schedule
from rest_framework.test import APIClient

from outbox.schedules import periodic_tasks
from tests.support.schedules import record_schedule_runs

pytestmark = pytest.mark.django_db


def test_migrate_creates_every_schedule_without_setup_schedules():
    Schedule.objects.all().delete()

    call_command("migrate", verbosity=0)  # nothing to apply: post_migrate still runs

    schedules = {s.name: s for s in Schedule.objects.all()}
    assert set(schedules) == {t.name for t in periodic_tasks()}
    for task in periodic_tasks():
        assert (schedules[task.name].func, schedules[task.name].minutes, schedules[task.name].repeats) == (
            task.func, task.minutes, -1)


def test_migrate_repairs_a_changed_schedule_and_keeps_its_next_run():
    call_command("migrate", verbosity=0)
    drain = Schedule.objects.get(name="outbox drain")
    Schedule.objects.filter(pk=drain.pk).update(func="outbox.tasks.gone", minutes=7)
    next_run = Schedule.objects.get(pk=drain.pk).next_run

    call_command("migrate", verbosity=0)

    repaired = Schedule.objects.get(name="outbox drain")
    assert (repaired.func, repaired.minutes) == ("outbox.tasks.outbox_drain_task", 1)
    assert repaired.next_run == next_run
    assert Schedule.objects.filter(name="outbox drain").count() == 1


def test_ready_is_ok_when_every_schedule_ran_recently():
    call_command("migrate", verbosity=0)
    record_schedule_runs()

    response = APIClient().get("/health/ready")

    assert response.status_code == 200
    schedules = response.json()["checks"]["schedules"]
    assert set(schedules) == {t.name for t in periodic_tasks()}
    assert all(s["status"] == "ok" and s["last_run_age_s"] < 60 for s in schedules.values())


def test_ready_is_503_while_a_schedule_is_missing():
    call_command("migrate", verbosity=0)
    record_schedule_runs()
    Schedule.objects.filter(name="payments reconcile").delete()

    response = APIClient().get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["schedules"]["payments reconcile"]["status"] == "missing"


def test_ready_is_503_when_a_schedule_last_ran_more_than_three_intervals_ago():
    call_command("migrate", verbosity=0)
    record_schedule_runs()
    Schedule.objects.filter(name="outbox drain").update(next_run="2000-01-01T00:00:00Z")
    record_schedule_runs(names=["outbox drain"], age=dt.timedelta(minutes=2))  # 2 intervals: fine
    assert APIClient().get("/health/ready").status_code == 200
    from django_q.models import Task

    Task.objects.filter(group="outbox drain").delete()
    record_schedule_runs(names=["outbox drain"], age=dt.timedelta(minutes=4))  # > 3 intervals

    response = APIClient().get("/health/ready")

    assert response.status_code == 503
    drain = response.json()["checks"]["schedules"]["outbox drain"]
    assert drain["status"] == "stalled"
    assert drain["last_run_age_s"] >= 240


def test_a_schedule_that_never_ran_is_stalled_three_intervals_after_it_was_due():
    call_command("migrate", verbosity=0)
    record_schedule_runs()
    from django_q.models import Task

    Task.objects.filter(group="reservation expiry").delete()
    Schedule.objects.filter(name="reservation expiry").update(
        next_run=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))

    assert APIClient().get("/health/ready").json()["checks"]["schedules"]["reservation expiry"]["status"] == "stalled"
