"""The grid runner: trains the nodes a grid needs and evaluates its cells, through a backend, into the store.

A backend does two things (trainer/grid/local.py on CPU, trainer/grid/kube/backend.py on a cluster):

- `run_training_stage(node, parent_checkpoint, out_dir)` -> (checkpoint, info): materialise a base policy, warm-start
  one, or run a GRPO stage from the parent's checkpoint, writing into `out_dir` (the runner moves it into place);
- `run_evaluation_cell(cell, checkpoint)` -> trajectory records (trainer/grid/records.py), tasks x k of them.

The order: scripted cells first (no training needed), then node by node, parents first, each node's cells right
after it trains, so a long run has results early. Finished nodes and cells are read back from the store and never
redone; a node's checkpoint directory is renamed into place before the store records it.

With `max_parallel` > 1 (a cluster backend) up to that many stages and cells run at once, each as soon as what it
needs is done, the earliest in that order first. A backend raises `StageFailed` for a stage or cell that failed
for a reason worth keeping (after its own retries): the runner records the reason in the store's meta
(`failures`), skips what depends on it, and goes on with the rest; a later run tries it again.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from trainer.grid.expand import Cell, Grid, Node
from trainer.grid.store import ResultsStore

CHECKPOINTS = "checkpoints"


class RunDirBusy(RuntimeError):
    """Another runner holds the run directory's lock."""


class StageFailed(RuntimeError):
    """A training stage or evaluation cell that failed for good (its backend's retries used up); `reasons` holds one
    line per attempt."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


class Backend(Protocol):
    async def run_training_stage(self, node: Node, parent_checkpoint: str | None,
                                 out_dir: Path) -> tuple[str, dict[str, Any]]: ...

    async def run_evaluation_cell(self, cell: Cell, checkpoint: str | None) -> list[dict[str, Any]]: ...


class Progress(Protocol):
    def start(self, nodes: int, cells: int, nodes_done: int, cells_done: int) -> None: ...

    def node_started(self, node: Node) -> None: ...

    def node_done(self, node: Node, wall_s: float) -> None: ...

    def cell_started(self, cell: Cell) -> None: ...

    def cell_done(self, cell: Cell, records: list[dict[str, Any]], wall_s: float) -> None: ...

    def failed(self, label: str, reason: str) -> None: ...

    def note(self, text: str) -> None: ...  # a line from the backend (e.g. a Job's pod is pending: why)

    def close(self) -> None: ...


class QuietProgress:
    def start(self, nodes: int, cells: int, nodes_done: int, cells_done: int) -> None: ...
    def node_started(self, node: Node) -> None: ...
    def node_done(self, node: Node, wall_s: float) -> None: ...
    def cell_started(self, cell: Cell) -> None: ...
    def cell_done(self, cell: Cell, records: list[dict[str, Any]], wall_s: float) -> None: ...
    def failed(self, label: str, reason: str) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class BarProgress:
    """Two tqdm bars: training stages and evaluation cells, with what is running as their description."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._write = write

    def start(self, nodes: int, cells: int, nodes_done: int, cells_done: int) -> None:
        options = dict(dynamic_ncols=True, mininterval=0.5, leave=True)
        self.nodes = self._tqdm(total=nodes, initial=nodes_done, desc="training stages", position=0, **options)
        self.cells = self._tqdm(total=cells, initial=cells_done, desc="evaluation cells", position=1, **options)

    def node_started(self, node: Node) -> None:
        self.nodes.set_description(f"training {_short(node.label)}")

    def node_done(self, node: Node, wall_s: float) -> None:
        self.nodes.update(1)
        self.nodes.write(f"trained {node.label} in {wall_s:.0f} s")

    def cell_started(self, cell: Cell) -> None:
        self.cells.set_description(f"eval {_short(cell.label)} on {cell.env}/{cell.difficulty}/{cell.interface}")

    def cell_done(self, cell: Cell, records: list[dict[str, Any]], wall_s: float) -> None:
        self.cells.update(1)
        success = sum(r["success"] for r in records) / max(len(records), 1)
        self.cells.set_postfix_str(f"last avg@{cell.k} {success:.2f}")

    def failed(self, label: str, reason: str) -> None:
        self.nodes.write(f"FAILED {label}: {reason}")

    def note(self, text: str) -> None:
        self.nodes.write(text)

    def close(self) -> None:
        self.nodes.set_description("training stages")
        self.cells.set_description("evaluation cells")
        self.nodes.close()
        self.cells.close()


def _short(label: str) -> str:
    """A checkpoint label for a progress bar: its root and its last stage."""
    parts = label.split(" > ")
    return label if len(parts) <= 2 else f"{parts[0]} > … > {parts[-1]}"


@dataclass(frozen=True, slots=True)
class RunSummary:
    nodes_trained: int
    nodes_reused: int
    cells_run: int
    cells_reused: int
    wall_s: float
    failed: tuple[str, ...] = ()  # labels of the stages and cells that failed (reasons: the store's "failures")


