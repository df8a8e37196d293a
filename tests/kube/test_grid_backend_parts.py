"""The cluster backend's parts on their own: the record block of an evaluation's log, validation before anything is
sent, names and labels, the watch cache through dropped streams and compacted history (against the stand-in API
server, a test double of an outside service), and the runner's scheduling with a concurrency limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from tests.kube_apiserver import running_apiserver  # noqa: E402
from trainer.grid.expand import Cell, Node, expand  # noqa: E402
from trainer.grid.kube import naming, results  # noqa: E402
from trainer.grid.kube.cluster import Cluster, Connection  # noqa: E402
from trainer.grid.kube.validation import InvalidManifest  # noqa: E402
from trainer.grid.kube.watch import Watcher  # noqa: E402
from trainer.grid.runner import GridRunner, StageFailed  # noqa: E402
from trainer.grid.spec import parse_spec  # noqa: E402
from trainer.grid.store import ResultsStore  # noqa: E402

RECORDS = [{"task_id": f"babyai/test/easy/{i:04d}", "sample": i % 2, "success": i % 3 == 0, "actions": ["x" * 50]}
           for i in range(40)]


# --- the record block -------------------------------------------------------------------------------------------

def test_records_survive_interleaved_log_lines_and_a_restarted_container():
    block = results.encode("cellA", RECORDS)
    lines = block.splitlines()
    noisy = [lines[0], "INFO vllm: step 3", *lines[1:-1], "WARNING ray: heartbeat", lines[-1]]
    other = results.encode("cellB", RECORDS[:3])
    log = "\n".join(["starting", *other.splitlines(), *noisy, *noisy]) + "\n"  # printed twice: the last one wins
    assert results.decode("cellA", log) == RECORDS
    assert results.decode("cellB", log) == RECORDS[:3]


def test_a_torn_or_tampered_block_is_refused_not_half_read():
    block = results.encode("cellA", RECORDS * 200).splitlines()
    assert len(block) > 3, "the payload spans several lines"
    with pytest.raises(results.NoRecords, match="never ended"):
        results.decode("cellA", "\n".join(block[:-1]))
    with pytest.raises(results.NoRecords, match="lines"):
        results.decode("cellA", "\n".join(block[:1] + block[2:]))
    header, first, *rest = block
    prefix, payload = first.rsplit(" ", 1)
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    with pytest.raises(results.NoRecords, match="checksum"):
        results.decode("cellA", "\n".join([header, f"{prefix} {flipped}", *rest]))
    with pytest.raises(results.NoRecords, match="no block"):
        results.decode("cellA", "Traceback (most recent call last):\n  OOM\n")


# --- names and validation ---------------------------------------------------------------------------------------

def test_names_fit_kubernetes_limits_and_labels_round_trip():
    work = naming.Workload("a" * naming.MAX_RUN_NAME, "stage", "f" * 16, 12)
    assert len(work.config_name) <= 63 and len(work.name) <= 47  # KubeRay appends to a RayJob's name
    assert naming.Workload.from_labels(work.labels()) == work
    assert naming.Workload.from_labels({"app": "x"}) is None
    assert naming.run_name_from("Runs/Paper_2026 (GPU)") == "runs-paper-2026-gpu"
    with pytest.raises(naming.BadRunName):
        naming.check_run_name("Paper")


def test_an_invalid_manifest_is_refused_before_anything_is_sent():
    with running_apiserver() as api:
        cluster = Cluster(Connection(str(api.kubeconfig_path), "standin", "grid", 10))
        bad = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x", "namespace": "grid"},
               "spec": {"template": {"spec": {"restartPolicy": "Never",
                                              "containers": [{"name": "c", "image": "i", "imagePullPolice": "x"}]}}}}
        with pytest.raises(InvalidManifest, match="imagePullPolice"):
            cluster.create(bad)
        cluster.close()
        assert not [r for r in api.requests if r.verb == "create"]


# --- the watch cache --------------------------------------------------------------------------------------------

def _job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {naming.RUN: "w"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}


async def _until(watcher: Watcher, predicate, what: str) -> None:  # noqa: ANN001
    for _ in range(200):
        if predicate():
            return
        await watcher.changed(timeout_s=0.1)
    raise AssertionError(f"the watcher never saw {what}")


async def test_the_watch_cache_follows_changes_through_dropped_streams_and_compaction():
    with running_apiserver() as api:
        cluster = Cluster(Connection(str(api.kubeconfig_path), "standin", "grid", 10))
        cluster.batch.create_namespaced_job("grid", _job("before"))
        watcher = Watcher(cluster, "Job", naming.run_selector("w"))
        await watcher.start()
        try:
            assert set(watcher.objects) == {"before"}
            await asyncio.to_thread(cluster.batch.create_namespaced_job, "grid", _job("second"))
            await _until(watcher, lambda: "second" in watcher.objects, "the second Job")
            api.break_watches()  # the stream drops; the watcher resumes from its last resourceVersion
            api.complete_job("grid", "before")
            await _until(watcher, lambda: (watcher.objects["before"].get("status") or {}).get("succeeded"),
                         "the completion after a dropped stream")
            api.compact()  # the history is gone: resuming answers 410, and the watcher lists afresh
            api.break_watches()
            api.delete("jobs", "grid", "second")
            await _until(watcher, lambda: "second" in watcher.gone, "the deletion after compaction")
            lists = [r for r in api.requests if r.verb == "list" and r.resource == "jobs"]
            assert len(lists) == 2  # the start, and the relist after 410: no polling in between
        finally:
            watcher.stop()
            cluster.close()


# --- the runner's schedule ---------------------------------------------------------------------------------------

SPEC = {"name": "sched", "envs": {"babyai": {}},
        "policies": {"qwen": {"kind": "pretrained", "model": "m"}, "oracle": {"kind": "oracle"}},
        "training": {"steps": 1, "tasks_per_step": 2, "group_size": 2},
        "evaluation": {"tasks": 1, "k": 1, "difficulties": ["easy", "hard"]},
        "axes": {"cross_env": {"train": ["babyai"]}, "difficulty": {"envs": ["babyai"],
                                                                    "regimes": ["easy", "easy_then_hard"]}}}


class RecordingBackend:
    """A backend of this test's own: records what ran, how many at once, and fails the stages it is told to."""

    def __init__(self, fail: set[str] = frozenset()) -> None:
        self.fail = fail
        self.order: list[str] = []
        self.running = 0
        self.most = 0

    async def _busy(self, name: str) -> None:
        self.order.append(name)
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1

    async def run_training_stage(self, node: Node, parent: str | None, out_dir: Path):  # noqa: ANN201
        await self._busy(node.id)
        if node.id in self.fail:
            raise StageFailed([f"attempt 0: {node.label} ran out of memory"])
        return f"ckpt/{node.id}", {}

    async def run_evaluation_cell(self, cell: Cell, checkpoint: str | None):  # noqa: ANN201
        await self._busy(cell.key)
        return [{"task_id": "babyai/test/easy/0", "sample": 0, "success": True}]


