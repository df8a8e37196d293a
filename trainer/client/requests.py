"""Builds request messages and reads responses, shared by the sync, async and stream clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from env_server import convert
from env_server.types import EnvSpec, Opened, SplitSpec, StepResult
from shiftgym.env.v1 import env_pb2 as pb

Interface = Sequence[tuple[str, Mapping[str, str]]]  # ordered (adapter name, params)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What Describe says: the environment's spec plus this server's limits and adapters."""

    spec: EnvSpec
    adapters: tuple[str, ...]
    oracle_enabled: bool
    max_action_bytes: int
    max_sessions: int
    session_idle_ttl_s: float


def server_info(msg: pb.DescribeResponse) -> ServerInfo:
    spec = EnvSpec(
        name=msg.env,
        version=msg.version,
        difficulties=tuple(msg.difficulties),
        splits=tuple(SplitSpec(s.name, dict(s.task_counts)) for s in msg.splits),
        default_max_turns=msg.default_max_turns,
        max_turns_limit=msg.max_turns_limit,
        reward_range=(msg.reward_min, msg.reward_max),
        success_definition=msg.success_definition,
        score_definition=msg.score_definition,
        difficulty_definition=msg.difficulty_definition,
    )
    return ServerInfo(
        spec, tuple(a.name for a in msg.adapters), msg.oracle_enabled, msg.max_action_bytes, msg.max_sessions,
        msg.session_idle_ttl_s,
    )


def reset_request(
    task_id: str = "",
    *,
    seed: int = 0,
    split: str = "",
    difficulty: str = "",
    index: int = 0,
    interface: Interface = (),
    max_turns: int = 0,
    client_episode_id: str = "",
) -> pb.ResetRequest:
    request = pb.ResetRequest(
        seed=seed,
        interface=[pb.AdapterSpec(name=name, params=dict(params)) for name, params in interface],
        max_turns=max_turns,
        client_episode_id=client_episode_id,
    )
    if task_id:
        request.task_id = task_id
    else:
        request.task_ref.CopyFrom(pb.TaskRef(split=split, difficulty=difficulty, index=index))
    return request


def step_request(session_id: str, action: str, step_index: int | None) -> pb.StepRequest:
    request = pb.StepRequest(session_id=session_id, text=action)
    if step_index is not None:
        request.step_index = step_index
    return request


def opened(msg: pb.ResetResponse) -> Opened:
    return Opened(msg.session_id, convert.task_from_proto(msg.task), convert.step_result_from_proto(msg.result),
                  msg.interface_name)


def stepped(msg: pb.StepResponse) -> tuple[StepResult, int]:
    return convert.step_result_from_proto(msg.result), msg.result.turn
