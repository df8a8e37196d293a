"""ALFWorld games played through a real server leave nothing behind: Fast Downward library copies are reused, not
loaded per game, and TextWorld's proposition cache does not grow with the games played (bench/results/soak.md)."""

from __future__ import annotations

from pathlib import Path

import mementos.core
import pytest

from env_server.envs.alfworld import AlfWorldEnv
from env_server.envs.alfworld.downward import LIBRARIES
from env_server.runtime import Limits
from trainer.client.env_client import EnvClient
from tests.servers import ServerThread

# Small rooms with short plans: cheap to generate and to play.
TASKS = ("alfworld/valid_seen/easy/pick_and_place-00000", "alfworld/valid_seen/easy/look_at_obj_in_light-00001")


def downward_copies() -> int:
    """libdownward.so copies mapped into this process (each load maps a new temporary copy)."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    return len({line.split(None, 5)[-1] for line in maps if "libdownward" in line})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    env = AlfWorldEnv(cache_dir=tmp_path_factory.mktemp("alfworld-cache"))
    with ServerThread(env, Limits(enable_oracle=True)) as running:
        yield running


def play(client: EnvClient, task_id: str, seed: int) -> list[str]:
    """One oracle episode, closed at the end; returns its transcript."""
    opened = client.reset(task_id, seed=seed)
    transcript = [opened.result.observation.text]
    result = opened.result
    while not result.done:
        action = client.oracle_action(opened.session_id)
        result, _ = client.step(opened.session_id, action)
        transcript += [action, result.observation.text]
    assert result.outcome is not None and result.outcome.success
    client.close(opened.session_id)
    return transcript


def test_games_played_one_after_another_share_one_library_copy(server: ServerThread) -> None:
    with EnvClient(server.target, timeout_s=120) as client:
        play(client, TASKS[0], seed=0)  # generates the games and loads a first copy
        play(client, TASKS[1], seed=0)
        loaded, mapped = LIBRARIES.loaded, downward_copies()
        for game in range(8):
            play(client, TASKS[game % 2], seed=game)
        assert LIBRARIES.loaded == loaded, "a game loaded its own library copy instead of reusing a free one"
        assert downward_copies() == mapped
        assert server.runtime.open_sessions == 0


def test_a_reused_library_copy_replays_a_game_byte_for_byte(server: ServerThread) -> None:
    with EnvClient(server.target, timeout_s=120) as client:
        first = play(client, TASKS[0], seed=3)
        loaded = LIBRARIES.loaded
        play(client, TASKS[1], seed=3)  # another task through the same copy in between
        again = play(client, TASKS[0], seed=3)
        assert LIBRARIES.loaded == loaded
    assert again == first


def test_games_open_at_once_each_get_their_own_copy(server: ServerThread) -> None:
    with EnvClient(server.target, timeout_s=120) as client:
        lent = LIBRARIES.lent
        a = client.reset(TASKS[0], seed=1)
        b = client.reset(TASKS[0], seed=2)
        assert LIBRARIES.lent == lent + 2
        # Interleaved oracle steps: if the two games shared a copy, each step would act on the other's state.
        results = {a.session_id: a.result, b.session_id: b.result}
        while not all(r.done for r in results.values()):
            for session_id, result in results.items():
                if not result.done:
                    results[session_id], _ = client.step(session_id, client.oracle_action(session_id))
        assert all(r.outcome is not None and r.outcome.success for r in results.values())
        for session_id in results:
            client.close(session_id)
        assert LIBRARIES.lent == lent


def test_the_proposition_cache_does_not_grow_with_games_played(server: ServerThread) -> None:
    with EnvClient(server.target, timeout_s=120) as client:
        play(client, TASKS[0], seed=0)
        play(client, TASKS[1], seed=0)
        sizes = []
        for game in range(6):
            play(client, TASKS[game % 2], seed=game)
            sizes.append(len(mementos.core._memento_cache))
    assert max(sizes) == 0  # emptied when each game closes
