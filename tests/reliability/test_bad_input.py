"""Bad input, property-based: arbitrary values in every RPC's fields, arbitrary bytes as requests, and arbitrary
action text (unicode, control characters, very long strings, numbers, deeply nested JSON) through every
environment's parser under every interface preset. The server never crashes, never keeps a session it did not
hand out, and answers only with a documented status, never INTERNAL.

Example counts are bounded so the file runs in about a minute; ALFWorld's resets take a second, so it gets few.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_server import registry
from env_server.adapters.presets import presets_for
from env_server.runtime import Limits
from shiftgym.env.v1 import env_pb2 as pb
from tests.servers import ServerThread

ENVS = registry.names(include_bench_only=True)
SLOW_ENVS = {"alfworld"}  # a reset builds a TextWorld game
MAX_ACTION_BYTES = Limits().max_action_bytes
Code = grpc.StatusCode
# The status table in the README: anything here but OK, and never INTERNAL or UNKNOWN.
DOCUMENTED = {Code.OK, Code.NOT_FOUND, Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.RESOURCE_EXHAUSTED}
METHODS = {
    "Describe": (pb.DescribeRequest, pb.DescribeResponse),
    "ListTasks": (pb.ListTasksRequest, pb.ListTasksResponse),
    "Reset": (pb.ResetRequest, pb.ResetResponse),
    "Step": (pb.StepRequest, pb.StepResponse),
    "Close": (pb.CloseRequest, pb.CloseResponse),
    "OracleAction": (pb.OracleActionRequest, pb.OracleActionResponse),
}


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# --- strategies ------------------------------------------------------------------------------------------

CONTROL = st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Co"])
WEIRD_TEXT = st.one_of(
    st.text(max_size=40),  # any unicode (no lone surrogates: a proto string must be valid UTF-8)
    st.text(CONTROL, max_size=40),
    st.builds(lambda unit, n: unit * n, st.text(min_size=1, max_size=3), st.integers(200, 3000)),  # very long
    st.sampled_from(["", " ", "\x00", "../../etc/passwd", "$(reboot)", "`id`", "__import__('os').system('id')",
                     "%s%s%n", "{{7*7}}", "\u202e", "\ufeff", "a\r\nb", "NaN", "-1", "1e309"]),
)
INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]))
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 2**63 - 1]))


def nested_json(depth: int, kind: str) -> str:
    if kind == "arguments":
        return '{"name": "go", "arguments": ' + '{"input": ' * depth + '"x"' + "}" * depth + "}"
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "name":
        return '{"name": ' + "[" * depth + "]" * depth + "}"
    return '{"name": "go", "arguments": "' + "[" * depth + "]" * depth + '"}'  # arguments as a JSON string


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                  st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4)), max_leaves=12)
FUNCTION_CALLS = st.one_of(
    # Past ~1,000 levels json.loads overflows the interpreter's stack; past ~8,000 the action is over its byte limit.
    st.builds(lambda d, k: nested_json(d, k), st.one_of(st.integers(1, 50), st.integers(900, 9000)),
              st.sampled_from(["arguments", "list", "name", "string"])),
    st.builds(lambda name, args: json.dumps({"name": name, "arguments": args}), WEIRD_TEXT, JSON_VALUES),
    st.builds(lambda value: "```json\n" + json.dumps(value) + "\n```", JSON_VALUES),
    JSON_VALUES.map(json.dumps),
)
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    # Over 4,300 digits int() refuses a string; over 16 KiB the action is too long.
    st.builds(lambda digit, n: digit * n, st.sampled_from(["1", "9", "\u0661", "\uff11"]), st.integers(4000, 6000)),
    st.sampled_from(["(3)", "#2.", "2:", "\u00b2", "\u2468", "1.5", "0", "00001", " 1 ", "1\x00"]),
)


@dataclass(frozen=True)
class Bent:
    """A valid action of the current observation, bent out of shape; resolved against it in the test, so that what
    hypothesis draws does not depend on the episode's state."""

    index: int
    prefix: str
    suffix: str
    upper: bool

    def resolve(self, valid: tuple[str, ...]) -> str:
        action = valid[self.index % len(valid)] if valid else "look"
        return self.prefix + (action.upper() if self.upper else action) + self.suffix


