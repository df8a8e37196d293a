"""Who may talk to an env server: TLS or mutual TLS from certificate files, bearer tokens, and client identity.

Everything is optional and off by default (plaintext, no auth), which suits loopback and a cluster whose
NetworkPolicy admits only trainer pods. Certificates and tokens are read from files, which is also how Kubernetes
mounts Secrets. Health checks stay open without a token, so kubelet's gRPC probes work; every other RPC, server
reflection included, needs one when tokens are configured.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Mapping

import grpc

# Health checking stays open: kubelet's gRPC probe cannot send a token.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)
AUTHORIZATION = "authorization"


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """The server's TLS files and accepted tokens. Empty means plaintext and no authentication."""

    tls_cert: Path | None = None  # PEM certificate chain the server presents
    tls_key: Path | None = None  # its private key
    tls_client_ca: Path | None = None  # set: mutual TLS; clients must present a certificate this CA signed
    tokens: Mapping[str, str] = field(default_factory=dict)  # bearer token -> client name

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its key (--tls-cert and --tls-key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("mutual TLS (--tls-client-ca) needs the server's own --tls-cert and --tls-key")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def credentials(self) -> grpc.ServerCredentials | None:
        """Server credentials from the files, or None for plaintext."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        client_ca = _read(self.tls_client_ca, "--tls-client-ca") if self.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(_read(self.tls_key, "--tls-key"), _read(self.tls_cert, "--tls-cert"))],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )

    def interceptors(self, on_reject: Callable[[str], None] = lambda method: None) -> tuple[grpc.aio.ServerInterceptor, ...]:
        return (BearerTokenInterceptor(self.tokens, on_reject),) if self.tokens else ()

    def token_name(self, metadata: object) -> str | None:
        """The name of the valid token in a call's metadata, if any."""
        return _match(_bearer(metadata), self.tokens)


def load_tokens(path: Path) -> dict[str, str]:
    """Tokens file: one token a line, as `NAME:TOKEN` or a bare `TOKEN` (named `token-<line>`); `#` comments.

    The name is the client's identity for session quotas and logs; the token itself is never logged.
    """
    tokens: dict[str, str] = {}
    for number, raw in enumerate(_read(path, "--auth-tokens-file").decode().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = (name.strip(), token.strip()) if sep else (f"token-{number}", name)
        if len(token) < 16:
            raise ValueError(f"{path}:{number}: a token must be at least 16 characters (use e.g. `openssl rand -hex 32`)")
        tokens[token] = name
    if not tokens:
        raise ValueError(f"{path} holds no token")
    return tokens


def client_identity(context: grpc.aio.ServicerContext, security: ServerSecurity | None) -> str:
    """Who is calling, for per-client session quotas: the mTLS certificate's subject, else the bearer token's
    name, else the peer's host address (without its port, so reconnecting does not make a new client)."""
    auth = context.auth_context()
    for key in ("x509_subject", "x509_common_name"):
        if auth.get(key):
            return f"cert:{auth[key][0].decode(errors='replace')}"
    if security is not None and security.tokens:
        name = security.token_name(context.invocation_metadata())
        if name is not None:
            return f"token:{name}"
    peer = context.peer() or "unknown"
    host, _, port = peer.rpartition(":")
    return f"peer:{host if host and port.isdigit() else peer}"


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Answers UNAUTHENTICATED unless the call carries `authorization: Bearer <a known token>` (health excepted)."""

    def __init__(self, tokens: Mapping[str, str], on_reject: Callable[[str], None]) -> None:
        self._tokens = dict(tokens)
        self._on_reject = on_reject

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(OPEN_METHOD_PREFIXES) or handler is None:
            return handler
        token = _bearer(handler_call_details.invocation_metadata)
        if _match(token, self._tokens) is not None:
            return handler
        self._on_reject(method)
        message = ("missing bearer token: send metadata `authorization: Bearer <token>`" if token is None
                   else "the bearer token is not one this server accepts")
        return _refusal(handler, message)


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(requests: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    streaming = (handler.request_streaming, handler.response_streaming)
    return kinds[streaming](
        abort_stream if handler.request_streaming else abort,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _bearer(metadata: object) -> str | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == AUTHORIZATION and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def _match(token: str | None, tokens: Mapping[str, str]) -> str | None:
    if not token:
        return None
    found = None
    for known, name in tokens.items():  # compare with every token, in constant time, so timing tells nothing
        if hmac.compare_digest(known.encode(), token.encode()):
            found = name
    return found


def _read(path: Path, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise OSError(f"cannot read {flag} file {path}: {err.strerror or err}") from None
