"""The results store: one SQLite file per run (RUN_DIR/results.sqlite), keyed by cell and by training node.

A cell's trajectories and its "done" row are written in one transaction, so a runner killed at any moment (SIGKILL
included) leaves each cell either complete or absent: a restart redoes only the absent ones, and nothing is lost or
written twice (the primary keys would refuse a second copy). A training node is recorded after its checkpoint
directory has been renamed into place. The spec is stored too: the report is built from this file alone.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, label TEXT NOT NULL, checkpoint TEXT NOT NULL, info TEXT NOT NULL,
    wall_s REAL NOT NULL, finished REAL NOT NULL, run_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY, description TEXT NOT NULL, episodes INTEGER NOT NULL, wall_s REAL NOT NULL,
    finished REAL NOT NULL, run_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trajectories (
    cell TEXT NOT NULL, idx INTEGER NOT NULL, task_id TEXT NOT NULL, sample INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (cell, idx));
"""
STORE_FILE = "results.sqlite"


@dataclass(frozen=True, slots=True)
class CellRow:
    key: str
    description: dict[str, Any]
    episodes: int
    wall_s: float
    finished: float
    run_id: str


class ResultsStoreError(OSError):
    """The results store cannot be written: the message names it and says what to do."""


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write into one message naming the store; what was committed before stays."""
    try:
        yield
    except sqlite3.OperationalError as err:
        if any(words in str(err) for words in ("disk I/O error", "database or disk is full", "unable to open")):
            raise ResultsStoreError(f"results store {path}: the disk is full or not writable ({err}); free space or "
                                    "fix the permissions, then rerun with the same --out to resume") from None
        raise


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ResultsStoreError(f"cannot create the results directory {self.path.parent}: {err.strerror}; "
                                    "choose another --out") from None
        with _writing(self.path):
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    @classmethod
    def in_run(cls, run_dir: str | Path) -> "ResultsStore":
        return cls(Path(run_dir) / STORE_FILE)

    @classmethod
    def open_existing(cls, run_dir: str | Path) -> "ResultsStore":
        path = Path(run_dir) / STORE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no results store at {path} (run `shiftgym grid run ... --out {run_dir}`)")
        return cls(path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta ------------------------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with _writing(self.path):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- training nodes --------------------------------------------------------------------------------

    def node(self, node_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT label, checkpoint, info, wall_s, finished, run_id FROM nodes WHERE id = ?",
                               (node_id,)).fetchone()
        if row is None:
            return None
        return {"id": node_id, "label": row[0], "checkpoint": row[1], "info": json.loads(row[2]), "wall_s": row[3],
                "finished": row[4], "run_id": row[5]}

    def nodes(self) -> dict[str, dict[str, Any]]:
        ids = [r[0] for r in self._db.execute("SELECT id FROM nodes")]
        return {i: self.node(i) for i in ids}  # type: ignore[misc]

    def record_node(self, node_id: str, label: str, checkpoint: str, info: dict[str, Any], wall_s: float,
                    run_id: str) -> None:
        with _writing(self.path):
            self._db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (node_id, label, checkpoint, json.dumps(info), wall_s, time.time(), run_id))

    # --- cells -----------------------------------------------------------------------------------------

    def done(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM cells")}

    def cell(self, key: str) -> CellRow | None:
        row = self._db.execute("SELECT description, episodes, wall_s, finished, run_id FROM cells WHERE key = ?",
                               (key,)).fetchone()
        return CellRow(key, json.loads(row[0]), row[1], row[2], row[3], row[4]) if row else None

    def cells(self) -> dict[str, CellRow]:
        rows = self._db.execute("SELECT key, description, episodes, wall_s, finished, run_id FROM cells")
        return {r[0]: CellRow(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows}

    def record_cell(self, key: str, description: dict[str, Any], trajectories: Sequence[dict[str, Any]],
                    wall_s: float, run_id: str) -> None:
        """The cell's trajectories and its row, all or nothing."""
        db = self._db
        with _writing(self.path):
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO trajectories VALUES (?, ?, ?, ?, ?)",
                               [(key, i, t["task_id"], t["sample"], json.dumps(t, sort_keys=True))
                                for i, t in enumerate(trajectories)])
                db.execute("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                           (key, json.dumps(description, sort_keys=True), len(trajectories), wall_s, time.time(),
                            run_id))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def trajectories(self, key: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT data FROM trajectories WHERE cell = ? ORDER BY idx", (key,))
        return [json.loads(r[0]) for r in rows]

    def all_trajectories(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for cell, data in self._db.execute("SELECT cell, data FROM trajectories ORDER BY cell, idx"):
            yield cell, json.loads(data)

    def count_trajectories(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0]
