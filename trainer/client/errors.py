"""One typed exception for every failed call to an env server, whatever the transport."""

from __future__ import annotations

import grpc


class EnvCallError(Exception):
    """A call that an env server (or the channel to it) answered with a non-OK status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, err: grpc.RpcError) -> "EnvCallError":
        return cls(err.code(), err.details() or "")

    @classmethod
    def from_code(cls, code: int, message: str) -> "EnvCallError":
        status = next((s for s in grpc.StatusCode if s.value[0] == code), grpc.StatusCode.UNKNOWN)
        return cls(status, message)
