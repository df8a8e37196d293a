"""Choice mode's concrete candidates: templates filled from the text read so far, checked on real WebShop and
SearchQA servers (the oracle's every action is among them) and through the random policy."""

from __future__ import annotations

import pytest

from env_server.tasks import sample_tasks
from tests.servers import ServerThread
from trainer.client.env_client import EnvClient
from trainer.client.pool import EnvPool
from trainer.episodes import EpisodeRunner, EpisodeSpec
from trainer.policies.candidates import concrete_actions, names
from trainer.policies.scripted import RandomPolicy

SEARCH_PAGE = ("WebShop [SEP] Instruction: [SEP] find me a Tortam choker that is sterling silver with color olive, "
               "and price lower than 110.00 dollars [SEP] Search")


def test_a_template_is_replaced_by_its_filled_forms_and_concrete_actions_stay():
    actions = concrete_actions(["search[<query>]", "click[Buy Now]"], SEARCH_PAGE, SEARCH_PAGE)
    assert "search[<query>]" not in actions and actions[-1] == "click[Buy Now]"
    assert "search[find me a Tortam choker that is sterling silver with color olive]" in actions
    assert "search[find me a tortam choker that is sterling silver with color olive]" in actions
    assert "search[Tortam]" in actions and "search[110.00]" in actions
    assert not any(a in actions for a in ("search[WebShop]", "search[Instruction]", "search[SEP]"))


def test_names_skip_words_that_open_a_sentence_or_field_and_keep_numbers():
    text = ('Question: Who founded Keimzol Optics?\nDoc 1(Title: "Duthbyr") Duthbyr is a city. It was founded in 1977 '
            'by Teir Brirk. [SEP] Search')
    assert names(text) == ["Keimzol Optics", "1", "Duthbyr", "Duthbyr", "1977", "Teir Brirk"]


def test_a_template_with_nothing_to_fill_it_is_offered_as_it_is():
    assert concrete_actions(["<answer><text></answer>"], "", "") == ["<answer><text></answer>"]


def _transcript(texts: list[str]) -> str:
    return "\n".join(texts)


@pytest.mark.parametrize("env", ["webshop", "searchqa"])
def test_the_oracle_action_is_always_among_the_candidates(env):
    """Every oracle step of sampled easy and hard tasks is one of the concrete actions choice mode would score."""
    with ServerThread(env) as server, EnvClient(server.target) as client:
        tasks = [t for d in ("easy", "hard") for t in sample_tasks(client.list_tasks("train", d), 4, seed=0)]
        for task in tasks:
            opened = client.reset(task.task_id, seed=0)
            observation, texts = opened.result.observation, [opened.result.observation.text]
            for step in range(12):
                action = client.oracle_action(opened.session_id)
                offered = concrete_actions(observation.valid_actions, _transcript(texts), observation.text)
                assert action in offered, (task.task_id, step, action)
                result, _ = client.step(opened.session_id, action, step_index=step)
                if result.done:
                    assert result.outcome.success
                    break
                observation = result.observation
                texts += [action, observation.text]
            else:
                pytest.fail(f"{task.task_id}: the oracle did not finish")


async def test_the_random_policy_searches_with_filled_templates():
    with ServerThread("searchqa") as server, EnvClient(server.target) as client:
        task = sample_tasks(client.list_tasks("train", "easy"), 1, seed=0)[0]
        async with EnvPool([server.target], env="searchqa") as pool:
            trajectory = await EpisodeRunner(pool).run(EpisodeSpec("searchqa", task.task_id, seed=0, max_turns=3),
                                                       RandomPolicy(), sample_seed=3)
    assert trajectory.turns
    for turn in trajectory.turns:
        assert "<query>" not in turn.action and "<text>" not in turn.action and turn.valid
