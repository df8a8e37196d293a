"""Question files in Search-R1's formats: FlashRAG jsonl records and Search-R1 parquet rows written as JSON lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Single-hop sets are easy; the multi-hop sets Search-R1 evaluates on are medium, MuSiQue (2-4 hops) hard.
DIFFICULTY_BY_SOURCE = {
    "nq": "easy", "triviaqa": "easy", "popqa": "easy",
    "hotpotqa": "medium", "2wikimultihopqa": "medium", "bamboogle": "medium",
    "musique": "hard",
}
_SPLIT_BY_PREFIX = {"train": "train", "dev": "test", "validation": "test", "val": "test", "test": "test"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class QARecord:
    record_id: str
    question: str
    answers: tuple[str, ...]
    source: str  # data_source, or the file's stem when the record has none
    split: str  # "train" or "test"
    difficulty: str

    @property
    def key(self) -> str:
        """The task-id suffix: `<source>.<id>`, reduced to characters safe in ids."""
        return _UNSAFE.sub("_", f"{self.source}.{self.record_id}")


def load_qa(path: Path, default_split: str = "test") -> tuple[QARecord, ...]:
    """Read one QA file. Split: `extra_info.split`, else the id's prefix (`test_0`), else `default_split`."""
    if path.suffix == ".parquet":
        raise ValueError(f"{path}: parquet is not read directly; write its rows as JSON lines first "
                         "(pandas: read_parquet(path).to_json(out, orient='records', lines=True))")
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(_record(json.loads(line), path.stem, default_split))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{path}:{number}: not a QA record with 'question' and 'golden_answers' ({err})"
                ) from err
    if not records:
        raise ValueError(f"{path}: the QA file holds no records")
    return tuple(records)


def _record(row: dict[str, Any], file_stem: str, default_split: str) -> QARecord:
    record_id = str(row.get("id", ""))
    answers = row.get("golden_answers")
    if answers is None:
        answers = row["reward_model"]["ground_truth"]["target"]
    if isinstance(answers, str):
        answers = [answers]
    answers = tuple(str(a) for a in answers if str(a).strip())
    question = str(row["question"]).strip()
    if not question or not answers or not record_id:
        raise ValueError("empty id, question or answers")
    source = str(row.get("data_source") or file_stem)
    split = (row.get("extra_info") or {}).get("split") or record_id.split("_", 1)[0]
    return QARecord(record_id, question, answers, source, _SPLIT_BY_PREFIX.get(str(split), default_split),
                    DIFFICULTY_BY_SOURCE.get(source, "easy"))
