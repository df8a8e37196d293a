"""Each adapter's render, parse and encode on hand-made observations: parse(encode(a)) == a, forgiving parsing
where people expect it, strict where it matters; bad interfaces are INVALID_ARGUMENT through a real server."""

from __future__ import annotations

import itertools
import json

import grpc
import pytest

from env_server import convert
from env_server.adapters.base import KINDS, AdapterContext, AdapterSpec, Rejected, Turn, build_stack
from env_server.adapters.lexicon import Lexicon, entity_tokens
from env_server.errors import InvalidRequest
from env_server.runtime import Limits
from env_server.types import Observation
from tests.servers import ServerThread
from trainer.client.env_client import EnvClient
from trainer.client.errors import EnvCallError

CRAFT = Observation(
    "Crafting commands:\ncraft 4 oak planks using 1 oak log\n\nGoal: craft oak planks.",
    ("craft 4 oak planks using 1 oak log", "get 1 oak log", "inventory"),
    {"goal": "oak planks", "inventory": {"oak log": 1}, "crafting_commands": ["craft 4 oak planks using 1 oak log"]},
)
SHOP = Observation("WebShop [SEP] Instruction: [SEP] red soap [SEP] Search", ("search[<query>]",),
                   {"page": "search", "instruction": "red soap"})
RESULTS = Observation("Back to Search [SEP] B01 [SEP] Red Soap", ("click[Back to Search]", "click[B01]"),
                      {"page": "results", "results": [{"asin": "B01", "title": "Red Soap"}]})
QA = Observation("Question: who?", ("<search><query></search>", "<answer><text></answer>"), {"question": "who?"})
WORDS = ("oak log", "oak planks", "red", "soap")
ACTIONS = (
    (CRAFT, ("craft 4 oak planks using 1 oak log", "get 1 oak log", "inventory")),
    (SHOP, ("search[red soap bar]",)),
    (RESULTS, ("click[Back to Search]", "click[B01]")),
    (QA, ("<search>who is Ada</search>", "<answer>Ada Lovelace</answer>")),
)


def stack(*specs: tuple[str, dict[str, str]], seed: int = 0):
    context = AdapterContext(seed, lambda: WORDS)
    return build_stack([AdapterSpec(n, p) for n, p in specs], context)


def all_variants() -> list[tuple[str, dict[str, str]]]:
    out = []
    for kind in KINDS.values():
        if kind.name == "preset":
            continue
        out += [(kind.name, {p.name: c}) for p in kind.params for c in p.choices] or [(kind.name, {})]
    return out


@pytest.mark.parametrize("chain", [c for n in (1, 2) for c in itertools.product(all_variants(), repeat=n)],
                         ids=lambda c: "+".join(f"{n}{list(p.values())}" for n, p in c))
def test_parse_inverts_encode_for_every_variant_and_pair(chain):
    s = stack(*chain)
    for obs, actions in ACTIONS:
        for turn in (Turn(0), Turn(3, action_valid=False)):
            for action in actions:
                assert s.parse(s.encode(action, obs, turn), obs, turn) == action


@pytest.mark.parametrize("text", ["2", " 2 ", "2.", "(2)", "#2", "2)", "GET 1 OAK LOG", "get 1 oak log."])
def test_numbered_choice_is_forgiving(text):
    assert stack(("action_format", {"format": "numbered"})).parse(text, CRAFT, Turn(1)) == "get 1 oak log"


def test_numbered_choice_rejects_what_is_not_a_choice_and_keeps_templates_writable():
    s = stack(("action_format", {"format": "numbered"}))
    assert isinstance(s.parse("9", CRAFT, Turn(1)), Rejected)
    assert "from 1 to 3" in s.parse("dance", CRAFT, Turn(1)).reason
    rendered = s.render(CRAFT, Turn(0))
    assert rendered.valid_actions == ("1", "2", "3") and "2. get 1 oak log" in rendered.text
    assert s.parse("search[blue shoes]", SHOP, Turn(0)) == "search[blue shoes]"
    assert s.render(SHOP, Turn(0)).valid_actions == ("search[<query>]",)
    assert s.parse("<answer>Ada</answer>", QA, Turn(0)) == "<answer>Ada</answer>"