class GridRunner:
    def __init__(self, grid: Grid, run_dir: str | Path, backend: Backend, progress: Progress | None = None,
                 max_parallel: int = 1) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
        self.grid = grid
        self.run_dir = Path(run_dir)
        self.backend = backend
        self.progress = progress or QuietProgress()
        self.max_parallel = max_parallel
        self.run_id = uuid.uuid4().hex[:12]

    def _checkpoint_dir(self, node: Node) -> Path:
        return self.run_dir / CHECKPOINTS / node.id

    async def run(self) -> RunSummary:
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / ".lock", "w") as lock:
            try:  # one runner per run directory: a second one would redo the first one's cell in flight
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirBusy(f"another grid runner is using {self.run_dir}") from None
            store = ResultsStore.in_run(self.run_dir)
            try:
                return await self._run(store, started)
            finally:
                store.close()

    async def _run(self, store: ResultsStore, started: float) -> RunSummary:
        spec = self.grid.spec
        store.set_meta("spec", spec.model_dump(mode="json"))
        store.set_meta("last_run", {"run_id": self.run_id, "started": time.time()})
        order = self.grid.training_order()
        done_cells, done_nodes = store.done(), store.nodes()
        checkpoints = {n: row["checkpoint"] for n, row in done_nodes.items()}
        by_node: dict[str | None, list[Cell]] = {}
        for cell in sorted(self.grid.cells.values(), key=lambda c: (c.label, c.env, c.difficulty, c.interface)):
            by_node.setdefault(cell.node, []).append(cell)
        # The sequential order; every item comes after what it needs, so "the earliest ready item" follows it.
        work: list[Node | Cell] = [*by_node.get(None, [])]
        for node in order:
            work += [node, *by_node.get(node.id, [])]
        pending = [w for w in work if not (w.id in checkpoints if isinstance(w, Node) else w.key in done_cells)]
        reused_cells = sum(key in done_cells for key in self.grid.cells)
        nodes_reused = sum(n.id in checkpoints for n in order)
        self.progress.start(len(order), len(self.grid.cells), nodes_reused, reused_cells)
        counts = {"nodes": 0, "cells": 0}
        failed: list[str] = []
        try:
            await self._schedule(store, pending, checkpoints, done_cells, counts, failed)
        finally:
            self.progress.close()
        store.set_meta("last_run", {"run_id": self.run_id, "finished": time.time()})
        return RunSummary(counts["nodes"], nodes_reused, counts["cells"], reused_cells, time.monotonic() - started,
                          tuple(failed))

    async def _schedule(self, store: ResultsStore, pending: list[Node | Cell], checkpoints: dict[str, str],
                        done_cells: set[str], counts: dict[str, int], failed: list[str]) -> None:
        """Start the earliest ready items while fewer than max_parallel run; skip what depends on a failure."""
        broken: set[str] = set()  # node ids that failed or were skipped
        running: dict[asyncio.Task[None], Node | Cell] = {}

        async def train(node: Node) -> None:
            checkpoints[node.id] = await self._train(store, node, checkpoints.get(node.parent or ""))
            counts["nodes"] += 1

        async def evaluate(cell: Cell) -> None:
            await self._cell(store, cell, checkpoints[cell.node] if cell.node else None)
            done_cells.add(cell.key)
            counts["cells"] += 1

        try:
            while pending or running:
                for item in list(pending):
                    if len(running) >= self.max_parallel:
                        break
                    needs = item.parent if isinstance(item, Node) else item.node
                    if needs in broken:
                        pending.remove(item)
                        if isinstance(item, Node):
                            broken.add(item.id)
                        continue
                    if needs is not None and needs not in checkpoints:
                        continue
                    pending.remove(item)
                    job = train(item) if isinstance(item, Node) else evaluate(item)
                    running[asyncio.ensure_future(job)] = item
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    item = running.pop(task)
                    error = task.exception()
                    if isinstance(error, StageFailed):
                        if isinstance(item, Node):
                            broken.add(item.id)
                        failed.append(item.label if isinstance(item, Node) else _cell_label(item))
                        self._record_failure(store, item, error)
                    elif error is not None:
                        raise error
                    else:
                        self._clear_failure(store, item)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _record_failure(self, store: ResultsStore, item: Node | Cell, error: StageFailed) -> None:
        key, label = (item.id, item.label) if isinstance(item, Node) else (item.key, _cell_label(item))
        failures = store.meta("failures", {})
        failures[key] = {"kind": "node" if isinstance(item, Node) else "cell", "label": label,
                         "reasons": error.reasons, "run_id": self.run_id, "time": time.time()}
        store.set_meta("failures", failures)
        self.progress.failed(label, error.reasons[-1] if error.reasons else "no reason given")

    def _clear_failure(self, store: ResultsStore, item: Node | Cell) -> None:
        failures = store.meta("failures", {})
        if failures.pop(item.id if isinstance(item, Node) else item.key, None) is not None:
            store.set_meta("failures", failures)

    async def _train(self, store: ResultsStore, node: Node, parent: str | None) -> str:
        final = self._checkpoint_dir(node)
        partial = final.with_name(final.name + ".partial")
        for stale in (final, partial):  # left by a run killed before it recorded the node
            if stale.exists():
                shutil.rmtree(stale)
        partial.mkdir(parents=True)
        self.progress.node_started(node)
        began = time.monotonic()
        checkpoint, info = await self.backend.run_training_stage(node, parent, partial)
        if checkpoint == str(partial):
            partial.rename(final)
            checkpoint = str(final)
        else:
            shutil.rmtree(partial, ignore_errors=True)
        wall = time.monotonic() - began
        store.record_node(node.id, node.label, checkpoint, info, wall, self.run_id)
        self.progress.node_done(node, wall)
        return checkpoint

    async def _cell(self, store: ResultsStore, cell: Cell, checkpoint: str | None) -> None:
        self.progress.cell_started(cell)
        began = time.monotonic()
        records = await self.backend.run_evaluation_cell(cell, checkpoint)
        expected = cell.tasks * cell.k
        if len(records) > expected:
            raise RuntimeError(f"cell {cell.key} returned {len(records)} trajectories, expected <= {expected}")
        wall = time.monotonic() - began
        store.record_cell(cell.key, cell.describe(), records, wall, self.run_id)
        self.progress.cell_done(cell, records, wall)


def _cell_label(cell: Cell) -> str:
    return f"{cell.label} on {cell.env}/{cell.difficulty}/{cell.interface}"
