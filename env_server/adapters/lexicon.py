"""`lexicon`: renames the environment's entity words (items, colors, product words, ...) to nonce words, one seeded
lexicon per episode: a semantic-prior shift that keeps the task isomorphic.

Renaming works on whole words (runs of letters), so multi-word entities stay consistent ("oak log" -> "vadimok
zuretex") and a word inside another ("oak" in "soak") is never touched. Lower, Title and UPPER case carry over;
a word in mixed case ("iPhone") is left as it is, so decoding is exact: parse(encode(a)) == a.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, ClassVar, Mapping, Sequence

from env_server.adapters.base import AdapterContext, AdapterKind, Rejected, Turn, register
from env_server.errors import InvalidRequest
from env_server.types import Observation

_WORD = re.compile(r"[A-Za-z]+")
_WORD_SPLIT = re.compile(r"([A-Za-z]+)")
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_ENDINGS = "kxz"  # few English words end a three-syllable stem in these, so nonces rarely meet a real word
MIN_LETTERS = 3
# Function words are never entities, even inside multi-word names ("pack of two", "bucket of milk").
STOPWORDS = frozenset("and the with for from into onto using of to in on at by or a an".split())


def entity_tokens(words: Sequence[str]) -> list[str]:
    """The lowercase words the lexicon renames, from an environment's entity names (multi-word names split)."""
    tokens = {t.lower() for phrase in words for t in _WORD.findall(phrase)}
    return sorted(t for t in tokens if len(t) >= MIN_LETTERS and t not in STOPWORDS)


def _nonce(word: str, seed: int, attempt: int) -> str:
    digest = hashlib.blake2b(f"{seed}/{word}/{attempt}".encode(), digest_size=8).digest()
    letters = [_CONSONANTS[digest[i] % len(_CONSONANTS)] + _VOWELS[digest[i + 3] % len(_VOWELS)] for i in range(3)]
    return "".join(letters) + _ENDINGS[digest[6] % len(_ENDINGS)]


@dataclass(frozen=True, slots=True)
class Lexicon:
    forward: Mapping[str, str]  # entity word -> nonce, both lowercase
    backward: Mapping[str, str]
    # The same maps over every case a word is renamed in (lower, Title, UPPER), so renaming is one dict lookup
    # per word, done in C; a word in any other case is in neither and stays as it is.
    _forward_cased: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _backward_cased: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    seen: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    seen_lists: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._forward_cased.update(_cased(self.forward))
        self._backward_cased.update(_cased(self.backward))

    @classmethod
    def build(cls, tokens: Sequence[str], seed: int) -> "Lexicon":
        taken = set(tokens)
        forward: dict[str, str] = {}
        for word in tokens:  # sorted, so collisions resolve the same way every time
            attempt = 0
            while (nonce := _nonce(word, seed, attempt)) in taken:
                attempt += 1
            taken.add(nonce)
            forward[word] = nonce
        return cls(forward, {v: k for k, v in forward.items()})

    def encode(self, text: str) -> str:
        # Most strings (commands, titles, buttons) come back every turn: remember their renaming.
        renamed = self.seen.get(text)
        if renamed is None:
            renamed = _rename_words(text, self._forward_cased)
            if len(self.seen) < _REMEMBERED:
                self.seen[text] = renamed
        return renamed

    def encode_all(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        # A valid-action list often repeats turn after turn: one lookup instead of one per action.
        renamed = self.seen_lists.get(texts)
        if renamed is None:
            renamed = tuple(map(self.encode, texts))
            if len(self.seen_lists) < _REMEMBERED_LISTS:
                self.seen_lists[texts] = renamed
        return renamed

    def decode(self, text: str) -> str:
        return _rename_words(text, self._backward_cased)  # model text rarely repeats: nothing to remember


_REMEMBERED = 100_000  # strings per lexicon; past that, new ones are renamed without being kept
_REMEMBERED_LISTS = 4_096


def _cased(table: Mapping[str, str]) -> dict[str, str]:
    cased: dict[str, str] = {}
    for word, new in table.items():
        cased[word.title()] = new.title()
        cased[word.upper()] = new.upper()
        cased[word] = new
    return cased


def _rename_words(text: str, cased: Mapping[str, str]) -> str:
    # split() with a capturing group puts the words at odd indices; map(get, words, words) swaps them in C.
    parts = _WORD_SPLIT.split(text)
    words = parts[1::2]
    parts[1::2] = map(cased.get, words, words)
    return "".join(parts)


def _rename(value: Any, lexicon: Lexicon) -> Any:
    if isinstance(value, str):
        return lexicon.encode(value)
    if isinstance(value, dict):
        return {lexicon.encode(k): _rename(v, lexicon) for k, v in value.items()}
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):  # lists of names repeat turn after turn
            return list(lexicon.encode_all(tuple(value)))
        return [_rename(v, lexicon) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class LexiconAdapter:
    name: ClassVar[str] = "lexicon"
    lexicon: Lexicon

    def render(self, obs: Observation, turn: Turn) -> Observation:
        fields = _rename(dict(obs.fields), self.lexicon)
        derive = obs.text_of_fields  # JSON or key-value text of the fields: render it from the renamed ones
        text = derive(fields) if derive is not None else self.lexicon.encode(obs.text)
        return obs.but(text=text, valid_actions=self.lexicon.encode_all(obs.valid_actions), fields=fields,
                       text_of_fields=derive)

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        return self.lexicon.decode(text)

    def encode(self, action: str, obs: Observation) -> str:
        return self.lexicon.encode(action)


class _Cache:
    """Recently built lexicons by (entity words, seed): a webshop catalog has thousands of words."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[tuple[int, int], tuple[Sequence[str], Lexicon]] = OrderedDict()
        self._tokens: dict[int, tuple[Sequence[str], list[str]]] = {}
        self._size = size
        self._lock = Lock()

    def get(self, words: Sequence[str], seed: int) -> Lexicon:
        key = (id(words), seed)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] is words:
                self._items.move_to_end(key)
                return hit[1]
            cached = self._tokens.get(id(words))
            if cached is None or cached[0] is not words:
                cached = (words, entity_tokens(words))
                self._tokens[id(words)] = cached
            lexicon = Lexicon.build(cached[1], seed)
            self._items[key] = (words, lexicon)
            if len(self._items) > self._size:
                self._items.popitem(last=False)
            return lexicon


_CACHE = _Cache()


def _build(params: Mapping[str, str], context: AdapterContext) -> LexiconAdapter:
    if context.lexicon_words is None:
        raise InvalidRequest("adapter 'lexicon' needs the environment's entity words, and this environment offers "
                             "none (it has no lexicon_words()); drop 'lexicon' from the interface")
    return LexiconAdapter(_CACHE.get(context.lexicon_words(), context.seed))


KIND = register(AdapterKind(
    name="lexicon",
    description="Renames the environment's entity words to nonce words from a lexicon seeded by the episode seed.",
    params=(),
    build=_build,
))
