"""Every interface keeps every task solvable: the oracle, asked through OracleAction (so its canonical action is
encoded through the session's stack) and replayed through presets and adapter chains, wins; and the same task, seed
and interface give the same transcript. Runs over registry.names(), so a new environment joins automatically.

Coverage: every preset on 10 sampled tasks per difficulty; every adapter variant (kind x param value) alone, and
chains of length 2 and 3 in which every variant takes every position (cyclic families, see `chains`), each on the
same 10 sampled tasks per difficulty, every episode opening with an invalid action, so the interfaces' own
rejections and the feedback adapter run too. The full product of length-3 chains (~2,700 per env) would take too
long for the suite.

Slow environments (SLOW_ENVS) play every preset on the full sample too, but a share of the chains: those of length
1, 2 (step 1) and 3 (steps 3, 7), so every variant still takes every position, each on one task of one difficulty
in turn, from the presets' sample (its games are then generated and cached once); and the transcript check only where the
interface depends on the seed (it renames: `lexicon`). Adapters are pure functions of the observation and the seed, so what a task adds to
an interface's check is its words and shapes of actions, which the rotation still covers; the environment's own
dynamics and determinism are test_envs.py's job.
"""

from __future__ import annotations

import grpc
import pytest

from env_server import registry
from env_server.adapters.base import KINDS
from env_server.adapters.presets import NEEDS_LEXICON, PRESETS, presets_for
from env_server.runtime import Limits
from env_server.tasks import sample_tasks
from tests.contract.episodes import play_oracle
from tests.servers import ServerThread
from trainer.client.env_client import EnvClient
from trainer.client.errors import EnvCallError

PRESET_TASKS_PER_DIFFICULTY = 10
PRESET_SAMPLE_SEED = 2024
# Environments whose episodes cost about a second each here, so that every chain family on every difficulty
# would add ~10 minutes to the suite.
SLOW_ENVS = {
    "alfworld": "a reset builds TextWorld's PDDL state (Fast Downward translations) and each step re-derives the "
                "text and admissible commands from TextWorld's grammar (~40 ms)",
}
BAD_ACTION = "xyzzy plugh"
Variant = tuple[str, dict[str, str]]


@pytest.fixture(scope="module", params=registry.names())
def environment(request):
    return registry.load(request.param)


@pytest.fixture(scope="module")
def client(environment):
    with ServerThread(environment, Limits(enable_oracle=True)) as server, EnvClient(server.target, 60) as c:
        yield c


def variants(environment) -> list[Variant]:
    """Every adapter kind with each value of its parameter; `lexicon` only where the env offers its words."""
    out: list[Variant] = []
    for kind in KINDS.values():
        if kind.name == "preset" or (kind.name == "lexicon" and not hasattr(environment, "lexicon_words")):
            continue
        if not kind.params:
            out.append((kind.name, {}))
        for param in kind.params:
            out.extend((kind.name, {param.name: choice}) for choice in param.choices)
    return out


def chains(environment) -> list[tuple[Variant, ...]]:
    """Chains of length 1..3; in each cyclic family, position i of chain k is variant (k + i * step) mod n, so every
    variant takes every position. A slow environment gets one family of each length."""
    vs = variants(environment)
    n = len(vs)
    out = [(v,) for v in vs]
    families = ((1,), (3, 7)) if _slow(environment) else ((1,), (5,), (3, 7), (5, 11))
    for steps in families:
        out += [(vs[k], *(vs[(k + s) % n] for s in steps)) for k in range(n)]
    return out


def _slow(environment) -> bool:
    return environment.spec.name in SLOW_ENVS


def _eval_split(environment) -> str:
    names = [s.name for s in environment.spec.splits]
    return "test" if "test" in names else names[-1]


def _play(client: EnvClient, task_id: str, interface, max_turns: int, bad_first: bool):
    opened = client.reset(task_id, seed=1, interface=interface, max_turns=max_turns)
    result = opened.result
    if bad_first:
        result, _ = client.step(opened.session_id, BAD_ACTION)
        assert not result.action_valid and result.observation.text and not result.done
    turns = 0
    while not result.done:
        result, _ = client.step(opened.session_id, client.oracle_action(opened.session_id))
        turns += 1
    client.close(opened.session_id)
    return opened, result, turns


def test_describe_declares_every_adapter_with_its_params(client):
    assert set(client.describe().adapters) == set(KINDS)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_oracle_solves_sampled_tasks_through_every_preset(client, environment, preset):
    interface = [("preset", {"name": preset})]
    split = _eval_split(environment)
    if preset not in presets_for(hasattr(environment, "lexicon_words")):
        # Not served, and refused with the reason rather than skipped: an env without entity words says so.
        task_id = environment.tasks(split, environment.spec.difficulties[0])[0].task_id
        with pytest.raises(EnvCallError) as err:
            client.reset(task_id, seed=1, interface=interface)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "lexicon_words" in err.value.message
        return
    for difficulty in environment.spec.difficulties:
        sample = sample_tasks(environment.tasks(split, difficulty), PRESET_TASKS_PER_DIFFICULTY, PRESET_SAMPLE_SEED)
        assert len(sample) == PRESET_TASKS_PER_DIFFICULTY, (difficulty, len(sample))
        for task in sample:
            opened, result, _ = _play(client, task.task_id, interface, 0, bad_first=False)
            assert result.outcome is not None and result.outcome.success, (preset, task.task_id)
    assert opened.interface == ("+".join(_label(s.name, s.params) for s in PRESETS[preset]) or "original")
    if _slow(environment) and preset not in NEEDS_LEXICON:
        return
    task_id = environment.tasks(split, environment.spec.difficulties[-1])[0].task_id
    assert play_oracle(client, task_id, 7, interface=interface) == play_oracle(client, task_id, 7, interface=interface)


def _label(name: str, params) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{name}({inner})" if inner else name


def test_the_oracle_wins_through_adapter_chains_and_each_chain_is_deterministic(client, environment):
    split = _eval_split(environment)
    slow = _slow(environment)
    seed = PRESET_SAMPLE_SEED if slow else 99  # a slow env reuses the presets' (generated, cached) tasks
    difficulties = environment.spec.difficulties
    samples = {d: sample_tasks(environment.tasks(split, d), PRESET_TASKS_PER_DIFFICULTY, seed) for d in difficulties}
    limit = environment.spec.max_turns_limit  # room for the opening invalid action
    for index, chain in enumerate(chains(environment)):
        interface = list(chain)
        for difficulty in [difficulties[index % len(difficulties)]] if slow else difficulties:
            tasks = samples[difficulty]
            for task in [tasks[index % len(tasks)]] if slow else tasks:
                _, result, _ = _play(client, task.task_id, interface, limit, bad_first=True)
                assert result.outcome is not None and result.outcome.success, (chain, task.task_id)
        if slow and not any(name == "lexicon" for name, _ in chain):
            continue
        tasks = samples[difficulties[0]]
        task_id = tasks[index % len(tasks)].task_id
        first = play_oracle(client, task_id, 3, interface=interface)
        assert first == play_oracle(client, task_id, 3, interface=interface), chain