ACTIONS = st.one_of(
    WEIRD_TEXT, NUMBERS, FUNCTION_CALLS,
    st.builds(Bent, st.integers(0, 1000), st.sampled_from(["", " ", "\t", "\x00", "1. ", "```"]),
              st.sampled_from(["", ".", "\n", "\x7f", " " * 500, "]", "</search>"]), st.booleans()),
)


def nested(depth: int, in_list: bool) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value] if in_list else {"input": value}
    return value


# --- servers ---------------------------------------------------------------------------------------------


class Raw:
    """Unary calls with raw requests over one channel, returning (status, response)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self._calls = {
            name: self.channel.unary_unary(f"/shiftgym.env.v1.EnvironmentService/{name}",
                                           request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                                           response_deserializer=response.FromString)
            for name, (_, response) in METHODS.items()
        }

    def call(self, method: str, request: object, timeout_s: float = 60) -> tuple[grpc.StatusCode, object]:
        try:
            return Code.OK, self._calls[method](request, timeout=timeout_s)
        except grpc.RpcError as err:
            assert err.code() in DOCUMENTED, f"{method}: {err.code().name}: {err.details()}"
            assert err.details(), f"{method}: {err.code().name} without a message"
            return err.code(), None


class Fixture:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.raw = Raw(server.target)
        self.env = server.runtime.env
        spec = self.env.spec
        self.split = "test" if spec.split("test") else spec.splits[-1].name
        self.task_ids = [t.task_id for d in spec.difficulties for t in self.env.tasks(self.split, d)[:3]]
        self.sessions: dict[str, tuple[str, pb.StepResult]] = {}  # preset -> (session id, latest result)

    def open(self, preset: str) -> tuple[str, pb.StepResult]:
        if preset not in self.sessions:
            request = pb.ResetRequest(task_id=self.task_ids[0], seed=1, max_turns=self.env.spec.max_turns_limit,
                                      interface=[pb.AdapterSpec(name="preset", params={"name": preset})])
            code, response = self.raw.call("Reset", request)
            assert code == Code.OK, code
            self.sessions[preset] = (response.session_id, response.result)
        return self.sessions[preset]

    def close_all(self) -> None:
        for session_id, _ in self.sessions.values():
            self.raw.call("Close", pb.CloseRequest(session_id=session_id))
        self.sessions.clear()


@pytest.fixture(scope="module", params=ENVS)
def env_server(request):
    limits = Limits(enable_oracle=True, max_action_bytes=MAX_ACTION_BYTES)
    with ServerThread(request.param, limits) as server:
        fixture = Fixture(server)
        yield fixture
        fixture.close_all()
        assert server.runtime.open_sessions == 0, "a session outlived its Close"
        fixture.raw.channel.close()


def examples(env: str, fast: int, slow: int) -> int:
    return slow if env in SLOW_ENVS else fast


# --- every environment's action parser under every preset -------------------------------------------------


def test_any_action_text_under_any_preset_is_an_answer_or_a_documented_status(env_server):
    has_lexicon = callable(getattr(env_server.env, "lexicon_words", None))
    name = env_server.env.spec.name
    for preset in presets_for(has_lexicon):

        @fuzz_settings(examples(name, 25, 3))
        @given(drawn=ACTIONS)
        def step_with(drawn: str | Bent) -> None:
            session_id, result = env_server.open(preset)
            action = drawn.resolve(tuple(result.observation.valid_actions)) if isinstance(drawn, Bent) else drawn
            code, response = env_server.raw.call("Step", pb.StepRequest(session_id=session_id, text=action))
            too_long = len(action.encode()) > MAX_ACTION_BYTES
            assert code == (Code.INVALID_ARGUMENT if too_long else Code.OK), (preset, code, action[:200])
            if response is not None:
                assert response.result.observation.text or response.result.done
                if response.result.done:  # over: the next example opens a fresh episode
                    env_server.raw.call("Close", pb.CloseRequest(session_id=session_id))
                    del env_server.sessions[preset]
                else:
                    env_server.sessions[preset] = (session_id, response.result)

        step_with()
    assert env_server.server.runtime.open_sessions == len(env_server.sessions)  # none but the episodes it plays


def test_function_call_actions_with_any_name_and_deeply_nested_arguments(env_server):
    name = env_server.env.spec.name

    @fuzz_settings(examples(name, 25, 4))
    @given(name_text=WEIRD_TEXT, depth=st.integers(0, 160), in_list=st.booleans(), args=JSON_VALUES)
    def call(name_text: str, depth: int, in_list: bool, args: object) -> None:
        session_id, _ = env_server.open("function_call")
        request = pb.StepRequest(session_id=session_id)
        request.call.name = name_text
        # Filled in place: copying a message parses it, and protobuf refuses to parse past its nesting limit.
        request.call.arguments.update({"input": nested(depth, in_list)} if depth else
                                      args if isinstance(args, dict) else {})
        code, response = env_server.raw.call("Step", request)
        # Beyond protobuf's nesting limit (100) the request does not parse: INVALID_ARGUMENT, as is an action
        # over the byte limit; anything else is an answer.
        assert code in {Code.OK, Code.INVALID_ARGUMENT}, code
        if response is not None and response.result.done:
            env_server.raw.call("Close", pb.CloseRequest(session_id=session_id))
            del env_server.sessions["function_call"]

    call()


# --- every RPC's fields ----------------------------------------------------------------------------------


def test_any_reset_request_opens_a_session_or_leaves_none_behind(env_server):
    task_ids = env_server.task_ids
    adapter_names = ["preset", "obs_format", "action_format", "action_list", "feedback", "lexicon", "prompt_style"]
    interface = st.lists(st.builds(lambda n, p: pb.AdapterSpec(name=n, params=p),
                                   st.one_of(st.sampled_from(adapter_names), WEIRD_TEXT),
                                   st.dictionaries(st.one_of(st.sampled_from(["name", "format", "show"]), WEIRD_TEXT),
                                                   st.one_of(st.sampled_from(["json", "every", "numbered", "x"]),
                                                             WEIRD_TEXT), max_size=3)), max_size=4)
    task = st.one_of(st.builds(lambda t: {"task_id": t}, st.one_of(st.sampled_from(task_ids), WEIRD_TEXT)),
                     st.builds(lambda s, d, i: {"task_ref": pb.TaskRef(split=s, difficulty=d, index=i)},
                               st.one_of(st.just(env_server.split), WEIRD_TEXT),
                               st.one_of(st.sampled_from(env_server.env.spec.difficulties), WEIRD_TEXT), INT32))
    # A valid ALFWorld reset takes a second: there, mostly invalid requests.
    slow = env_server.env.spec.name in SLOW_ENVS

    @fuzz_settings(examples(env_server.env.spec.name, 40, 8))
    @given(task=task, seed=INT64, interface=interface, max_turns=INT32, episode_id=WEIRD_TEXT)
    def reset(task: dict, seed: int, interface: list, max_turns: int, episode_id: str) -> None:
        before = env_server.server.runtime.open_sessions
        if slow and seed >= 0:
            seed = -1 - seed % 1000  # keeps ALFWorld from building games: the request fails on its seed
        request = pb.ResetRequest(seed=seed, interface=interface, max_turns=max_turns, client_episode_id=episode_id,
                                  **task)
        code, response = env_server.raw.call("Reset", request)
        assert code in {Code.OK, Code.INVALID_ARGUMENT}, code
        if code == Code.OK:
            assert env_server.server.runtime.open_sessions == before + 1
            assert env_server.raw.call("Close", pb.CloseRequest(session_id=response.session_id))[0] == Code.OK
        assert env_server.server.runtime.open_sessions == before

    reset()


def test_any_list_tasks_step_close_or_oracle_request_gets_a_documented_status(env_server):
    @fuzz_settings(examples(env_server.env.spec.name, 40, 10))
    @given(split=WEIRD_TEXT, difficulty=WEIRD_TEXT, page_size=INT32, token=WEIRD_TEXT, other_session=WEIRD_TEXT,
           step_index=st.one_of(st.none(), INT32), use_real=st.booleans())
    def requests(split, difficulty, page_size, token, other_session, step_index, use_real) -> None:
        session_id, _ = env_server.open("original")
        before = env_server.server.runtime.open_sessions
        code, _ = env_server.raw.call("ListTasks", pb.ListTasksRequest(split=split, difficulty=difficulty,
                                                                       page_size=page_size, page_token=token))
        assert code in {Code.OK, Code.INVALID_ARGUMENT}
        target = session_id if use_real else other_session
        step = pb.StepRequest(session_id=target, text="look")
        if step_index is not None:
            step.step_index = step_index
        code, response = env_server.raw.call("Step", step)
        assert code in ({Code.OK, Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION} if use_real else {Code.NOT_FOUND})
        if response is not None and response.result.done:
            env_server.sessions.pop("original", None)
            env_server.raw.call("Close", pb.CloseRequest(session_id=session_id))
            before -= 1
        assert env_server.raw.call("OracleAction", pb.OracleActionRequest(session_id=other_session))[0] == Code.NOT_FOUND
        assert env_server.raw.call("Close", pb.CloseRequest(session_id=other_session))[0] == Code.NOT_FOUND
        assert env_server.server.runtime.open_sessions == before

    requests()


def test_arbitrary_bytes_as_any_request_get_a_documented_status(env_server):
    @fuzz_settings(examples(env_server.env.spec.name, 30, 10))
    @given(method=st.sampled_from(sorted(METHODS)), raw=st.binary(max_size=300))
    def garbage(method: str, raw: bytes) -> None:
        before = env_server.server.runtime.open_sessions
        code, response = env_server.raw.call(method, raw)
        if method == "Reset" and code == Code.OK:  # bytes that happen to parse as a valid reset
            env_server.raw.call("Close", pb.CloseRequest(session_id=response.session_id))
        assert env_server.server.runtime.open_sessions == before

    garbage()


def test_any_session_stream_traffic_gets_one_documented_answer_per_request(env_server):
    kinds = st.sampled_from(["reset", "step", "close", "oracle_action", None])

    @fuzz_settings(examples(env_server.env.spec.name, 15, 3))
    @given(batch=st.lists(st.tuples(kinds, WEIRD_TEXT, WEIRD_TEXT), min_size=1, max_size=12))
    def stream(batch: list) -> None:
        session_id, _ = env_server.open("original")
        before = env_server.server.runtime.open_sessions
        requests = []
        for i, (kind, text, other) in enumerate(batch):
            request = pb.SessionRequest(correlation_id=f"{i}:{other}")
            if kind == "reset":  # an invalid reset (a bad task id): no game is built
                request.reset.CopyFrom(pb.ResetRequest(task_id=f"no-such-task/{text}"))
            elif kind == "step":
                request.step.CopyFrom(pb.StepRequest(session_id=session_id if i % 2 else other, text=text))
            elif kind == "close":
                request.close.CopyFrom(pb.CloseRequest(session_id=other))
            elif kind == "oracle_action":
                request.oracle_action.CopyFrom(pb.OracleActionRequest(session_id=other))
            requests.append(request)
        stub = env_server.raw.channel.stream_stream("/shiftgym.env.v1.EnvironmentService/Session",
                                                    request_serializer=pb.SessionRequest.SerializeToString,
                                                    response_deserializer=pb.SessionResponse.FromString)
        responses = list(stub(iter(requests), timeout=60))
        assert sorted(r.correlation_id for r in responses) == sorted(r.correlation_id for r in requests)
        for response in responses:
            if response.WhichOneof("kind") == "error":
                assert Code(next(c for c in Code if c.value[0] == response.error.code)) in DOCUMENTED
                assert response.error.message
            elif response.WhichOneof("kind") == "step" and response.step.result.done:
                env_server.sessions.pop("original", None)
                env_server.raw.call("Close", pb.CloseRequest(session_id=session_id))
                before -= 1
        assert env_server.server.runtime.open_sessions == before

    stream()
