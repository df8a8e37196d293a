"""Retrieval over the corpus: a small Retriever protocol and its BM25 implementation (bm25s)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np
import Stemmer

from env_server.envs.searchqa.corpus import Document


@dataclass(frozen=True, slots=True)
class Hit:
    position: int  # row of the document in the corpus
    score: float


class Retriever(Protocol):
    """Ranks corpus rows for a query; built once per process and shared, read-only, by every episode."""

    def search(self, query: str, k: int) -> tuple[Hit, ...]:
        """The best k rows with a positive score, best first, ties broken by row (so results are deterministic)."""
        ...


class BM25Retriever:
    """Lucene-flavoured BM25 over title and text, with English stop words and Snowball stemming."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._stemmer_lock = threading.Lock()  # a PyStemmer object must not be used by two threads at once
        tokens = bm25s.tokenize(
            [f"{d.title}\n{d.text}" for d in documents], stemmer=self._stemmer.stemWords, show_progress=False
        )
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)
        self._vocab = self._bm25.vocab_dict
        self.size = len(documents)

    def search(self, query: str, k: int) -> tuple[Hit, ...]:
        with self._stemmer_lock:
            words = bm25s.tokenize([query], stemmer=self._stemmer.stemWords, return_ids=False, show_progress=False)[0]
        known = [w for w in words if w in self._vocab]
        if not known or k <= 0:
            return ()
        scores = self._bm25.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # argpartition may pick any of several rows tied at the cut; take every row tied with the k-th score.
        cut = max(float(scores[top].min()), np.finfo(np.float32).tiny)
        tied = np.flatnonzero(scores >= cut)
        ranked = tied[np.lexsort((tied, -scores[tied]))][:k]
        return tuple(Hit(int(row), float(scores[row])) for row in ranked)
