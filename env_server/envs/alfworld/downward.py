"""Copies of Fast Downward's library, lent to one game at a time and reused after it.

TextWorld's PddlEnv loads a fresh copy of libdownward.so for every game (the library keeps its loaded task in
global state, so two live games need two copies) and never unloads it: each game left about 4 MiB of mapped code
and planner state behind. Unloading a copy (dlclose) crashes the interpreter at exit, so a copy goes back to a free
list when its game closes instead; loading the next task into it frees the previous task's state. The number of
copies is the most games ever open at once, not the number of games played.
"""

from __future__ import annotations

import threading
from ctypes import CDLL

import fast_downward


class LibraryPool:
    """Loaded libdownward copies: borrow one per live game, give it back when the game closes."""

    def __init__(self) -> None:
        self._free: list[CDLL] = []
        self._lock = threading.Lock()  # games start and close on different threads (env pool, event loop)
        self.loaded = 0  # copies ever loaded by this pool: its high-water mark of live games

    def borrow(self) -> CDLL:
        with self._lock:
            if self._free:
                return self._free.pop()
        library = fast_downward.load_lib()
        with self._lock:
            self.loaded += 1
        return library

    def give_back(self, library: CDLL) -> None:
        with self._lock:
            self._free.append(library)

    @property
    def idle(self) -> int:
        return len(self._free)

    @property
    def lent(self) -> int:
        """Copies held by live games now."""
        return self.loaded - self.idle


# One per process: a copy is process memory that no game owns for longer than it lives.
LIBRARIES = LibraryPool()
