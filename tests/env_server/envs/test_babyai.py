"""BabyAI in process: task listing, determinism, the oracle on every difficulty and split, invalid actions."""

from __future__ import annotations

import json
import re

import pytest

from env_server.envs.babyai import BabyAIEnv
from env_server.envs.babyai.excluded import EXCLUDED
from env_server.errors import EpisodeFinished, UnknownTask

ORACLE_TASKS = 20
MAX_TURNS = 20


@pytest.fixture(scope="module")
def env() -> BabyAIEnv:
    return BabyAIEnv()


def _spread(tasks, count):
    """Every k-th task, so a small sample covers every level and a wide range of seeds."""
    step = max(1, len(tasks) // count)
    return tasks[::step][:count]


def _play(env, task_id, actions):
    episode = env.reset(task_id, seed=7)
    transcript = [(episode.observe().text, episode.observe().valid_actions, dict(episode.observe().fields))]
    for action in actions:
        result = episode.step(action)
        obs = result.observation
        transcript.append((action, obs.text, obs.valid_actions, dict(obs.fields), result.reward, result.done, result.action_valid))
        if result.done:
            break
    return transcript


def test_same_task_and_actions_give_the_same_transcript(env):
    task_id = env.tasks("test", "hard")[2].task_id
    actions = ["turn left", "move forward", "check available actions", "dance", "turn right", "move forward", "drop"]
    assert _play(env, task_id, actions) == _play(env, task_id, actions)


def test_oracle_transcripts_are_identical_on_two_resets(env):
    task_id = env.tasks("train", "medium")[3].task_id

    def oracle_run():
        episode, lines = env.reset(task_id, seed=1), []
        for _ in range(MAX_TURNS):
            action = episode.oracle_action()
            result = episode.step(action)
            lines.append((action, result.observation.text, result.observation.valid_actions, result.reward))
            if result.done:
                return lines
        return lines

    assert oracle_run() == oracle_run()


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_oracle_wins_every_sampled_task_within_the_default_turns(env, split, difficulty):
    assert env.spec.default_max_turns == MAX_TURNS
    for task in _spread(env.tasks(split, difficulty), ORACLE_TASKS):
        episode = env.reset(task.task_id, seed=0)
        obs, result = episode.observe(), None
        for _ in range(MAX_TURNS):
            action = episode.oracle_action()
            assert action in obs.valid_actions, (task.task_id, action)
            result = episode.step(action)
            assert result.action_valid
            obs = result.observation
            if result.done:
                break
        assert result is not None and result.done, f"{task.task_id}: oracle did not finish in {MAX_TURNS} turns"
        assert result.outcome is not None and result.outcome.success and result.reward == 1.0
        assert 0.0 < result.outcome.score <= 1.0
        json.dumps(result.observation.fields)
        with pytest.raises(EpisodeFinished):
            episode.step("turn left")


def test_invalid_action_is_answered_in_the_envs_words_and_counts_a_turn(env):
    episode = env.reset(env.tasks("test", "easy")[0].task_id, seed=0)
    before = episode.observe()
    unparseable = episode.step("fly to the moon")
    assert not unparseable.action_valid and not unparseable.done and unparseable.reward == 0.0
    assert unparseable.observation.text.startswith("Invalid action 'fly to the moon'")
    not_now = episode.step("pick up purple unicorn")
    assert not not_now.action_valid
    assert not_now.observation.text.startswith("Nothing happens.")
    assert not_now.observation.valid_actions == before.valid_actions  # the grid did not change


def test_check_available_actions_lists_the_valid_actions(env):
    episode = env.reset(env.tasks("train", "easy")[0].task_id, seed=0)
    valid = episode.observe().valid_actions
    assert valid[:2] == ("turn left", "turn right") and valid[-1] == "check available actions"
    result = episode.step("check available actions")
    assert result.action_valid
    assert result.observation.text.startswith("Available actions: " + ", ".join(valid) + ".")


def test_observation_describes_mission_view_and_carrying(env):
    episode = env.reset("babyai/test/easy/GoToRedBall-00003", seed=0)
    obs = episode.observe()
    assert obs.text.startswith(f"Your mission: {obs.fields['mission']}.")
    assert "You are carrying nothing." in obs.text
    assert obs.fields["carrying"] is None and obs.fields["direction"] in ("east", "south", "west", "north")
    assert json.loads(json.dumps(obs.fields)) == obs.fields  # JSON-compatible values only
    for item in obs.fields["visible"]:
        assert set(item) == {"label", "color", "type", "state", "dx", "dy"}
    assert re.search(r"- an? .+ \d+ steps? (ahead|behind|to the (left|right))", obs.text)


def test_pick_up_changes_what_the_agent_carries(env):
    task = next(t for t in env.tasks("test", "medium") if t.metadata["level"] == "PickupDist")
    episode = env.reset(task.task_id, seed=0)
    for _ in range(MAX_TURNS):
        action = episode.oracle_action()
        result = episode.step(action)
        if action.startswith("pick up "):
            assert result.observation.fields["carrying"] == action.removeprefix("pick up ")
            break
    else:
        pytest.fail("the oracle never picked anything up")


def test_tasks_are_listed_per_split_and_difficulty(env):
    for split in env.spec.splits:
        for difficulty, count in split.task_counts.items():
            tasks = env.tasks(split.name, difficulty)
            assert len(tasks) == count == len({t.task_id for t in tasks})
            assert all(t.task_id.startswith(f"babyai/{split.name}/{difficulty}/") for t in tasks)
    assert env.tasks("test", "easy") == BabyAIEnv().tasks("test", "easy")


def test_train_and_test_use_disjoint_level_seeds(env):
    for difficulty in env.spec.difficulties:
        train = {(t.metadata["level"], t.metadata["level_seed"]) for t in env.tasks("train", difficulty)}
        test = {(t.metadata["level"], t.metadata["level_seed"]) for t in env.tasks("test", difficulty)}
        assert train and test and not train & test


@pytest.mark.parametrize(
    "task_id",
    [
        "babyai/test/easy/GoToRedBall-99999",
        "babyai/valid/easy/GoToRedBall-00001",
        "babyai/test/easy/BossLevel-00001",
        "babyai/test/easy/NoSuchLevel-00001",
        "babyai/test/easy/GoToRedBall-1",
        "textcraft/test/easy/0001",
    ],
)
def test_unknown_task_id_raises_unknown_task(env, task_id):
    with pytest.raises(UnknownTask, match="babyai|level|range"):
        env.reset(task_id, seed=0)


def test_excluded_instance_is_refused_with_the_reason(env):
    assert EXCLUDED, "the generated exclusion list is empty: regenerate it (python -m env_server.envs.babyai.exclusions)"
    task_id = min(EXCLUDED)
    assert task_id not in {t.task_id for t in env.tasks(task_id.split("/")[1], task_id.split("/")[2])}
    with pytest.raises(UnknownTask, match="excluded: the oracle does not win it"):
        env.reset(task_id, seed=0)


def test_hard_rung_reaches_boss_level(env):
    levels = [t.metadata["level"] for t in env.tasks("test", "hard")]
    assert levels[-1] == "BossLevel" and {"GoTo", "Synth", "MiniBossLevel"} <= set(levels)


def test_unknown_split_or_difficulty_raises_unknown_task(env):
    with pytest.raises(UnknownTask, match="splits: train, test"):
        env.tasks("validation", "easy")
    with pytest.raises(UnknownTask, match="difficulties: easy, medium, hard"):
        env.tasks("train", "impossible")
