"""The Dockerfile and compose.yaml, parsed (no Docker daemon here: the image is never built in
CI; tests/deploy/test_topology.py runs its entrypoint roles directly)."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from tests.support.servers import ROOT

SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|DSN|CREDENTIAL", re.IGNORECASE)
BUILD_ONLY = ("gcc", "libmariadb-dev", "pkg-config", "gettext", "msgfmt")


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """[[(INSTRUCTION, arguments), …] per stage], continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [args for instruction, args in stage if instruction == name]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_image_is_multi_stage_on_python_311_slim():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        assert instructions(stage, "FROM")[0].startswith("python:3.11-slim")


def test_build_tools_stay_in_the_build_stage():
    build, *rest = dockerfile_stages()
    assert all(tool in " ".join(instructions(build, "RUN")) for tool in BUILD_ONLY)
    for stage in rest:
        runs = " ".join(instructions(stage, "RUN"))
        for tool in BUILD_ONLY:
            assert not re.search(rf"\b{re.escape(tool)}\b", runs), f"{tool} in the runtime image"


def test_the_runtime_runs_as_a_non_root_user():
    final = dockerfile_stages()[-1]
    users = instructions(final, "USER")
    assert users
    assert users[-1] not in ("root", "0", "0:0")
    # USER comes after the last RUN: nothing runs as root once it is set.
    order = [instruction for instruction, _ in final]
    assert order.index("USER") > max(i for i, name in enumerate(order) if name == "RUN")


def test_static_files_are_collected_at_build_and_the_healthcheck_probes_liveness():
    final = dockerfile_stages()[-1]
    assert any("collectstatic" in run for run in instructions(final, "RUN"))
    [healthcheck] = instructions(final, "HEALTHCHECK")
    assert "/health/live" in healthcheck


def test_the_message_catalogs_are_compiled_in_the_build_and_copied_over_the_code():
    """The guest e-mails' translations: .po in the repository, .mo built with the image (a .mo
    left in a working copy is not sent to the build)."""
    build, *_, final = dockerfile_stages()
    assert any("msgfmt --check" in run and "django.po" in run for run in instructions(build, "RUN"))
    copies = [args for instruction, args in final if instruction == "COPY"]
    code = next(i for i, args in enumerate(copies) if args.endswith(". /app"))
    catalogs = next(i for i, args in enumerate(copies) if "--from=build" in args and args.endswith("/app/locale"))
    assert catalogs > code
    assert "**/*.mo" in (ROOT / ".dockerignore").read_text().split()


def test_no_secret_in_env_or_arg():
    for stage in dockerfile_stages():
        for instruction in ("ENV", "ARG"):
            for args in instructions(stage, instruction):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]
                for name in names:
                    assert not SECRET_NAME.search(name), f"{instruction} {name} in the Dockerfile"


def test_one_entrypoint_with_the_three_roles():
    final = dockerfile_stages()[-1]
    assert instructions(final, "ENTRYPOINT") == ['["/app/deploy/entrypoint.sh"]']
    assert instructions(final, "CMD") == ['["web"]']
    entrypoint = ROOT / "deploy" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    roles = re.findall(r"^\s+([a-z]+)\)$", entrypoint.read_text(), re.MULTILINE)
    assert {"migrate", "web", "worker"} <= set(roles)


def test_secrets_and_local_files_are_not_sent_to_the_build():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv"} <= set(ignored)


def test_compose_has_mariadb_and_redis_with_healthchecks(compose):
    services = compose["services"]
    for name in ("mariadb", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_web_and_worker_wait_for_a_one_shot_migrate(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"mariadb": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
    for name, role in (("web", "web"), ("worker", "worker")):
        service = services[name]
        assert service["command"] == [role]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "container_name" not in service  # a fixed name cannot scale


def test_web_and_worker_can_scale_to_two(compose):
    web = compose["services"]["web"]
    [ports] = web["ports"]
    host = ports.rsplit(":", 1)[0]
    low, high = (int(p) for p in re.sub(r"\$\{WEB_PORTS:-([^}]+)\}", r"\1", host).split("-"))
    assert high - low + 1 >= 2  # one host port per replica
    assert "ports" not in compose["services"]["worker"]


def test_the_worker_gets_a_grace_period_longer_than_one_supplier_call(compose):
    from outbox.policy import call_budget_seconds

    grace = int(compose["services"]["worker"]["stop_grace_period"].rstrip("s"))
    assert grace > call_budget_seconds()
    assert "9100" in [str(p) for p in compose["services"]["worker"]["expose"]]


def test_the_demo_profile_adds_localstripe_and_the_fake_supplier(compose):
    services = compose["services"]
    for name in ("localstripe", "stripe", "fake-supplier"):
        assert services[name]["profiles"] == ["demo"]
    # The app talks to the stand-in that enforces production Stripe's rules, never to localstripe.
    assert "payments.local_stripe" in services["stripe"]["command"]
    assert "http://localstripe:8419" in services["stripe"]["command"]
    for name in ("mariadb", "redis", "migrate", "web", "worker"):
        assert "profiles" not in services[name]


def test_compose_holds_no_secret_value(compose):
    env = compose["x-app"]["environment"]
    for name, value in env.items():
        if SECRET_NAME.search(name):
            assert str(value).startswith("${"), f"{name} has a literal value"
    assert compose["services"]["mariadb"]["environment"]["MARIADB_PASSWORD"].startswith("${")
