from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("env", "version", "difficulties", "splits", "default_max_turns", "max_turns_limit", "reward_min", "reward_max", "adapters", "success_definition", "score_definition", "difficulty_definition", "oracle_enabled", "max_action_bytes", "max_sessions", "session_idle_ttl_s")
    ENV_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTIES_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    REWARD_MIN_FIELD_NUMBER: _ClassVar[int]
    REWARD_MAX_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    SCORE_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    ORACLE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SESSION_IDLE_TTL_S_FIELD_NUMBER: _ClassVar[int]
    env: str
    version: str
    difficulties: _containers.RepeatedScalarFieldContainer[str]
    splits: _containers.RepeatedCompositeFieldContainer[SplitInfo]
    default_max_turns: int
    max_turns_limit: int
    reward_min: float
    reward_max: float
    adapters: _containers.RepeatedCompositeFieldContainer[AdapterInfo]
    success_definition: str
    score_definition: str
    difficulty_definition: str
    oracle_enabled: bool
    max_action_bytes: int
    max_sessions: int
    session_idle_ttl_s: float
    def __init__(self, env: _Optional[str] = ..., version: _Optional[str] = ..., difficulties: _Optional[_Iterable[str]] = ..., splits: _Optional[_Iterable[_Union[SplitInfo, _Mapping]]] = ..., default_max_turns: _Optional[int] = ..., max_turns_limit: _Optional[int] = ..., reward_min: _Optional[float] = ..., reward_max: _Optional[float] = ..., adapters: _Optional[_Iterable[_Union[AdapterInfo, _Mapping]]] = ..., success_definition: _Optional[str] = ..., score_definition: _Optional[str] = ..., difficulty_definition: _Optional[str] = ..., oracle_enabled: _Optional[bool] = ..., max_action_bytes: _Optional[int] = ..., max_sessions: _Optional[int] = ..., session_idle_ttl_s: _Optional[float] = ...) -> None: ...

class SplitInfo(_message.Message):
    __slots__ = ("name", "task_counts")
    class TaskCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    task_counts: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., task_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class AdapterInfo(_message.Message):
    __slots__ = ("name", "description", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[AdapterParam]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[AdapterParam, _Mapping]]] = ...) -> None: ...

class AdapterParam(_message.Message):
    __slots__ = ("name", "description", "choices", "default_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    default_value: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., default_value: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("split", "difficulty", "page_size", "page_token")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    split: str
    difficulty: str
    page_size: int
    page_token: str
    def __init__(self, split: _Optional[str] = ..., difficulty: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token", "total_count")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    next_page_token: str
    total_count: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("task_id", "split", "difficulty", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    split: str
    difficulty: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, task_id: _Optional[str] = ..., split: _Optional[str] = ..., difficulty: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("split", "difficulty", "index")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    split: str
    difficulty: str
    index: int
    def __init__(self, split: _Optional[str] = ..., difficulty: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class AdapterSpec(_message.Message):
    __slots__ = ("name", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("task_id", "task_ref", "seed", "interface", "max_turns", "client_episode_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_REF_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_ref: TaskRef
    seed: int
    interface: _containers.RepeatedCompositeFieldContainer[AdapterSpec]
    max_turns: int
    client_episode_id: str
    def __init__(self, task_id: _Optional[str] = ..., task_ref: _Optional[_Union[TaskRef, _Mapping]] = ..., seed: _Optional[int] = ..., interface: _Optional[_Iterable[_Union[AdapterSpec, _Mapping]]] = ..., max_turns: _Optional[int] = ..., client_episode_id: _Optional[str] = ...) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("session_id", "task", "result", "interface_name")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_NAME_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    task: TaskInfo
    result: StepResult
    interface_name: str
    def __init__(self, session_id: _Optional[str] = ..., task: _Optional[_Union[TaskInfo, _Mapping]] = ..., result: _Optional[_Union[StepResult, _Mapping]] = ..., interface_name: _Optional[str] = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("text", "valid_actions", "fields")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VALID_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    valid_actions: _containers.RepeatedScalarFieldContainer[str]
    fields: _struct_pb2.Struct
    def __init__(self, text: _Optional[str] = ..., valid_actions: _Optional[_Iterable[str]] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("success", "score")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    score: float
    def __init__(self, success: _Optional[bool] = ..., score: _Optional[float] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("observation", "reward", "done", "truncated", "action_valid", "outcome", "turn", "info")
    class InfoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ACTION_VALID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    observation: Observation
    reward: float
    done: bool
    truncated: bool
    action_valid: bool
    outcome: Outcome
    turn: int
    info: _containers.ScalarMap[str, str]
    def __init__(self, observation: _Optional[_Union[Observation, _Mapping]] = ..., reward: _Optional[float] = ..., done: _Optional[bool] = ..., truncated: _Optional[bool] = ..., action_valid: _Optional[bool] = ..., outcome: _Optional[_Union[Outcome, _Mapping]] = ..., turn: _Optional[int] = ..., info: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FunctionCall(_message.Message):
    __slots__ = ("name", "arguments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("session_id", "text", "call", "step_index")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    text: str
    call: FunctionCall
    step_index: int
    def __init__(self, session_id: _Optional[str] = ..., text: _Optional[str] = ..., call: _Optional[_Union[FunctionCall, _Mapping]] = ..., step_index: _Optional[int] = ...) -> None: ...

class StepResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: StepResult
    def __init__(self, result: _Optional[_Union[StepResult, _Mapping]] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OracleActionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class OracleActionResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: str
    def __init__(self, action: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("correlation_id", "reset", "step", "close", "oracle_action")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_ACTION_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    reset: ResetRequest
    step: StepRequest
    close: CloseRequest
    oracle_action: OracleActionRequest
    def __init__(self, correlation_id: _Optional[str] = ..., reset: _Optional[_Union[ResetRequest, _Mapping]] = ..., step: _Optional[_Union[StepRequest, _Mapping]] = ..., close: _Optional[_Union[CloseRequest, _Mapping]] = ..., oracle_action: _Optional[_Union[OracleActionRequest, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("correlation_id", "reset", "step", "close", "oracle_action", "error")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_ACTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    reset: ResetResponse
    step: StepResponse
    close: CloseResponse
    oracle_action: OracleActionResponse
    error: Error
    def __init__(self, correlation_id: _Optional[str] = ..., reset: _Optional[_Union[ResetResponse, _Mapping]] = ..., step: _Optional[_Union[StepResponse, _Mapping]] = ..., close: _Optional[_Union[CloseResponse, _Mapping]] = ..., oracle_action: _Optional[_Union[OracleActionResponse, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