@pytest.mark.parametrize("text", [
    '{"name": "get", "arguments": {"input": "1 oak log"}}',
    '  {"arguments": {"input": "1 oak log"}, "name": "GET"}  ',
    '```json\n{"name": "get", "arguments": {"input": "1 oak log"}}\n```',
    '{"name": "get", "arguments": "{\\"input\\": \\"1 oak log\\"}"}',
])
def test_function_call_is_forgiving_on_layout_and_tool_case(text):
    assert stack(("action_format", {"format": "function_call"})).parse(text, CRAFT, Turn(1)) == "get 1 oak log"


@pytest.mark.parametrize("text", [
    "get 1 oak log", '{"name": "get"', '["get"]', '{"name": "get", "arguments": {"item": "oak log"}}',
    '{"name": "get", "arguments": {"input": 1}}', '{"name": "get", "args": {}}',
])
def test_function_call_is_strict_on_the_call_itself(text):
    parsed = stack(("action_format", {"format": "function_call"})).parse(text, CRAFT, Turn(1))
    assert isinstance(parsed, Rejected) and '"name"' in parsed.reason


def test_function_call_lists_the_tools_in_the_first_observation_only_and_keeps_each_actions_shape():
    s = stack(("action_format", {"format": "function_call"}))
    first, later = s.render(CRAFT, Turn(0)), s.render(CRAFT, Turn(1))
    assert '{"name": "inventory", "arguments": {}}' in first.text and "Tools:" not in later.text
    assert json.loads(later.valid_actions[1]) == {"name": "get", "arguments": {"input": "1 oak log"}}
    call = '{"name": "search", "arguments": {"input": "x"}}'
    assert s.parse(call, SHOP, Turn(1)) == "search[x]" and s.parse(call, QA, Turn(1)) == "<search>x</search>"
    assert s.parse(call, RESULTS, Turn(1)) == "search[x]"  # no search button listed: the page's usual shape


def test_verbs_forgive_whitespace_a_trailing_period_and_the_case_of_a_listed_action():
    s = stack(("action_format", {"format": "verbs"}))
    assert s.parse("  Get 1 Oak Log. ", CRAFT, Turn(1)) == "get 1 oak log"
    assert s.parse("craft 9 thing", CRAFT, Turn(1)) == "craft 9 thing"  # unlisted: the environment judges it


def test_lexicon_renames_whole_words_consistently_and_inverts_exactly():
    lexicon = Lexicon.build(entity_tokens(WORDS), seed=5)
    text = "Oak log, OAK planks; soak the oak. iPhone Red"
    renamed = lexicon.encode(text)
    oak = lexicon.forward["oak"]
    assert renamed.startswith(f"{oak.title()} {lexicon.forward['log']}, {oak.upper()} ")
    assert "soak" in renamed and "iPhone" in renamed and "the" in renamed
    assert lexicon.decode(renamed) == text
    assert Lexicon.build(entity_tokens(WORDS), seed=5) == lexicon != Lexicon.build(entity_tokens(WORDS), seed=6)
    assert not set(lexicon.forward.values()) & set(lexicon.forward)


def test_lexicon_renames_text_actions_and_fields_including_keys():
    obs = stack(("lexicon", {}), seed=1).render(CRAFT, Turn(0))
    assert "oak" not in obs.text and not any("oak" in a for a in obs.valid_actions)
    assert "oak" not in json.dumps(obs.fields) and "inventory" in obs.fields


@pytest.mark.parametrize("fmt", ["json", "kv"])
def test_lexicon_after_obs_format_renders_the_renamed_fields_and_text_that_follows_is_renamed_as_text(fmt):
    multiline = Observation("x", CRAFT.valid_actions, {**CRAFT.fields, "note": "one\noak log"})
    formatted = stack(("obs_format", {"format": fmt}), ("lexicon", {}), seed=3)
    renamed = formatted.render(multiline, Turn(0))
    # The text is the renamed fields' own rendering, so a word after an escape ("\noak" in JSON) is renamed too.
    assert renamed.text == stack(("obs_format", {"format": fmt})).render(Observation("x", (), renamed.fields),
                                                                       Turn(0)).text
    assert "oak" not in renamed.text
    # Text added before the lexicon is no longer the fields' rendering: it is renamed word by word.
    listed = stack(("obs_format", {"format": fmt}), ("action_list", {}), ("lexicon", {}), seed=3)
    head, listing = listed.render(multiline, Turn(0)).text.split("\n\nValid actions:\n")
    unrenamed = stack(("obs_format", {"format": fmt})).render(multiline, Turn(0)).text
    assert head == Lexicon.build(entity_tokens(WORDS), seed=3).encode(unrenamed) and "oak" not in listing


