"""The agent executor's /metrics: one actor alone, and two actor processes of one pod sharing the port through
PROMETHEUS_MULTIPROC_DIR, scraped over HTTP on loopback while they play real episodes against a real env server.

Each actor is ShiftGym's AgentExecutor as OpenRLHF's own loader builds it; FakeVLLMEngine (tests/fakes) stands in
for the vLLM engine, which cannot run here. With max_turns=1 the tiny model's babyai episodes end truncated, and a
label for an environment without endpoints fails before it reaches the env servers: two outcomes per actor, in
different numbers, so a scrape that misses an actor's series cannot pass.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import pytest
from openrlhf.utils.agent import AgentExecutorBase
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.vllm_engine import FakeSamplingParams, FakeVLLMEngine
from tests.servers import free_port
from tests.trainer import openrlhf_code
from trainer.client.rollout_metrics import RolloutMetrics
from trainer.launch import AGENT_FILE

REPO = Path(__file__).resolve().parents[2]
TASK = "babyai/train/easy/GoToRedBall-00003"
TRUNCATED = json.dumps({"env": "babyai", "task_id": TASK, "seed": 0, "difficulty": "easy", "max_turns": 1})
NO_ENDPOINTS = json.dumps({"env": "webshop", "task_id": "webshop/train/easy/0", "seed": 0})
EPISODES = "shiftgym_rollout_episodes_total"
BABYAI_TRUNCATED = (EPISODES, (("env", "babyai"), ("interface", "original"), ("status", "truncated")))
WEBSHOP_FAILED = (EPISODES, (("env", "webshop"), ("interface", "unknown"), ("status", "failed")))

load_agent_executor = openrlhf_code.load_function(
    "trainer/ray/vllm_engine.py", "_load_agent_executor", {"AgentExecutorBase": AgentExecutorBase})

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return parse(response.read().decode())


def shapes(samples: Iterable[tuple[str, tuple[tuple[str, str], ...]]]) -> dict[str, frozenset[str]]:
    """Sample name -> its label names (the `le` of buckets included)."""
    found: dict[str, frozenset[str]] = {}
    for name, labels in samples:
        keys = frozenset(k for k, _ in labels)
        assert found.setdefault(name, keys) == keys, f"{name} comes with different label names"
    return found


def one_process_shapes() -> dict[str, frozenset[str]]:
    """Every rollout series as one process's own registry exposes it (this test process has no multiproc dir)."""
    metrics = RolloutMetrics()
    env = metrics.for_env("babyai")
    env.steps.inc()
    env.in_flight.set(1)
    env.call("reset", 0.01)
    env.retry("reset")
    env.failure("pod_lost")
    env.pods(1, 0)
    metrics.episode_over("babyai", "original", "completed")
    return shapes(parse(generate_latest(metrics.registry).decode()))


def dashboard_series() -> set[str]:
    """The rollout series the dashboard and the alerts read (ops/promql.py)."""
    return set(re.findall(r"shiftgym_rollout_\w+", (REPO / "ops" / "promql.py").read_text()))


def test_every_rollout_series_of_the_dashboard_exists_in_one_process():
    assert dashboard_series() and dashboard_series() <= set(one_process_shapes())


