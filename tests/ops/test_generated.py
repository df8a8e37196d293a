"""The generated files under k8s/ are current, and the tables they come from are consistent."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from env_server import registry
from ops import dashboard, envs, generate, promql
from ops.__main__ import cli


def test_committed_generated_files_are_current() -> None:
    stale = [str(p.relative_to(generate.REPO)) for p in generate.stale()]
    assert not stale, f"stale generated files {stale}: run `python -m ops write`"


def test_the_check_command_passes_on_the_committed_files() -> None:
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output


def test_every_served_environment_has_a_profile() -> None:
    assert [p.name for p in envs.PROFILES] == registry.names()


def test_the_base_kustomization_lists_every_generated_env_file() -> None:
    kustomization = (generate.K8S / "base" / "kustomization.yaml").read_text()
    assert re.findall(r"envs/(\w+)\.yaml", kustomization) == registry.names()


def test_the_dashboard_file_is_the_generated_dashboard() -> None:
    assert json.loads(generate.DASHBOARD_JSON.read_text()) == dashboard.dashboard()


def test_dashboard_panels_have_unique_ids_and_fit_the_grid() -> None:
    panels = dashboard.dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels)
    placed = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
    assert len(set(placed)) == len(placed)


def test_every_expression_in_the_table_is_used() -> None:
    used = {q.key for row in promql.ROWS for p in row.panels for q in p.queries} | {a.measure for a in promql.ALERTS}
    assert used == set(promql.EXPRESSIONS)


def test_the_dashboard_covers_what_operators_watch() -> None:
    titles = " | ".join(p.title for row in promql.ROWS for p in row.panels).lower()
    for topic in ("steps/s", "latency", "active sessions", "errors", "success by env and interface",
                  "rollout episodes", "training steps"):
        assert topic in titles
