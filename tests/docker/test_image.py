"""The env-server image, built offline with a real Docker engine, serves a BabyAI episode through the running
container (host network, loopback only), as uid 10001, healthy by its own HEALTHCHECK, and drains on stop.

tests/docker/harness.py installs and starts the engine and makes the base image and wheelhouse. A cold run (no
base image, no wheelhouse) takes a few minutes; a warm one rebuilds only what the sources changed.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.docker import harness
from tests.servers import free_port
from trainer.client.env_client import EnvClient

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not harness.is_root(), reason="needs root: installs docker.io and runs its own dockerd"),
    # Every step has its own timeout in the harness; this bounds the whole module's first test, which builds.
    pytest.mark.timeout(1500),
]

TAG = "shiftgym-env-server:offline"
# ALFWorld pre-generation stays off (the image default): it costs minutes and the test plays BabyAI.
BUILD_ARGS = {"ALFWORLD_GAMES": "0"}


class Container:
    def __init__(self, engine: harness.Engine, name: str, port: int, metrics_port: int) -> None:
        self.engine, self.name, self.port, self.metrics_port = engine, name, port, metrics_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def inspect(self) -> dict:
        return json.loads(self.engine.docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self) -> str:
        return self.engine.docker("logs", "--tail", "50", self.name, check=False).stdout

    def wait_health(self, timeout_s: float = 90) -> dict:
        """The HEALTHCHECK's verdict once it has one (its first run comes one interval after start)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.inspect()
            if not state["Running"]:
                raise AssertionError(f"the container exited {state['ExitCode']}:\n{self.logs()}")
            if state.get("Health", {}).get("Status") in ("healthy", "unhealthy"):
                return state["Health"]
            time.sleep(1)
        raise AssertionError(f"no health verdict within {timeout_s:.0f}s:\n{self.logs()}")


@pytest.fixture(scope="module")
def engine() -> Iterator[harness.Engine]:
    with harness.offline_env_server_image(TAG, BUILD_ARGS) as (engine, seconds):
        size = engine.image_size(TAG)
        harness.log(f"{TAG}: built in {seconds:.0f}s, {size / 2**20:.0f} MiB")
        yield engine


@pytest.fixture(scope="module")
def container(engine: harness.Engine) -> Iterator[Container]:
    name = f"shiftgym-env-server-test-{os.getpid()}"
    port, metrics_port = free_port(), free_port()
    engine.docker("rm", "--force", name, check=False)
    engine.docker("run", "--detach", "--name", name, "--network=host", TAG, "--env", "babyai", "--host", "127.0.0.1",
                  "--port", str(port), "--metrics-port", str(metrics_port), "--enable-oracle")
    try:
        yield Container(engine, name, port, metrics_port)
    finally:
        engine.docker("rm", "--force", name, timeout_s=60, check=False)


def test_healthcheck_reports_healthy(container: Container):
    health = container.wait_health()
    assert health["Status"] == "healthy", health["Log"][-1:]
    assert "SERVING" in health["Log"][-1]["Output"]


def test_a_babyai_episode_through_the_container_ends_in_success(container: Container):
    container.wait_health()
    with EnvClient(container.target) as env:
        assert env.describe().spec.name == "babyai"
        opened = env.reset(split="test", difficulty="easy", index=0, seed=1)
        result, turn = opened.result, 0
        while not result.done and turn < 50:
            result, turn = env.step(opened.session_id, env.oracle_action(opened.session_id), step_index=turn)
        env.close(opened.session_id)
    assert result.done and result.outcome is not None and result.outcome.success, (turn, result)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{container.metrics_port}/metrics", timeout=10).read()
    assert b"shiftgym_env_" in metrics


def test_the_server_runs_as_uid_10001(container: Container):
    assert container.engine.docker("inspect", "--format", "{{.Config.User}}", TAG).stdout.strip() == "10001"
    status = container.engine.docker("exec", container.name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {"10001"}, status


def test_stop_drains_and_exits_zero(container: Container):
    container.engine.docker("stop", "--time", "30", container.name, timeout_s=60)
    state = container.inspect()
    assert not state["Running"] and state["ExitCode"] == 0, container.logs()
