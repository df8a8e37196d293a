"""ALFWorld on TextWorld's PDDL engine: generated games, real json_2.1.1 games, ids, determinism and the oracle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from env_server.envs.alfworld import AlfWorldEnv, games, generator
from env_server.errors import UnknownTask
from tests.formats import formats_path

REPO = Path(__file__).resolve().parents[3]

# Cheap generated tasks (small rooms) for each difficulty; hard kitchens take the planner tens of seconds.
SAMPLE_TASKS = {
    "easy": ["alfworld/valid_seen/easy/pick_and_place-00000", "alfworld/valid_seen/easy/look_at_obj_in_light-00001"],
    "medium": ["alfworld/valid_seen/medium/pick_two_obj_and_place-00000"],
    "hard": ["alfworld/valid_seen/hard/pick_two_obj_and_place-00001"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> AlfWorldEnv:
    return AlfWorldEnv(cache_dir=tmp_path_factory.mktemp("alfworld-cache"))


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    shutil.copytree(formats_path("alfworld_game_sample"), tmp_path / "data")
    return tmp_path / "data"


def play_oracle(episode, max_steps: int = 40) -> list[str]:
    transcript = [episode.observe().text]
    for _ in range(max_steps):
        result = episode.step(episode.oracle_action())
        transcript.append(result.observation.text)
        if result.done:
            assert result.outcome is not None and result.outcome.success and result.reward == 1.0
            return transcript
    raise AssertionError(f"oracle did not win {episode.task.task_id}")


def test_spec_counts_match_task_lists(env: AlfWorldEnv) -> None:
    assert env.spec.default_max_turns == 30
    for split in env.spec.splits:
        for level, count in split.task_counts.items():
            tasks = env.tasks(split.name, level)
            assert len(tasks) == count
            assert len({t.task_id for t in tasks}) == count
            assert all(t.task_id.startswith(f"alfworld/{split.name}/{level}/") for t in tasks)


def test_unknown_ids_and_splits_raise_unknown_task(env: AlfWorldEnv) -> None:
    for bad in ("alfworld/train/easy/pick_two_obj_and_place-00000", "alfworld/train/easy/pick_and_place-99999",
                "babyai/test/easy/0001", ""):
        with pytest.raises(UnknownTask, match="expected alfworld/"):
            env.reset(bad, 0)
    with pytest.raises(UnknownTask, match="splits: train"):
        env.tasks("test", "easy")


def test_observation_has_admissible_commands_and_fields(env: AlfWorldEnv) -> None:
    episode = env.reset(SAMPLE_TASKS["easy"][0], 0)
    obs = episode.observe()
    assert "You are in the middle of a room" in obs.text and "Your task is to: " in obs.text
    assert obs.valid_actions == tuple(sorted(obs.valid_actions)) and "look" in obs.valid_actions
    assert obs.fields["admissible_commands"] == list(obs.valid_actions)
    assert obs.fields["location"] is None and obs.fields["inventory"] == []
    json.dumps(obs.fields)
    result = episode.step(obs.valid_actions[0])  # "go to ..."
    assert result.action_valid and result.observation.text.startswith("You arrive at ")
    assert result.observation.fields["location"] == obs.valid_actions[0].removeprefix("go to ")


def test_invalid_action_answers_nothing_happens(env: AlfWorldEnv) -> None:
    episode = env.reset(SAMPLE_TASKS["easy"][0], 0)
    before = episode.observe()
    result = episode.step("fly to the moon")
    assert result.observation.text == "Nothing happens." and not result.action_valid
    assert not result.done and result.reward == 0.0 and result.observation.valid_actions == before.valid_actions


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_oracle_wins_sampled_tasks(env: AlfWorldEnv, level: str) -> None:
    for task_id in SAMPLE_TASKS[level]:
        episode = env.reset(task_id, 0)
        assert episode.task.difficulty == level
        play_oracle(episode)


def test_oracle_replans_after_a_detour(env: AlfWorldEnv) -> None:
    episode = env.reset(SAMPLE_TASKS["easy"][0], 0)
    planned = episode.oracle_action()
    detour = next(a for a in episode.observe().valid_actions if a.startswith("go to ") and a != planned)
    episode.step(detour)
    play_oracle(episode)


def test_same_id_and_seed_give_the_same_episode(env: AlfWorldEnv) -> None:
    task_id = SAMPLE_TASKS["easy"][1]
    assert play_oracle(env.reset(task_id, 7)) == play_oracle(env.reset(task_id, 7))


def test_generation_is_deterministic_across_processes(tmp_path: Path) -> None:
    code = (
        "import sys; from env_server.envs.alfworld import generator;"
        "g = generator.generate('valid_unseen', 'easy', 'pick_and_place', 3);"
        "sys.stdout.write(g.game_json + g.traj_json)"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": str(h)}).stdout
        for h in (1, 2)
    }
    made = generator.generate("valid_unseen", "easy", "pick_and_place", 3)
    assert outputs == {made.game_json + made.traj_json}


def test_real_sample_games_are_served_with_their_split(sample_dir: Path) -> None:
    env = AlfWorldEnv(data_dir=sample_dir)
    assert [s.name for s in env.spec.splits] == ["valid_unseen"]
    tasks = [t for level in env.spec.difficulties for t in env.tasks("valid_unseen", level)]
    assert sorted(t.task_id for t in tasks) == [
        "alfworld/valid_unseen/look_at_obj_in_light-CD-None-DeskLamp-308/trial_T20190908_141958_463362",
        "alfworld/valid_unseen/pick_and_place_simple-SoapBottle-None-Toilet-424/trial_T20190907_004404_604165",
    ]
    for task in tasks:
        episode = env.reset(task.task_id, 0)
        assert episode.observe().text.startswith("-= Welcome to TextWorld, ALFRED! =-")
        play_oracle(episode)
    with pytest.raises(UnknownTask, match="real games are named"):
        env.reset("alfworld/valid_unseen/easy/pick_and_place-00000", 0)


def test_env_var_selects_real_games(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIFTGYM_ALFWORLD_DATA", str(sample_dir / "json_2.1.1"))
    env = AlfWorldEnv()
    assert sum(env.spec.split("valid_unseen").task_counts.values()) == 2


def test_generated_games_load_in_the_json_211_layout(tmp_path: Path) -> None:
    written = [
        games.write_json_211(tmp_path, "train", "easy", "pick_and_place", 0),
        games.write_json_211(tmp_path, "valid_seen", "medium", "pick_two_obj_and_place", 0),
    ]
    env = AlfWorldEnv(data_dir=tmp_path)
    assert [s.name for s in env.spec.splits] == ["train", "valid_seen"]
    for folder in written:
        task_id = f"alfworld/{folder.parent.parent.name}/{folder.parent.name}/{folder.name}"
        play_oracle(env.reset(task_id, 0))
