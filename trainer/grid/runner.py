"""The grid runner: trains the nodes a grid needs and evaluates its cells, through a backend, into the store.

A backend does two things (trainer/grid/local.py on CPU; a Kubernetes one can follow, issue 10):

- `run_training_stage(node, parent_checkpoint, out_dir)` -> (checkpoint, info): materialise a base policy, warm-start
  one, or run a GRPO stage from the parent's checkpoint, writing into `out_dir` (the runner moves it into place);
- `run_evaluation_cell(cell, checkpoint)` -> trajectory records (trainer/grid/records.py), tasks x k of them.

The order: scripted cells first (no training needed), then node by node, parents first, each node's cells right
after it trains, so a long run has results early. Finished nodes and cells are read back from the store and never
redone; a node's checkpoint directory is renamed into place before the store records it.
"""

from __future__ import annotations

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

    def close(self) -> None: ...


class QuietProgress:
    def start(self, nodes: int, cells: int, nodes_done: int, cells_done: int) -> None: ...
    def node_started(self, node: Node) -> None: ...
    def node_done(self, node: Node, wall_s: float) -> None: ...
    def cell_started(self, cell: Cell) -> None: ...
    def cell_done(self, cell: Cell, records: list[dict[str, Any]], wall_s: float) -> None: ...
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


class GridRunner:
    def __init__(self, grid: Grid, run_dir: str | Path, backend: Backend, progress: Progress | None = None) -> None:
        self.grid = grid
        self.run_dir = Path(run_dir)
        self.backend = backend
        self.progress = progress or QuietProgress()
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
        pending_nodes = [n for n in order if n.id not in done_nodes]
        by_node: dict[str | None, list[Cell]] = {}
        for cell in sorted(self.grid.cells.values(), key=lambda c: (c.label, c.env, c.difficulty, c.interface)):
            by_node.setdefault(cell.node, []).append(cell)
        reused_cells = sum(key in done_cells for key in self.grid.cells)
        self.progress.start(len(order), len(self.grid.cells), len(order) - len(pending_nodes), reused_cells)
        counts = {"nodes": 0, "cells": 0}
        try:
            await self._cells(store, by_node.get(None, []), None, done_cells, counts)
            for node in order:
                if node.id not in checkpoints:
                    checkpoints[node.id] = await self._train(store, node, checkpoints.get(node.parent or ""))
                    counts["nodes"] += 1
                await self._cells(store, by_node.get(node.id, []), checkpoints[node.id], done_cells, counts)
        finally:
            self.progress.close()
        store.set_meta("last_run", {"run_id": self.run_id, "finished": time.time()})
        return RunSummary(counts["nodes"], len(order) - len(pending_nodes), counts["cells"], reused_cells,
                          time.monotonic() - started)

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

    async def _cells(self, store: ResultsStore, cells: list[Cell], checkpoint: str | None, done: set[str],
                     counts: dict[str, int]) -> None:
        for cell in cells:
            if cell.key in done:
                continue
            self.progress.cell_started(cell)
            began = time.monotonic()
            records = await self.backend.run_evaluation_cell(cell, checkpoint)
            expected = cell.tasks * cell.k
            if len(records) > expected:
                raise RuntimeError(f"cell {cell.key} returned {len(records)} trajectories, expected <= {expected}")
            wall = time.monotonic() - began
            store.record_cell(cell.key, cell.describe(), records, wall, self.run_id)
            done.add(cell.key)
            counts["cells"] += 1
            self.progress.cell_done(cell, records, wall)
