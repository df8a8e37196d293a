"""An evaluation Job hands its cell's records back through its log, as one delimited, checksummed block.

Why the log and not the checkpoints volume: the log needs no second pod to read it (a ReadWriteOnce claim, as the
gpu-job overlay's, can be mounted by one node at a time, so a reader pod may not even schedule while a trainer
holds it), works with any storage, and needs only `pods/log` read access. What makes it robust:

- the records are gzip-compressed JSON in base64, so a large cell stays well under the kubelet's log rotation size;
- every data line carries the cell key and its index, so lines other processes print in between (vLLM, Ray) are
  skipped and the block is reassembled in order;
- the header gives the record count, the byte length and a SHA-256 of the compressed payload: a truncated, torn or
  mixed-up block is refused (and the cell's Job counts as failed, so it is retried), never half-read;
- the last complete block for the cell wins, so a container restarted inside one pod does not duplicate records.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from typing import Any, Iterable

MARK = "SHIFTGYM-RECORDS"
LINE_CHARS = 4096  # base64 characters per line: far below any log line limit
_HEADER = re.compile(rf"^{MARK} BEGIN cell=(\S+) records=(\d+) bytes=(\d+) lines=(\d+) sha256=([0-9a-f]{{64}})$")
_LINE = re.compile(rf"^{MARK} (\S+) (\d+) ([A-Za-z0-9+/=]+)$")
_END = re.compile(rf"^{MARK} END cell=(\S+)$")


class NoRecords(ValueError):
    """The log holds no complete, intact block for the cell; the message says what was found."""


def encode(cell_key: str, records: list[dict[str, Any]]) -> str:
    """The block to print (ends with a newline)."""
    payload = gzip.compress(json.dumps(records, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
    text = base64.b64encode(payload).decode()
    chunks = [text[i:i + LINE_CHARS] for i in range(0, len(text), LINE_CHARS)] or [""]
    lines = [f"{MARK} BEGIN cell={cell_key} records={len(records)} bytes={len(payload)} lines={len(chunks)} "
             f"sha256={hashlib.sha256(payload).hexdigest()}"]
    lines += [f"{MARK} {cell_key} {i} {chunk}" for i, chunk in enumerate(chunks)]
    lines.append(f"{MARK} END cell={cell_key}")
    return "\n".join(lines) + "\n"


def decode(cell_key: str, log: str | Iterable[str]) -> list[dict[str, Any]]:
    """The records of the cell's last complete block in a log; NoRecords if there is none."""
    lines = log.splitlines() if isinstance(log, str) else log
    header: tuple[int, int, int, str] | None = None
    chunks: dict[int, str] = {}
    found: list[dict[str, Any]] | None = None
    problems: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.startswith(MARK):
            continue
        if (m := _HEADER.match(line)) and m.group(1) == cell_key:
            header = (int(m.group(2)), int(m.group(3)), int(m.group(4)), m.group(5))
            chunks = {}
        elif (m := _LINE.match(line)) and m.group(1) == cell_key and header is not None:
            chunks[int(m.group(2))] = m.group(3)
        elif (m := _END.match(line)) and m.group(1) == cell_key and header is not None:
            try:
                found = _unpack(header, chunks)
            except NoRecords as err:
                problems.append(str(err))
            header = None
    if found is None:
        detail = "; ".join(problems) if problems else ("a block that never ended" if header else "no block")
        raise NoRecords(f"no intact record block for cell {cell_key} in the log ({detail})")
    return found


def _unpack(header: tuple[int, int, int, str], chunks: dict[int, str]) -> list[dict[str, Any]]:
    count, size, line_count, digest = header
    if sorted(chunks) != list(range(line_count)):
        raise NoRecords(f"{len(chunks)} of {line_count} lines")
    payload = base64.b64decode("".join(chunks[i] for i in range(line_count)))
    if len(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
        raise NoRecords("checksum mismatch")
    records = json.loads(gzip.decompress(payload))
    if not isinstance(records, list) or len(records) != count:
        raise NoRecords(f"{len(records)} records where the header says {count}")
    return records
