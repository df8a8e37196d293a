"""Exception types of the environment service, each carrying the gRPC status code it maps to."""

from __future__ import annotations

import grpc


class EnvServerError(Exception):
    code = grpc.StatusCode.INTERNAL


class InvalidRequest(EnvServerError):
    """A request field is malformed: bad seed, oversized action, bad page token, bad adapter params."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnknownTask(InvalidRequest):
    pass


class UnknownAdapter(InvalidRequest):
    pass


class UnknownEnvironment(InvalidRequest):
    pass


class SessionNotFound(EnvServerError):
    code = grpc.StatusCode.NOT_FOUND


class EpisodeFinished(EnvServerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class OracleDisabled(EnvServerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionLimit(EnvServerError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Draining(EnvServerError):
    code = grpc.StatusCode.UNAVAILABLE