def test_action_list_shows_on_the_turns_asked_and_hidden_lists_do_not_reach_the_client():
    every = stack(("action_list", {"show": "every"})).render(CRAFT, Turn(2))
    assert "Valid actions:\n" in every.text and not every.actions_hidden
    first = stack(("action_list", {"show": "first"}))
    assert not first.render(CRAFT, Turn(0)).actions_hidden and first.render(CRAFT, Turn(1)).actions_hidden
    never = stack(("action_list", {"show": "never"}), ("action_format", {"format": "numbered"}))
    hidden = never.render(CRAFT, Turn(0))
    assert hidden.actions_hidden and never.parse("3", CRAFT, Turn(0)) == "inventory"
    assert list(convert.observation_to_proto(hidden).valid_actions) == []


def test_obs_format_renders_the_fields():
    assert json.loads(stack(("obs_format", {"format": "json"})).render(CRAFT, Turn(0)).text) == CRAFT.fields
    kv = stack(("obs_format", {"format": "kv"})).render(RESULTS, Turn(0)).text
    assert kv.splitlines() == ["page: results", "results[0].asin: B01", "results[0].title: Red Soap"]
    assert stack(("obs_format", {"format": "prose"})).render(CRAFT, Turn(0)) == CRAFT


def test_feedback_changes_only_invalid_turns():
    invalid = Observation("Could not find oak.", CRAFT.valid_actions, {"message": "Could not find oak."})
    terse, verbose = stack(("feedback", {"verbosity": "terse"})), stack(("feedback", {"verbosity": "verbose"}))
    assert terse.render(invalid, Turn(1)) == invalid
    assert terse.render(invalid, Turn(1, action_valid=False)).text == "Invalid action."
    text = verbose.render(invalid, Turn(1, action_valid=False)).text
    assert text.startswith("Could not find oak.") and "get 1 oak log" in text


def test_react_reads_the_last_action_line_and_rejects_an_answer_without_one():
    s = stack(("prompt_style", {"style": "react"}))
    assert "Thought:" in s.render(CRAFT, Turn(0)).text and s.render(CRAFT, Turn(1)).text == CRAFT.text
    assert s.render(CRAFT, Turn(1)).valid_actions[2] == "Action: inventory"
    answer = "Thought: first get wood.\nAction: inventory\nThought: no, better:\naction:  get 1 oak log \n"
    assert s.parse(answer, CRAFT, Turn(1)) == "get 1 oak log"
    assert isinstance(s.parse("get 1 oak log", CRAFT, Turn(1)), Rejected)
    assert stack(("prompt_style", {"style": "bare"})).parse("inventory", CRAFT, Turn(1)) == "inventory"


@pytest.mark.parametrize("specs, words", [
    ([("jsn", {})], "unknown adapter 'jsn'"),
    ([("obs_format", {"format": "yaml"})], "must be one of prose, json, kv"),
    ([("obs_format", {"style": "json"})], "has no parameter 'style'"),
    ([("preset", {"name": "fancy"})], "one of original"),
    ([("lexicon", {})], "no lexicon_words"),
])
def test_a_bad_interface_is_invalid_argument_with_the_reason(specs, words):
    with pytest.raises(InvalidRequest, match=words):
        build_stack([AdapterSpec(n, p) for n, p in specs], AdapterContext(0, None))
    with ServerThread("null", Limits()) as server, EnvClient(server.target, 30) as client:
        with pytest.raises(EnvCallError) as err:
            client.reset("null/test/easy/00001", seed=0, interface=specs)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.message
        opened = client.reset("null/test/easy/00001", seed=0, interface=[("preset", {"name": "numbered"})])
        assert opened.interface == "action_format(format=numbered)"
