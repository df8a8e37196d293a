"""Keys and values of recent prompts, found again by the longest cached prefix of a new prompt.

A multi-turn episode's next prompt is its last prompt plus the action and the next observation, so with the
cache a turn costs a forward over its new tokens only, not over the whole history (vLLM's prefix caching does
the same on GPU). Prefixes are fingerprinted by a 64-bit polynomial hash of their token ids; a hit is confirmed
by comparing the ids themselves.
"""

from __future__ import annotations

import copy
from collections import Counter, OrderedDict
from typing import Any, Sequence

import numpy as np

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so every prefix gets a distinct power


class PrefixCache:
    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int, int], tuple[tuple[int, ...], Any, Any]] = OrderedDict()
        self._lengths: Counter[int] = Counter()
        self._powers = np.ones(1, dtype=np.uint64)

    def clear(self) -> None:
        """Forget everything: cached states belong to the weights that computed them."""
        self._entries.clear()
        self._lengths.clear()

    def _fingerprints(self, ids: Sequence[int]) -> np.ndarray:
        """fingerprints[l] identifies ids[:l]."""
        if len(self._powers) < len(ids):
            self._powers = np.cumprod(np.full(max(len(ids), 2 * len(self._powers)), _BASE, dtype=np.uint64))
        terms = np.asarray(ids, dtype=np.uint64) * self._powers[: len(ids)]
        return np.concatenate(([np.uint64(0)], np.cumsum(terms, dtype=np.uint64)))

    def longest(self, ids: Sequence[int]) -> tuple[int, Any, Any]:
        """(length, a private copy of the cached state, its last logits) of the longest cached prefix of `ids`
        shorter than `ids`; (0, None, None) when none is."""
        if not self._entries:
            return 0, None, None
        prints = self._fingerprints(ids)
        for length in sorted((n for n in self._lengths if n < len(ids)), reverse=True):
            key = (length, int(prints[length]))
            entry = self._entries.get(key)
            if entry is not None and entry[0] == tuple(ids[:length]):
                self._entries.move_to_end(key)
                return length, copy.deepcopy(entry[1]), entry[2]
        return 0, None, None

    def put(self, ids: Sequence[int], state: Any, logits: Any) -> None:
        """Keep a copy of the state after `ids` (and the logits at its last position)."""
        key = (len(ids), int(self._fingerprints(ids)[len(ids)]))
        if key not in self._entries:
            self._lengths[len(ids)] += 1
        self._entries[key] = (tuple(ids), copy.deepcopy(state), logits)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            (length, _), _ = self._entries.popitem(last=False)
            self._lengths[length] -= 1
            if not self._lengths[length]:
                del self._lengths[length]
