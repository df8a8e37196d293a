"""SearchQAEnv: lists tasks, builds the corpus and its index once per process, and starts episodes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from env_server.envs.searchqa import corpus as corpus_files
from env_server.envs.searchqa.corpus import Document
from env_server.envs.searchqa.episode import Hop, Problem, SearchQAEpisode
from env_server.envs.searchqa.kb import KBConfig, KnowledgeBase, generate, invented_words
from env_server.envs.searchqa.qa import QARecord, load_qa
from env_server.envs.searchqa.questions import HOPS_BY_DIFFICULTY, generate_questions
from env_server.envs.searchqa.retriever import BM25Retriever, Retriever
from env_server.errors import UnknownTask
from env_server.types import EnvSpec, SplitSpec, TaskInfo

log = logging.getLogger(__name__)

DIFFICULTIES = ("easy", "medium", "hard")
SPLITS = ("train", "test")
ENV_CORPUS = "SHIFTGYM_SEARCHQA_CORPUS"  # a Search-R1 corpus jsonl
ENV_QA = "SHIFTGYM_SEARCHQA_QA"  # QA files, separated by os.pathsep
ENV_WIKI = "SHIFTGYM_SEARCHQA_WIKI"  # "off", or a summaries json to use instead of the installed package's
ENV_TOPK = "SHIFTGYM_SEARCHQA_TOPK"
QUESTION_SEED = 7321


class SearchQAEnv:
    def __init__(
        self,
        corpus_path: str | Path | None = None,
        qa_paths: Sequence[str | Path] | None = None,
        *,
        topk: int | None = None,
        kb: KBConfig | None = None,
        wiki: str | Path | None = None,
        tasks_per_difficulty: tuple[int, int] = (1000, 200),
        make_retriever: Callable[[Sequence[Document]], Retriever] = BM25Retriever,
    ) -> None:
        """Arguments left out are read from the SHIFTGYM_SEARCHQA_* environment variables, then defaults.

        Args:
            corpus_path: a Search-R1 corpus; it replaces the Wikipedia distractors (and, with qa_paths, the
                knowledge base too).
            qa_paths: QA files; when given, their questions are the tasks instead of the generated ones.
            topk: documents per search (Search-R1's default is 3).
            wiki: "off" for no Wikipedia distractors, or the path of a summaries json.
            tasks_per_difficulty: generated questions per difficulty in (train, test).
        """
        corpus_path = corpus_path or os.environ.get(ENV_CORPUS) or None
        if qa_paths is None:
            qa_paths = [p for p in os.environ.get(ENV_QA, "").split(os.pathsep) if p]
        self._topk = topk if topk is not None else int(os.environ.get(ENV_TOPK, "3"))
        if self._topk < 1:
            raise ValueError(f"topk must be at least 1; got {self._topk}")

        # The corpus: the knowledge base's documents (unless both questions and corpus are loaded), then the
        # corpus file, or else the Wikipedia distractors.
        kb = kb or KBConfig()
        knowledge = generate(kb)
        documents: list[Document] = []
        if not (qa_paths and corpus_path):
            documents += knowledge.documents(kb.seed)
        if corpus_path:
            documents += corpus_files.load_searchr1_corpus(Path(corpus_path))
        else:
            documents += self._wiki_documents(wiki if wiki is not None else os.environ.get(ENV_WIKI))
        self.corpus: tuple[Document, ...] = tuple(documents)
        self.retriever = make_retriever(self.corpus)

        if qa_paths:
            records = [r for path in qa_paths for r in load_qa(Path(path))]
            problems = self._loaded_problems(records)
        else:
            problems = self._generated_problems(knowledge, *tasks_per_difficulty)
        self._problems = {task.task_id: (task, problem) for task, problem in problems}
        self._tasks = {(s, d): tuple(t for t, _ in problems if t.split == s and t.difficulty == d)
                       for s in SPLITS for d in DIFFICULTIES}
        self._id_hint = ("q-<5 digits>" if not qa_paths else "<data_source>.<record id>")
        self._words = invented_words(knowledge)
        self.spec = EnvSpec(
            name="searchqa",
            version="1.0.0",
            difficulties=DIFFICULTIES,
            splits=tuple(SplitSpec(s, {d: len(self._tasks[s, d]) for d in DIFFICULTIES}) for s in SPLITS),
            default_max_turns=5,
            max_turns_limit=50,
            success_definition="the final <answer> equals one of the gold answers after SQuAD normalization "
                               "(lower case, no punctuation, no a/an/the, single spaces)",
            score_definition="1 when the answer is a normalized exact match, else 0; also 0 when the turn limit "
                             "ends the episode before an answer",
            difficulty_definition="hops, i.e. documents that must be found: easy 1 (one fact), medium 2 (a bridge "
                                  "through one entity, or a comparison of two), hard 3 (a bridge through two "
                                  "entities, or a comparison where one side needs a bridge); distractors and "
                                  "corpus size are per-process settings (Wikipedia summaries, knowledge-base size)",
        )
        log.info("searchqa: %d documents, %d tasks", len(self.corpus), len(self._problems))

    def lexicon_words(self) -> tuple[str, ...]:
        """Entity words for the `lexicon` adapter: the invented words of the knowledge base's names. The adapter
        decodes queries and answers before they reach the episode, so renamed gold answers still match."""
        return self._words

    def tasks(self, split: str, difficulty: str) -> tuple[TaskInfo, ...]:
        if (split, difficulty) not in self._tasks:
            raise UnknownTask(f"no tasks for split {split!r} difficulty {difficulty!r} "
                              f"(known: {', '.join(SPLITS)} / {', '.join(DIFFICULTIES)})")
        return self._tasks[split, difficulty]

    def reset(self, task_id: str, seed: int) -> SearchQAEpisode:
        """Start an episode. Retrieval is deterministic, so the seed does not change the episode."""
        if task_id not in self._problems:
            raise UnknownTask(f"unknown task id {task_id!r} (expected searchqa/<train|test>/<easy|medium|hard>/"
                              f"{self._id_hint}; list ids with tasks(split, difficulty))")
        task, problem = self._problems[task_id]
        return SearchQAEpisode(task, problem, self.corpus, self.retriever, self._topk)

    @staticmethod
    def _wiki_documents(setting: str | Path | None) -> tuple[Document, ...]:
        if str(setting) == "off":
            return ()
        path = Path(setting) if setting else corpus_files.wiki_summaries_path()
        if path is None:
            log.warning("searchqa: %s is not installed; the corpus has generated documents only",
                        corpus_files.WIKI_DISTRIBUTION)
            return ()
        return corpus_files.load_wiki_summaries(path)

    def _generated_problems(self, knowledge: KnowledgeBase, train: int, test: int) -> list[tuple[TaskInfo, Problem]]:
        row_of = {d.doc_id: row for row, d in enumerate(self.corpus)}
        problems = []
        for difficulty in DIFFICULTIES:
            questions = generate_questions(knowledge, difficulty, train + test, QUESTION_SEED)
            # Test takes the first questions and train the rest, so the two never share a question.
            for split, chunk in (("test", questions[:test]), ("train", questions[test:])):
                for i, q in enumerate(chunk):
                    task = TaskInfo(f"searchqa/{split}/{difficulty}/q-{i:05d}", split, difficulty,
                                    {"hops": str(HOPS_BY_DIFFICULTY[difficulty]), "kind": q.kind,
                                     "source": "generated", "supporting_docs": ",".join(h.doc_id for h in q.hops)})
                    hops = tuple(Hop(h.query, row_of[h.doc_id]) for h in q.hops)
                    problems.append((task, Problem(q.text, q.answers, hops)))
        return problems

    @staticmethod
    def _loaded_problems(records: list[QARecord]) -> list[tuple[TaskInfo, Problem]]:
        problems: list[tuple[TaskInfo, Problem]] = []
        seen: set[str] = set()
        for r in records:
            task_id = f"searchqa/{r.split}/{r.difficulty}/{r.key}"
            if task_id in seen:
                raise ValueError(f"two QA records map to task id {task_id!r}; give each file its own data_source")
            seen.add(task_id)
            task = TaskInfo(task_id, r.split, r.difficulty, {"source": r.source, "record_id": r.record_id})
            problems.append((task, Problem(r.question, r.answers, ())))
        return problems