def _sequential(grid) -> list[str]:  # noqa: ANN001 - the order the runner documents for one at a time
    cells = sorted(grid.cells.values(), key=lambda c: (c.label, c.env, c.difficulty, c.interface))
    order = [c.key for c in cells if c.node is None]
    for node in grid.training_order():
        order += [node.id] + [c.key for c in cells if c.node == node.id]
    return order


def test_one_at_a_time_keeps_the_documented_order_and_more_run_together_within_the_limit(tmp_path):
    grid = expand(parse_spec(SPEC))
    one = RecordingBackend()
    asyncio.run(GridRunner(grid, tmp_path / "one", one).run())
    assert one.order == _sequential(grid) and one.most == 1
    three = RecordingBackend()
    summary = asyncio.run(GridRunner(grid, tmp_path / "three", three, max_parallel=3).run())
    assert three.most == 3 and sorted(three.order) == sorted(one.order)
    assert summary.cells_run == len(grid.cells) and summary.failed == ()
    for node in grid.training_order():  # parents before children, a cell after its checkpoint
        if node.parent:
            assert three.order.index(node.parent) < three.order.index(node.id)
    for cell in grid.cells.values():
        if cell.node:
            assert three.order.index(cell.node) < three.order.index(cell.key)


def test_a_failed_stage_skips_what_depends_on_it_and_the_rest_goes_on(tmp_path):
    grid = expand(parse_spec(SPEC))
    easy = next(n for n in grid.training_order() if n.kind == "grpo" and n.depth == 1)
    backend = RecordingBackend(fail={easy.id})
    summary = asyncio.run(GridRunner(grid, tmp_path, backend, max_parallel=2).run())
    below = {n.id for n in grid.nodes.values() if easy.id in {a.id for a in grid.lineage(n.id)}}
    assert summary.failed == (easy.label,)
    assert not below - {easy.id} & set(backend.order)  # nothing trained on top of it
    with ResultsStore.open_existing(tmp_path) as store:
        assert json.dumps(store.meta("failures")[easy.id]["reasons"]).count("ran out of memory") == 1
        done = store.done()
    assert done == {k for k, c in grid.cells.items() if c.node not in below}
    rerun = asyncio.run(GridRunner(grid, tmp_path, RecordingBackend()).run())  # a later run tries it again
    assert rerun.failed == () and rerun.cells_run == len(grid.cells) - len(done)
    with ResultsStore.open_existing(tmp_path) as store:
        assert store.meta("failures") == {}
