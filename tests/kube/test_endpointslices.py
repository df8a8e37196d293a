"""Env endpoints from a Service's EndpointSlices (`k8s:///NAMESPACE/SERVICE:PORT`): the client pool follows pods
as the stand-in API server's slices change, with real null env servers on loopback, and loses no episode."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

pytest.importorskip("kubernetes")

from tests.kube_apiserver import StandinApiServer, running_apiserver  # noqa: E402
from tests.servers import ServerThread  # noqa: E402
from trainer.client.endpoints import Endpoints  # noqa: E402
from trainer.client.endpointslices import (  # noqa: E402
    EndpointDiscoveryError,
    EndpointSliceWatcher,
    ServiceRef,
    slice_targets,
)
from trainer.client.pool import Deadlines, EnvPool, EpisodeFailed, EpisodeRequest, PooledEpisode, run_with_retries  # noqa: E402

NS = "envs"
SPEC = f"k8s:///{NS}/null:grpc"
QUICK = Deadlines(call_s=2.0, turn_s=6.0, episode_s=60.0)


def task(index: int) -> str:
    return f"null/test/easy/{index % 1000:05d}"


async def until(condition, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    with running_apiserver() as server:
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig_path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield server


def put_pod_slice(api: StandinApiServer, server: ServerThread, ready: bool | None = True) -> None:
    """One slice per env server: they share 127.0.0.1, so each port is its own slice, as the controller groups
    endpoints by port set."""
    api.put_endpoint_slice(NS, f"null-{server.server.port}", "null", {"grpc": server.server.port},
                           [("127.0.0.1", ready)])


def slice_requests(api: StandinApiServer, verb: str) -> int:
    return sum(1 for r in api.requests if r.resource == "endpointslices" and r.verb == verb)


# --- parsing and the slice contents --------------------------------------------------------------------


def test_the_k8s_form_names_namespace_service_and_port():
    assert ServiceRef.parse("k8s:///envs/babyai:grpc") == ServiceRef("envs", "babyai", "grpc", "")
    assert ServiceRef.parse("k8s://prod/envs/babyai:50051") == ServiceRef("envs", "babyai", "50051", "prod")
    assert Endpoints("k8s:///envs/babyai:grpc").dynamic
    for bad in ("k8s:///envs/babyai", "k8s://envs/babyai:grpc", "k8s:///Envs/babyai:grpc", "k8s:///envs/:grpc"):
        with pytest.raises(ValueError, match="k8s://"):
            Endpoints(bad)


def test_only_ready_endpoints_count_and_missing_ready_means_ready():
    endpoint_slice = {
        "addressType": "IPv4",
        "ports": [{"name": "metrics", "port": 9100}, {"name": "grpc", "port": 50051}],
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                      {"addresses": ["10.0.0.2"], "conditions": {"ready": False, "terminating": True}},
                      {"addresses": ["10.0.0.3"], "conditions": {}},
                      {"addresses": ["10.0.0.4", "10.0.0.5"]}],
    }
    assert slice_targets(endpoint_slice, "grpc") == {"10.0.0.1:50051", "10.0.0.3:50051", "10.0.0.4:50051"}
    assert slice_targets(endpoint_slice, "7000") == {"10.0.0.1:7000", "10.0.0.3:7000", "10.0.0.4:7000"}
    assert slice_targets(endpoint_slice, "http") == set()
    ipv6 = {"addressType": "IPv6", "ports": [{"name": "grpc", "port": 50051}],
            "endpoints": [{"addresses": ["fd00::1"], "conditions": {"ready": True}}]}
    assert slice_targets(ipv6, "grpc") == {"[fd00::1]:50051"}


# --- the pool following the slices ---------------------------------------------------------------------


@dataclass
class Traffic:
    """Episodes played continuously by a few workers through run_with_retries, with what happened to each."""

    pool: EnvPool
    started: int = 0
    completed: list[str] = field(default_factory=list)  # the pod each successful episode finished on
    lost: list[BaseException] = field(default_factory=list)  # episodes that did not complete: must stay empty
    reruns: list[EpisodeFailed] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def play(self, episode: PooledEpisode) -> str:
        for _ in range(3):
            await episode.step("noop")
        result = await episode.step(episode.opened.result.observation.valid_actions[0])
        assert result.outcome is not None and result.outcome.success
        return episode.pod

    async def worker(self, worker: int) -> None:
        index = worker
        while not self.stop.is_set():
            self.started += 1
            index += 10
            try:
                pod = await run_with_retries(self.pool, EpisodeRequest(task(index), seed=0), self.play,
                                             on_failure=self.reruns.append)
            except BaseException as err:  # noqa: BLE001 - recorded, and the test fails on it
                self.lost.append(err)
                return
            self.completed.append(pod)


async def hold_episode_on(pool: EnvPool, target: str, resume: asyncio.Event, pods: list[str],
                          reruns: list[EpisodeFailed]) -> bool:
    """Play one episode that waits for `resume` halfway, on `target` (episodes placed elsewhere are finished and
    tried again); `pods` gets each pod it played on. Returns whether it succeeded."""
    async def play(episode: PooledEpisode) -> bool:
        pods.append(episode.pod)
        await episode.step("noop")
        if episode.pod == target and not resume.is_set():
            await resume.wait()
        await episode.step("noop")
        result = await episode.step(episode.opened.result.observation.valid_actions[0])
        return bool(result.outcome and result.outcome.success)

    for attempt in range(50):
        if await run_with_retries(pool, EpisodeRequest(task(900 + attempt), seed=0), play,
                                  on_failure=reruns.append) and target in pods:
            return True
    return False


async def test_the_pool_follows_endpoint_slices_and_loses_no_episode(api: StandinApiServer):
    with ServerThread("null") as a, ServerThread("null") as b, ServerThread("null") as c:
        put_pod_slice(api, a)
        put_pod_slice(api, b)
        # A long resolve interval: the pool can only learn of changes from the watch.
        async with EnvPool(SPEC, env="null", deadlines=QUICK, resolve_interval_s=600, health_interval_s=0.5) as pool:
            assert set(pool.pods) == {a.target, b.target}
            traffic = Traffic(pool)
            workers = [asyncio.create_task(traffic.worker(i)) for i in range(4)]
            await until(lambda: len(traffic.completed) >= 8)

            # A pod is added: it joins placement and gets new episodes.
            put_pod_slice(api, c)
            await until(lambda: pool.pods.get(c.target) is True)
            await until(lambda: traffic.completed.count(c.target) >= 3)

            # A pod turns not ready (what a terminating pod's endpoint does): an episode open on it finishes
            # there, and no new episode goes to it.
            resume_b, on_b, held_reruns = asyncio.Event(), [], []
            held_b = asyncio.create_task(hold_episode_on(pool, b.target, resume_b, on_b, held_reruns))
            await until(lambda: on_b[-1:] == [b.target] and pool.in_flight().get(b.target, 0) >= 1)
            put_pod_slice(api, b, ready=False)
            await until(lambda: pool.pods.get(b.target) is False)  # retired, still draining
            resume_b.set()
            assert await held_b and on_b[-1] == b.target  # drained on its pod
            await until(lambda: b.target not in pool.pods)  # closed after its last episode
            after_b = len(traffic.completed)

            # A pod is killed mid-episode, then its slice goes: the episode is played again on a survivor.
            resume_a, on_a = asyncio.Event(), []
            held_a = asyncio.create_task(hold_episode_on(pool, a.target, resume_a, on_a, held_reruns))
            await until(lambda: on_a[-1:] == [a.target] and pool.in_flight().get(a.target, 0) >= 1)
            a.call(a.server.stop(grace_s=None))
            api.delete("endpointslices", NS, f"null-{a.server.port}")
            resume_a.set()
            assert await held_a
            assert on_a[-1] == c.target and any(f.reason == "pod_lost" and f.pod == a.target for f in held_reruns)
            await until(lambda: set(pool.pods) == {c.target})
            await until(lambda: len(traffic.completed) >= after_b + 8)

            traffic.stop.set()
            await asyncio.gather(*workers)
            a.server.stop = _already_stopped  # type: ignore[method-assign]

        assert traffic.lost == []
        assert len(traffic.completed) == traffic.started  # every episode started completed
        assert b.target not in traffic.completed[after_b:]
        assert all(f.retryable for f in traffic.reruns)  # any episode caught on a dying pod was played again
        # Followed with one list and a watch, not repeated lists.
        assert slice_requests(api, "list") == 1
        assert slice_requests(api, "watch") >= 1


async def _already_stopped(grace_s=None):  # noqa: ANN001, ANN202
    return None


# --- the watcher's recovery ----------------------------------------------------------------------------


async def _changed_to(watcher: EndpointSliceWatcher, expected: tuple[str, ...]) -> None:
    deadline = time.monotonic() + 20
    while (targets := await watcher.targets()) != expected:
        assert time.monotonic() < deadline, f"targets stayed {targets}, expected {expected}"
        await watcher.wait_changed(1.0)


async def test_the_watcher_resumes_after_a_dropped_watch_and_relists_after_410(api: StandinApiServer):
    def put(name: str, port: int) -> None:
        api.put_endpoint_slice(NS, name, "null", {"grpc": port}, [("127.0.0.1", True)])

    put("one", 1001)
    api.put_endpoint_slice(NS, "other-service", "textcraft", {"grpc": 1009}, [("127.0.0.1", True)])
    watcher = EndpointSliceWatcher(ServiceRef.parse(SPEC), backoff_s=0.05, max_backoff_s=0.2)
    try:
        assert await watcher.targets() == ("127.0.0.1:1001",)
        await until(lambda: api.open_watches == 1)

        # The connection drops: the watcher resumes from the last version, without listing again.
        api.break_watches()
        put("two", 1002)
        await _changed_to(watcher, ("127.0.0.1:1001", "127.0.0.1:1002"))
        assert slice_requests(api, "list") == 1 and slice_requests(api, "watch") >= 2

        # The history it would resume from is gone (410): it lists again, and sees what changed meanwhile.
        await until(lambda: api.open_watches == 1)
        api.compact()
        api.break_watches()
        api.delete("endpointslices", NS, "one")
        await _changed_to(watcher, ("127.0.0.1:1002",))
        await until(lambda: slice_requests(api, "list") == 2)

        # The API server errs for a while: the watcher backs off and carries on, keeping the last targets.
        await until(lambda: api.open_watches == 1)
        api.inject_failure(500, verb="watch", resource="endpointslices", times=3)
        api.break_watches()
        assert await watcher.targets() == ("127.0.0.1:1002",)
        put("three", 1003)
        await _changed_to(watcher, ("127.0.0.1:1002", "127.0.0.1:1003"))
    finally:
        await watcher.aclose()
    await until(lambda: api.open_watches == 0)  # closing the watcher closed its stream


async def test_a_service_that_cannot_be_listed_fails_the_pool_start_with_the_reason(api: StandinApiServer):
    api.inject_failure(403, verb="list", resource="endpointslices")
    with pytest.raises(EndpointDiscoveryError, match=r"k8s:///envs/null:grpc: listing EndpointSlices failed: HTTP 403"):
        await EnvPool(SPEC, env="null", deadlines=QUICK).start()


async def test_no_kubeconfig_is_a_clear_error(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(OSError, match="k8s:///envs/null:grpc: no Kubernetes API to ask"):
        await EnvPool(SPEC, env="null", deadlines=QUICK).start()
