"""Protobuf <-> domain values. The only module besides the servicer and clients that touches *_pb2."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from google.protobuf import struct_pb2

from env_server.adapters.base import AdapterKind, AdapterSpec
from env_server.types import EnvSpec, Observation, Opened, Outcome, StepResult, TaskInfo, TaskSelector
from shiftgym.env.v1 import env_pb2 as pb

if TYPE_CHECKING:
    from env_server.runtime import Limits


def struct_from(fields: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if fields:
        struct.update(fields)
    return struct


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Struct -> plain JSON values; several times faster than json_format.MessageToDict on the hot path."""
    return {key: _plain(value) for key, value in struct.fields.items()}


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_plain(item) for item in value.list_value.values]
    return None


def task_to_proto(task: TaskInfo) -> pb.TaskInfo:
    return pb.TaskInfo(task_id=task.task_id, split=task.split, difficulty=task.difficulty, metadata=dict(task.metadata))


def task_from_proto(msg: pb.TaskInfo) -> TaskInfo:
    return TaskInfo(msg.task_id, msg.split, msg.difficulty, dict(msg.metadata))


def observation_to_proto(obs: Observation) -> pb.Observation:
    actions = () if obs.actions_hidden else obs.valid_actions
    return pb.Observation(text=obs.text, valid_actions=actions, fields=struct_from(obs.fields))


def observation_from_proto(msg: pb.Observation) -> Observation:
    return Observation(msg.text, tuple(msg.valid_actions), struct_to_dict(msg.fields))


def step_result_to_proto(result: StepResult, turn: int) -> pb.StepResult:
    msg = pb.StepResult(
        observation=observation_to_proto(result.observation),
        reward=result.reward,
        done=result.done,
        truncated=result.truncated,
        action_valid=result.action_valid,
        turn=turn,
    )
    if result.outcome is not None:
        msg.outcome.CopyFrom(pb.Outcome(success=result.outcome.success, score=result.outcome.score))
    return msg


def step_result_from_proto(msg: pb.StepResult) -> StepResult:
    outcome = Outcome(msg.outcome.success, msg.outcome.score) if msg.HasField("outcome") else None
    return StepResult(
        observation_from_proto(msg.observation),
        reward=msg.reward,
        done=msg.done,
        truncated=msg.truncated,
        action_valid=msg.action_valid,
        outcome=outcome,
    )


def opened_to_proto(opened: Opened) -> pb.ResetResponse:
    return pb.ResetResponse(
        session_id=opened.session_id,
        task=task_to_proto(opened.task),
        result=step_result_to_proto(opened.result, 0),
        interface_name=opened.interface,
    )


def selector_from_proto(msg: pb.ResetRequest) -> TaskSelector:
    if msg.HasField("task_ref"):
        ref = msg.task_ref
        return TaskSelector(split=ref.split, difficulty=ref.difficulty, index=ref.index)
    return TaskSelector(task_id=msg.task_id)


def interface_from_proto(specs: Any) -> tuple[AdapterSpec, ...]:
    return tuple(AdapterSpec(s.name, dict(s.params)) for s in specs)


def action_text(msg: pb.StepRequest) -> str:
    """The action as text; a structured call becomes the JSON text the function-call interface parses."""
    if msg.WhichOneof("action") == "call":
        arguments = struct_to_dict(msg.call.arguments)
        return json.dumps({"name": msg.call.name, "arguments": arguments}, sort_keys=True)
    return msg.text


def describe_to_proto(spec: EnvSpec, limits: "Limits", adapters: list[AdapterKind]) -> pb.DescribeResponse:
    return pb.DescribeResponse(
        env=spec.name,
        version=spec.version,
        difficulties=spec.difficulties,
        splits=[pb.SplitInfo(name=s.name, task_counts=dict(s.task_counts)) for s in spec.splits],
        default_max_turns=spec.default_max_turns,
        max_turns_limit=spec.max_turns_limit,
        reward_min=spec.reward_range[0],
        reward_max=spec.reward_range[1],
        adapters=[
            pb.AdapterInfo(
                name=kind.name,
                description=kind.description,
                params=[
                    pb.AdapterParam(name=p.name, description=p.description, choices=p.choices, default_value=p.default)
                    for p in kind.params
                ],
            )
            for kind in adapters
        ],
        success_definition=spec.success_definition,
        score_definition=spec.score_definition,
        difficulty_definition=spec.difficulty_definition,
        oracle_enabled=limits.enable_oracle,
        max_action_bytes=limits.max_action_bytes,
        max_sessions=limits.max_sessions,
        session_idle_ttl_s=limits.idle_ttl_s,
    )
