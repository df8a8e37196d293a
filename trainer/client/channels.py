"""One place that opens gRPC channels to env servers, so options and credentials are set once.

Credentials come from a `ChannelSecurity`, by default read from the environment (`SHIFTGYM_CLIENT_*`, files as
Kubernetes mounts Secrets): TLS with a CA, a client certificate for mutual TLS, and a bearer token sent as
`authorization: Bearer ...` metadata on every call. With none set, channels are plaintext, as on loopback.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import grpc

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)
ENV_VARS = {
    "ca_file": "SHIFTGYM_CLIENT_TLS_CA",
    "cert_file": "SHIFTGYM_CLIENT_TLS_CERT",
    "key_file": "SHIFTGYM_CLIENT_TLS_KEY",
    "server_name": "SHIFTGYM_CLIENT_TLS_SERVER_NAME",
    "token": "SHIFTGYM_CLIENT_TOKEN",
    "token_file": "SHIFTGYM_CLIENT_TOKEN_FILE",
}


@dataclass(frozen=True, slots=True)
class ChannelSecurity:
    """How a client authenticates the server and itself. The default is plaintext without a token."""

    tls: bool = False  # TLS with the system's CA roots; implied by ca_file or a client certificate
    ca_file: Path | None = None  # PEM CA bundle that signed the servers' certificates
    cert_file: Path | None = None  # PEM client certificate, for mutual TLS (with key_file)
    key_file: Path | None = None
    server_name: str = ""  # the name to check in the server's certificate, when not the target's host
    token: str = ""  # a bearer token, or
    token_file: Path | None = None  # the file holding one (read when a channel opens)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if self.token and self.token_file:
            raise ValueError("give a bearer token or a token file, not both")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "ChannelSecurity":
        """Read SHIFTGYM_CLIENT_TLS_CA, _TLS_CERT, _TLS_KEY, _TLS_SERVER_NAME, _TOKEN and _TOKEN_FILE."""
        value = {field: environ.get(var, "").strip() for field, var in ENV_VARS.items()}
        path = lambda field: Path(value[field]) if value[field] else None  # noqa: E731
        return cls(
            ca_file=path("ca_file"), cert_file=path("cert_file"), key_file=path("key_file"),
            server_name=value["server_name"], token=value["token"], token_file=path("token_file"),
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file) if self.ca_file else None,
            private_key=_read(self.key_file) if self.key_file else None,
            certificate_chain=_read(self.cert_file) if self.cert_file else None,
        )

    def bearer_token(self) -> str:
        token = _read(self.token_file).decode().strip() if self.token_file else self.token
        if self.token_file and not token:
            raise ValueError(f"token file {self.token_file} is empty")
        return token

    def options(self) -> tuple[tuple[str, Any], ...]:
        if self.uses_tls and self.server_name:
            return (*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", self.server_name))
        return CHANNEL_OPTIONS


def open_async_channel(target: str, security: ChannelSecurity | None = None) -> grpc.aio.Channel:
    """A grpc.aio channel to `target` with the given security, else the one the environment sets."""
    security = security or ChannelSecurity.from_env()
    token = security.bearer_token()
    interceptors = _async_bearer(token) if token else None
    if security.uses_tls:
        return grpc.aio.secure_channel(target, security.credentials(), security.options(), interceptors=interceptors)
    return grpc.aio.insecure_channel(target, security.options(), interceptors=interceptors)


def open_channel(target: str, security: ChannelSecurity | None = None) -> grpc.Channel:
    """The blocking twin of open_async_channel."""
    security = security or ChannelSecurity.from_env()
    token = security.bearer_token()
    if security.uses_tls:
        channel = grpc.secure_channel(target, security.credentials(), security.options())
    else:
        channel = grpc.insecure_channel(target, security.options())
    return grpc.intercept_channel(channel, _Bearer(token)) if token else channel


# The token goes in as call metadata through an interceptor, the same way with TLS and without (gRPC's own call
# credentials refuse plaintext channels, and a service mesh may terminate TLS for us). Over plaintext it travels
# in the clear: outside loopback, use it with TLS.


def _with_token(metadata: Any, token: str) -> list[tuple[str, str]]:
    return [*(metadata or ()), ("authorization", f"Bearer {token}")]


class _AsyncBearer:
    """Adds the token to a call's metadata. grpc.aio files an interceptor under the first call kind it implements,
    so each kind gets its own subclass below."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*_with_token(details.metadata, self._token))
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)


class _AsyncBearerUnaryUnary(_AsyncBearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Callable, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AsyncBearerUnaryStream(_AsyncBearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Callable, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AsyncBearerStreamUnary(_AsyncBearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Callable, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AsyncBearerStreamStream(_AsyncBearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Callable, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def _async_bearer(token: str) -> list[Any]:
    kinds = (_AsyncBearerUnaryUnary, _AsyncBearerUnaryStream, _AsyncBearerStreamUnary, _AsyncBearerStreamStream)
    return [kind(token) for kind in kinds]


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                                            "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(details.method, details.timeout, _with_token(details.metadata, self._token),
                            details.credentials, getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Callable, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def _read(path: Path | None) -> bytes:
    try:
        return Path(path).read_bytes()  # type: ignore[arg-type]
    except OSError as err:
        raise OSError(f"cannot read TLS or token file {path}: {err.strerror or err}") from None
