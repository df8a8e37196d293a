"""promtool checks the generated alert rules and runs their unit tests (alerts_test.yaml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from ops import alerts

HERE = Path(__file__).resolve().parent


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run scripts/install-ops-tools.sh (`make test` does)"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _rules_beside_tests(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": alerts.rule_groups()}, sort_keys=False))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    return tmp_path


def test_promtool_check_rules_passes(tmp_path: Path) -> None:
    done = _promtool("check", "rules", "rules.yaml", cwd=_rules_beside_tests(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in done.stdout


def test_promtool_rule_unit_tests_pass(tmp_path: Path) -> None:
    done = _promtool("test", "rules", "alerts_test.yaml", cwd=_rules_beside_tests(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for t in tests for case in t["alert_rule_test"] if not case["exp_alerts"]}
    names = {a.name for a in alerts.ALERTS}
    assert fired == names and quiet == names


def test_the_rule_file_is_the_prometheus_rule_spec() -> None:
    assert alerts.prometheus_rule()["spec"]["groups"] == alerts.rule_groups()
