"""The PrometheusRule of ShiftGym's alerts, built from ops.promql.ALERTS."""

from __future__ import annotations

from typing import Any

import yaml

from ops.promql import ALERTS, Alert

NAME = "shiftgym-alerts"


def _rule(alert: Alert) -> dict[str, Any]:
    return {
        "alert": alert.name,
        "expr": alert.expr(),
        "for": alert.for_,
        "labels": {"severity": alert.severity, "team": "shiftgym"},
        "annotations": {"summary": alert.summary, "description": alert.description},
    }


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups, as both a PrometheusRule's spec and a plain Prometheus rule file hold them."""
    return [{"name": "shiftgym", "rules": [_rule(a) for a in ALERTS]}]


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/component": "monitoring"}},
        "spec": {"groups": rule_groups()},
    }


def render() -> str:
    return yaml.safe_dump(prometheus_rule(), sort_keys=False, width=1000)