@pytest.fixture
def agent_env(monkeypatch, babyai_server):
    for name in [n for n in os.environ if n.startswith("SHIFTGYM_") or n == "PROMETHEUS_MULTIPROC_DIR"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SHIFTGYM_ENDPOINTS_BABYAI", babyai_server.target)
    monkeypatch.setenv("SHIFTGYM_TURN_TOKENS", "6")
    return monkeypatch


async def play(executor, engine, labels: list[str]) -> None:  # noqa: ANN001
    fake = FakeVLLMEngine(engine)
    params = FakeSamplingParams(max_tokens=None, min_tokens=1, skip_special_tokens=False)
    for label in labels:
        await executor.execute(prompt="[cell] prompt", label=label, sampling_params=params, max_length=1024,
                               hf_tokenizer=engine.tokenizer, llm_engine=fake)


async def test_one_actor_serves_its_own_registry(agent_env, tiny_engine, caplog):
    port = free_port()
    agent_env.setenv("SHIFTGYM_METRICS_PORT", str(port))
    agent_env.setenv("SHIFTGYM_METRICS_HOST", "127.0.0.1")
    with caplog.at_level(logging.DEBUG):
        executor = load_agent_executor(str(AGENT_FILE))
    try:
        assert executor.metrics_server is not None
        assert not [r for r in caplog.records if "SHIFTGYM_METRICS" in r.getMessage()]  # known to the settings
        await play(executor, tiny_engine, [TRUNCATED, TRUNCATED, NO_ENDPOINTS])
        scraped = scrape(port)
        # Each sample counted once: the episode runner counts the episodes it plays, the executor the rest.
        assert scraped[BABYAI_TRUNCATED] == 2 and scraped[WEBSHOP_FAILED] == 1
        assert scraped[("shiftgym_rollout_steps_total", (("env", "babyai"),))] == 2  # one turn each
        assert scraped[("shiftgym_rollout_pods", (("env", "babyai"), ("state", "healthy")))] == 1
        assert scraped[("shiftgym_rollout_in_flight_episodes", (("env", "babyai"),))] == 0
        reference = one_process_shapes()
        assert shapes(scraped) == {name: reference[name] for name in shapes(scraped)}

        # A second actor without a shared directory finds the port taken, says so, and still plays.
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="trainer.client.metrics_endpoint"):
            second = load_agent_executor(str(AGENT_FILE))
        assert second.metrics_server is None
        assert any("is taken" in r.getMessage() for r in caplog.records)
        await play(second, tiny_engine, [TRUNCATED])
        assert second.metrics.registry.get_sample_value(EPISODES, dict(BABYAI_TRUNCATED[1])) == 1
        await second.aclose()
        assert scrape(port)[BABYAI_TRUNCATED] == 2  # the first actor's registry, untouched
    finally:
        await executor.aclose()
    with socket.socket() as sock:  # aclose() gave the port back (as a server would take it, past TIME_WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_a_bad_metrics_port_is_logged_and_the_actor_still_starts(agent_env, caplog):
    agent_env.setenv("SHIFTGYM_METRICS_PORT", "ninety-two hundred")
    with caplog.at_level(logging.WARNING, logger="shiftgym.openrlhf_agent"):
        executor = load_agent_executor(str(AGENT_FILE))
    assert executor.metrics_server is None
    assert any("SHIFTGYM_METRICS_PORT='ninety-two hundred'" in r.getMessage() for r in caplog.records)


def test_a_missing_shared_directory_is_made_and_one_set_too_late_is_reported(agent_env, tmp_path, caplog):
    shared = tmp_path / "made" / "here"
    agent_env.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))  # after this process imported prometheus_client
    with caplog.at_level(logging.WARNING, logger="trainer.client.metrics_endpoint"):
        executor = load_agent_executor(str(AGENT_FILE))
    assert shared.is_dir() and executor.metrics_server is None  # no port asked for
    assert any("was set after prometheus_client was imported" in r.getMessage() for r in caplog.records)


