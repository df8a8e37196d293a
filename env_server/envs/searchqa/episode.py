"""One SearchQA episode: parse `<search>`/`<answer>` actions, retrieve, render `<information>`, score the answer."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from env_server.envs.searchqa.corpus import Document
from env_server.envs.searchqa.normalize import exact_match
from env_server.envs.searchqa.retriever import Retriever
from env_server.errors import EpisodeFinished
from env_server.types import Observation, Outcome, StepResult, TaskInfo

# The first complete tag wins, as in Search-R1, whose generation stops at the first </search> or </answer>;
# text around it (reasoning in <think>, say) is ignored.
_ACTION = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
# The two action forms as templates (env_server/envs/base.py): `<query>` and `<text>` stand for any text, so every
# action format can express them (function_call: {"name": "search", "arguments": {"input": ...}}).
ACTION_TEMPLATES = ("<search><query></search>", "<answer><text></answer>")
INSTRUCTIONS = (
    "Answer the question below. To look something up, write a query between <search> and </search>; the best "
    "matching documents will be returned between <information> and </information>. You may search as often as you "
    "need. When you know the answer, write it, in as few words as possible, between <answer> and </answer>."
)
NO_TAG = (
    "That action was not understood. I should either write a search query between <search> and </search>, "
    "or give my final answer between <answer> and </answer>."
)
EMPTY_TAG = (
    "That {what} was empty. I should write a search query between <search> and </search>, or my final answer "
    "between <answer> and </answer>, and put something inside the tags."
)


@dataclass(frozen=True, slots=True)
class Hop:
    query: str
    row: int  # corpus row of the document this hop must find


@dataclass(frozen=True, slots=True)
class Problem:
    question: str
    answers: tuple[str, ...]
    hops: tuple[Hop, ...]  # empty for loaded questions, whose supporting documents are unknown


class SearchQAEpisode:
    def __init__(self, task: TaskInfo, problem: Problem, corpus: Sequence[Document], retriever: Retriever,
                 topk: int) -> None:
        self.task = task
        self._problem = problem
        self._corpus = corpus
        self._retriever = retriever
        self._topk = topk
        self._seen: set[int] = set()  # rows shown so far; used only for membership
        self._searches = 0
        self._queries: set[str] = set()  # membership only
        self._done = False
        self._observation = Observation(text=f"{INSTRUCTIONS}\nQuestion: {problem.question}",
                                        valid_actions=ACTION_TEMPLATES,
                                        fields={"instructions": INSTRUCTIONS, **self._fields(last_query="", rows=())})

    def observe(self) -> Observation:
        return self._observation

    def step(self, action: str) -> StepResult:
        if self._done:
            raise EpisodeFinished("the question has been answered; reset to start a new episode")
        match = _ACTION.search(action)
        if match is None:
            return self._invalid(NO_TAG)
        tag, content = match.group(1), " ".join(match.group(2).split())
        if not content:
            return self._invalid(EMPTY_TAG.format(what="search query" if tag == "search" else "answer"))
        if tag == "search":
            return self._search(content)
        return self._answer(content)

    def oracle_action(self) -> str:
        """Search for the first supporting document not yet shown, then answer with the first gold answer.

        A hop whose search has already been made is not searched again (it would return the same documents),
        so the oracle always finishes.
        """
        for hop in self._problem.hops:
            if hop.row not in self._seen and hop.query not in self._queries:
                return f"<search>{hop.query}</search>"
        if not self._problem.hops and self._searches == 0:
            return f"<search>{self._problem.question}</search>"
        return f"<answer>{self._problem.answers[0]}</answer>"

    def close(self) -> None:
        self._seen.clear()
        self._queries.clear()

    def _search(self, query: str) -> StepResult:
        rows = tuple(hit.position for hit in self._retriever.search(query, self._topk))
        self._seen.update(rows)
        self._queries.add(query)
        self._searches += 1
        self._observation = Observation(text=render_information(self._corpus[r] for r in rows),
                                        valid_actions=ACTION_TEMPLATES,
                                        fields=self._fields(last_query=query, rows=rows))
        return StepResult(self._observation, reward=0.0, done=False, truncated=False, action_valid=True)

    def _answer(self, answer: str) -> StepResult:
        correct = exact_match(answer, self._problem.answers)
        self._done = True
        verdict = "correct" if correct else "not correct"
        text = f"Final answer: {answer}. The answer is {verdict}."
        fields = {**self._fields(last_query="", rows=()), "answer": answer, "message": text}
        self._observation = Observation(text=text, fields=fields)
        score = 1.0 if correct else 0.0
        return StepResult(self._observation, reward=score, done=True, truncated=False, action_valid=True,
                          outcome=Outcome(success=correct, score=score))

    def _invalid(self, text: str) -> StepResult:
        self._observation = Observation(text=text, valid_actions=ACTION_TEMPLATES,
                                        fields={**self._fields(last_query="", rows=()), "message": text})
        return StepResult(self._observation, reward=0.0, done=False, truncated=False, action_valid=False)

    def _fields(self, last_query: str, rows: tuple[int, ...]) -> dict[str, Any]:
        docs = [{"id": self._corpus[r].doc_id, "title": self._corpus[r].title, "text": self._corpus[r].text}
                for r in rows]
        return {"question": self._problem.question, "last_query": last_query, "docs": docs,
                "searches": self._searches}


def render_information(documents: Iterable[Document]) -> str:
    """Search-R1's rendering: `Doc i(Title: "<title>") <text>` per line, inside one <information> block."""
    lines = [f"Doc {i}(Title: \"{d.title}\") {d.text}" for i, d in enumerate(documents, start=1)]
    if not lines:
        return "<information>No document matched the query.</information>"
    return "<information>" + "\n".join(lines) + "</information>"
