"""A real Prometheus (Debian's package, on 127.0.0.1) scrapes live env servers, a real CPU training run and a
trainer stand-in (which also drives the failure series a healthy run never makes); every PromQL
expression of the generated dashboard and alerts must return series, and the alert rules must load and evaluate.

tests/ops/fake_trainer.py plays real episodes over the env servers and exports the trainer's series, including
refused resets, retries and failed rollouts that a healthy `shiftgym train` run does not produce.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from ops import alerts, dashboard, promql
from trainer.local_servers import REPO, LocalServer
from trainer.tiny import make_tiny
from tests.servers import free_port

NAMESPACE = "shiftgym"
# What Grafana puts in for the dashboard's variables; the rate window spans several of the 1 s scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$namespace": NAMESPACE, "$env": ".*"}
SETTLE_S = 60.0
REAL_TRAINER_POD = "shiftgym-trainer-real"
# Loopback only: never hand these requests to a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Prometheus:
    """One Prometheus process on loopback with a throwaway storage directory."""

    def __init__(self, workdir: Path, targets: dict[str, list[tuple[int, dict[str, str]]]]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: run scripts/install-ops-tools.sh (`make test` does)"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = workdir / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": alerts.rule_groups()}, sort_keys=False))
        # Target labels as prometheus-operator attaches them (job from jobLabel, namespace, service, pod).
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": NAMESPACE, **labels}}
                    for port, labels in found
                ]}
                for job, found in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            assert self.proc.poll() is None, f"prometheus exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with _LOCAL.open(f"{self.url}/-/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        with _LOCAL.open(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def all_expressions() -> dict[str, str]:
    exprs = {f"dashboard {title}: {expr}": grafana(expr) for title, expr in promql.dashboard_queries()}
    exprs.update({f"alert {a.name}: {a.measure_expr()}": a.measure_expr() for a in promql.ALERTS})
    return exprs


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    # textcraft takes 2 sessions at most, so the stand-in's third concurrent Reset is refused (RESOURCE_EXHAUSTED):
    # server-side errors, retries and failed rollouts get series too.
    with LocalServer("babyai", "--enable-oracle") as babyai, \
            LocalServer("textcraft", "--enable-oracle", "--max-sessions", "2") as textcraft:
        trainer = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.fake_trainer", "--target", f"babyai={babyai.target}",
             "--target", f"textcraft={textcraft.target}", "--duration-s", "240"],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )
        # Next to the stand-in, a real training run: `shiftgym train` (CPU GRPO on a tiny model) serving its
        # shiftgym_rollout_* and shiftgym_train_* series, scraped as another trainer pod.
        model = make_tiny(workdir / "tiny", envs=["babyai"], seed=0, vocab_size=512)
        real_port = free_port()
        real = subprocess.Popen(
            [sys.executable, "-m", "trainer.cli", "train", "--model", str(model), "--out", str(workdir / "trained"),
             "--env", "babyai", "--endpoints", babyai.target, "--steps", "1000", "--tasks-per-step", "2",
             "--group-size", "2", "--max-turns", "3", "--metrics-port", str(real_port)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            line = trainer.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("READY"), f"the trainer stand-in did not start: {line!r}"
            trainer_port = int(line.split("=")[1])
            prom = Prometheus(workdir, {
                promql.ENV_JOB: [(s.metrics_port, {"service": s.env, "pod": f"{s.env}-0"})
                                 for s in (babyai, textcraft)],
                promql.TRAINER_JOB: [(trainer_port, {"pod": "shiftgym-trainer-0"}),
                                     (real_port, {"pod": REAL_TRAINER_POD})],
            })
            try:
                deadline = time.monotonic() + SETTLE_S
                while time.monotonic() < deadline and any(not prom.query(e) for e in all_expressions().values()):
                    time.sleep(1)
                yield prom
            finally:
                prom.stop()
        finally:
            for process in (trainer, real):
                process.terminate()
                process.wait(timeout=30)


def test_a_real_training_run_is_scraped(prometheus: Prometheus) -> None:
    selector = f'{{pod="{REAL_TRAINER_POD}"}}'
    wanted = [f"shiftgym_train_steps_total{selector} > 0", f"shiftgym_train_last_step_timestamp_seconds{selector}",
              f"shiftgym_rollout_episodes_total{selector}", f"shiftgym_rollout_steps_total{selector} > 0"]
    deadline = time.monotonic() + 120  # the first GRPO step of a tiny model takes seconds, more on a busy machine
    while (missing := [e for e in wanted if not prometheus.query(e)]) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, f"the real trainer's series are missing: {missing}"


def test_every_dashboard_query_returns_series(prometheus: Prometheus) -> None:
    empty = [f"{title}: {expr}" for title, expr in promql.dashboard_queries() if not prometheus.query(grafana(expr))]
    assert not empty, "dashboard queries without series:\n" + "\n".join(empty)


def test_the_dashboard_json_holds_exactly_the_tested_queries() -> None:
    panels = [p for p in dashboard.dashboard()["panels"] if p["type"] != "row"]
    in_json = [t["expr"] for p in panels for t in p["targets"]]
    assert in_json == [expr for _, expr in promql.dashboard_queries()]


def test_every_alert_measure_returns_series(prometheus: Prometheus) -> None:
    empty = [f"{a.name}: {a.measure_expr()}" for a in promql.ALERTS if not prometheus.query(a.measure_expr())]
    assert not empty, "alert measures without series:\n" + "\n".join(empty)


def test_the_alert_rules_load_and_evaluate_without_errors(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + 10
    while True:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        if all(r["health"] == "ok" for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(r["name"] for r in rules) == sorted(a.name for a in promql.ALERTS)
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_the_dashboard_variables_have_values(prometheus: Prometheus) -> None:
    assert NAMESPACE in prometheus.api("label/namespace/values", **{"match[]": "shiftgym_env_active_sessions"})
    match = f'shiftgym_env_active_sessions{{namespace=~"{NAMESPACE}"}}'
    envs = prometheus.api("label/env/values", **{"match[]": match})
    assert {"babyai", "textcraft"} <= set(envs)


def test_the_stand_in_drove_real_episodes(prometheus: Prometheus) -> None:
    """The series are not merely present: episodes succeeded and steps were counted on both sides."""
    success = prometheus.query('sum(shiftgym_env_episodes_total{outcome="success"})')
    assert success and float(success[0]["value"][1]) > 0
    steps = prometheus.query("sum by (env) (shiftgym_rollout_steps_total)")
    assert {s["metric"]["env"] for s in steps} == {"babyai", "textcraft"}


def test_session_saturation_is_over_each_servers_own_limit(prometheus: Prometheus) -> None:
    at = time.time()  # one evaluation instant for every query, so the ratio and its parts agree

    def by_env(expr: str) -> dict[str, float]:
        return {s["metric"]["env"]: float(s["value"][1]) for s in prometheus.api("query", query=expr, time=at)["result"]}

    limits = by_env("shiftgym_env_max_sessions")
    assert limits == {"babyai": 4096.0, "textcraft": 2.0}  # textcraft runs with --max-sessions 2
    active = by_env("shiftgym_env_active_sessions")
    saturation = by_env(promql.EXPRESSIONS["env_session_saturation"](promql.Scope()))
    assert saturation == {env: active[env] / limits[env] for env in limits}