class Actor:
    """tests/trainer/metrics_actor.py in its own process: one vLLM rollout actor of a pod."""

    def __init__(self, environ: dict[str, str], model_dir: Path, labels: list[str], log_path: Path) -> None:
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.trainer.metrics_actor", str(model_dir), *labels], cwd=REPO, env=environ,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.log_path = log_path

    def line(self, prefix: str) -> str:
        """The rest of the next stdout line that starts with prefix (the actor prints nothing else there)."""
        line = self.process.stdout.readline()  # ends with the process at worst; never blocks past it
        assert line.startswith(prefix), f"{line!r}; log:\n{self.log_path.read_text()[-3000:]}"
        return line[len(prefix):].strip()

    def own(self) -> Samples:
        """What the actor's own registry held when its episodes were over, keyed as scrapes are."""
        counts = json.loads(self.line("PLAYED "))
        out: Samples = {}
        for key, value in counts.items():
            name, labels = re.fullmatch(r"(\w+)\{(.*)\}", key).groups()
            pairs = tuple(sorted(tuple(p.split("=", 1)) for p in labels.split(",") if p))
            out[(name, pairs)] = value
        return out

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.stdin.close()  # the actor closes its pools and exits
        code = self.process.wait(timeout=120)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def test_two_actors_of_a_pod_share_one_port_and_the_scrape_sums_them(babyai_server, tiny_model_dir, tmp_path):
    shared = tmp_path / "shiftgym-metrics"
    shared.mkdir()
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTGYM_")}
    environ.update(SHIFTGYM_ENDPOINTS_BABYAI=babyai_server.target, SHIFTGYM_TURN_TOKENS="6",
                   SHIFTGYM_METRICS_PORT=str(port), SHIFTGYM_METRICS_HOST="127.0.0.1",
                   PROMETHEUS_MULTIPROC_DIR=str(shared), OMP_NUM_THREADS="1")
    first = Actor(environ, tiny_model_dir, [TRUNCATED, TRUNCATED, NO_ENDPOINTS], tmp_path / "first.log")
    second = None
    try:
        assert first.line("READY ") == "serving=1"  # built before the second starts: it binds the port
        second = Actor(environ, tiny_model_dir, [TRUNCATED, NO_ENDPOINTS, NO_ENDPOINTS], tmp_path / "second.log")
        assert second.line("READY ") == "serving=0"
        own = [first.own(), second.own()]
        assert own[0][BABYAI_TRUNCATED] == 2 and own[0][WEBSHOP_FAILED] == 1
        assert own[1][BABYAI_TRUNCATED] == 1 and own[1][WEBSHOP_FAILED] == 2

        scraped = scrape(port)
        assert scraped[BABYAI_TRUNCATED] == 3 and scraped[WEBSHOP_FAILED] == 3
        # Counters and histograms are the two actors' sums; the live gauges carry no pid label.
        summed = [key for key in own[0] if key[0].endswith(("_total", "_count", "_bucket")) and key in own[1]]
        assert any(name == "shiftgym_rollout_call_duration_seconds_count" for name, _ in summed)
        for key in summed:
            if "health" not in dict(key[1]).values():  # health checks go on in the background
                assert scraped[key] == own[0][key] + own[1][key], key
        assert scraped[("shiftgym_rollout_in_flight_episodes", (("env", "babyai"),))] == 0
        assert scraped[("shiftgym_rollout_pods", (("env", "babyai"), ("state", "healthy")))] == 1  # not 1 per actor

        # The same names and label names as one process's own registry, and only ShiftGym's series.
        reference = one_process_shapes()
        assert shapes(scraped) == {name: reference[name] for name in shapes(scraped)}
        not_made = {"shiftgym_rollout_retries_total", "shiftgym_rollout_failures_total"}  # no retry, no pool failure
        assert dashboard_series() - not_made <= set(shapes(scraped))
        assert "is served by another process" in second.log_path.read_text()

        # An actor that exits keeps its counts in the sum; its live gauges go.
        pid = second.process.pid
        assert second.stop() == 0
        assert (shared / f"gauge_livesum_{pid}.db").exists()
        after = scrape(port)
        assert after[BABYAI_TRUNCATED] == 3 and after[WEBSHOP_FAILED] == 3
        assert not list(shared.glob(f"gauge_live*_{pid}.db")) and list(shared.glob(f"counter_{pid}.db"))
        assert after[("shiftgym_rollout_in_flight_episodes", (("env", "babyai"),))] == 0
        assert first.stop() == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
