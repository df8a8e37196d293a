"""Protobuf <-> domain conversion keeps every value."""

from __future__ import annotations

from env_server import convert
from env_server.types import Observation, Outcome, StepResult


def test_an_observation_with_nested_fields_round_trips():
    fields = {"goal": "craft 1 lectern", "inventory": {"oak planks": 4, "stick": 0}, "ratio": 0.25,
              "results": [{"asin": "B0X", "price": 19.99, "options": ["red", "blue"]}], "flag": True, "none": None,
              "big": 2**40}
    obs = Observation("text [SEP] more", ("a", "b"), fields)
    result = StepResult(obs, reward=0.5, done=True, truncated=False, action_valid=True, outcome=Outcome(False, 0.5))
    back = convert.step_result_from_proto(convert.step_result_to_proto(result, turn=3))
    assert back == result
    assert type(back.observation.fields["inventory"]["oak planks"]) is int
