"""BM25 search over the catalog, built once per process: WebShop's document text, Lucene-like analysis and scoring.

A document is the lowercased title, description, first bullet point and option text, as WebShop's pyserini
collection; tokens are words (single characters kept), less Lucene's 33 English stopwords, Porter/Snowball stemmed.
Ranking uses Lucene's BM25 (k1=0.9, b=0.4, pyserini's defaults); ties go to the earlier product in the file.
"""

from __future__ import annotations

import re
import threading
from typing import Sequence

import bm25s
import numpy as np
import Stemmer

from env_server.envs.webshop.catalog import Product

MAX_RESULTS = 50  # WebShop shows the top 50 hits, 10 per page
_TOKEN = re.compile(r"(?u)\b\w+\b")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def option_text(product: Product) -> str:
    return ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.options)


def document_text(product: Product) -> str:
    first_bullet = product.bullet_points[0] if product.bullet_points else ""
    return " ".join((product.title, product.description, first_bullet, option_text(product))).lower()


class SearchIndex:
    """Read-only after construction; `search` is safe to call from several threads."""

    def __init__(self, products: Sequence[Product]) -> None:
        self._asins = tuple(p.asin for p in products)
        self._stemmer = Stemmer.Stemmer("english")
        self._lock = threading.Lock()  # PyStemmer objects are not thread-safe
        corpus = [self._tokens(document_text(p)) for p in products]
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus]
        self._vocab = vocab
        self._bm25 = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        self._bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)

    def _tokens(self, text: str) -> list[str]:
        words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
        with self._lock:
            return self._stemmer.stemWords(words)

    def search(self, query: str, limit: int = MAX_RESULTS) -> tuple[str, ...]:
        """ASINs of the best `limit` products with a positive score, best first."""
        ids = [self._vocab[t] for t in self._tokens(query) if t in self._vocab]
        if not ids:
            return ()
        scores = self._bm25.get_scores(ids)
        hits = np.flatnonzero(scores > 0)
        hit_scores = scores[hits]
        if len(hits) > limit:  # keep the top `limit` and every product tied with the last of them
            keep = hit_scores >= np.partition(hit_scores, len(hits) - limit)[len(hits) - limit]
            hits, hit_scores = hits[keep], hit_scores[keep]
        order = hits[np.lexsort((hits, -hit_scores))][:limit]
        return tuple(self._asins[i] for i in order)
