"""deploy/prometheus/alerts.yml and the Grafana dashboard refer only to metrics /metrics (or the
worker's port) really exposes, and the alerts the operators asked for exist."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from common.metrics import counters_exposition, gauges_exposition
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db

METRIC = re.compile(r"\breserve_[a-z_]+\b")


def exposed_series_names() -> set[str]:
    text = (counters_exposition() + gauges_exposition()).decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        suffixes = {"histogram": ["_bucket", "_count", "_sum"]}.get(kind, [""])
        names.update(name + suffix for suffix in suffixes)
    return names


def test_the_alert_rules_cover_the_four_operator_alerts_with_exposed_metrics():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    exposed = exposed_series_names()

    assert alerts["ReserveDeadLetterOpen"]["expr"] == "sum(reserve_dead_letters_open) > 0"
    assert "> 300" in alerts["ReserveOutboxBacklogStale"]["expr"]
    assert 'state="open"' in alerts["ReserveCircuitBreakerOpen"]["expr"]
    assert alerts["ReserveCircuitBreakerOpen"]["for"] == "5m"
    assert "> 86400" in alerts["ReserveOnRequestOlderThanADay"]["expr"]
    for rule in alerts.values():
        for name in METRIC.findall(rule["expr"]):
            assert name in exposed, f"{rule['alert']} uses {name}, which is not exposed"


def test_the_dashboard_queries_exposed_metrics():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "reserve-and-charge.json").read_text())
    exposed = exposed_series_names()
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in METRIC.findall(target["expr"])}

    assert queried
    assert queried <= exposed, queried - exposed
