"""Security: TLS and mutual TLS from certificate files, bearer tokens, per-client session quotas and message size
limits, against real servers with certificates made in the test."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from env_server.runtime import Limits
from env_server.security import ServerSecurity, load_tokens
from env_server.server import MAX_MESSAGE_BYTES
from shiftgym.env.v1 import env_pb2 as pb
from tests.reliability.conftest import Pki, SecureServerThread
from tests.servers import ServerProcess
from trainer.client.channels import ChannelSecurity, open_channel
from trainer.client.env_client import AsyncEnvClient, EnvClient
from trainer.client.errors import EnvCallError
from trainer.client.pool import Deadlines, EnvPool, EpisodeRequest
from trainer.local_servers import REPO

TASK = "null/test/easy/00001"
ALICE, BOB = "alice-" + "a" * 24, "bob-" + "b" * 24
TOKENS = {ALICE: "alice", BOB: "bob"}
Code = grpc.StatusCode


def code_of(call) -> EnvCallError:
    with pytest.raises(EnvCallError) as err:
        call()
    return err.value


def plays(client: EnvClient) -> bool:
    opened = client.reset(TASK, seed=0)
    result, _ = client.step(opened.session_id, "word0001")
    client.close(opened.session_id)
    return result.outcome.success


def tls(pki: Pki, client=None, **kwargs) -> ChannelSecurity:
    cert = {"cert_file": client.cert, "key_file": client.key} if client else {}
    return ChannelSecurity(ca_file=pki.ca.path, **cert, **kwargs)


# --- TLS and mutual TLS --------------------------------------------------------------------------------


def test_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext_and_other_cas(pki):
    with SecureServerThread("null", security=ServerSecurity(pki.server.cert, pki.server.key)) as server:
        with EnvClient(server.target, 10, tls(pki)) as client, client.stream() as stream:
            assert plays(client)
            opened = stream.reset(TASK, seed=1)
            assert stream.step(opened.session_id, "word0001")[0].outcome.success
        for wrong in (ChannelSecurity(), ChannelSecurity(ca_file=pki.rogue_ca.path)):
            with EnvClient(server.target, 5, wrong) as client:
                assert code_of(client.describe).code == Code.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(pki):
    security = ServerSecurity(pki.server.cert, pki.server.key, pki.ca.path)
    with SecureServerThread("null", security=security) as server:
        with EnvClient(server.target, 10, tls(pki, pki.client_a)) as client:
            assert plays(client)
        for refused in (tls(pki), tls(pki, pki.rogue)):  # no certificate; one signed by another CA
            with EnvClient(server.target, 5, refused) as client:
                assert code_of(client.describe).code == Code.UNAVAILABLE
        assert server.runtime.open_sessions == 0


async def test_the_pool_plays_over_mutual_tls_with_a_token_read_from_the_environment(pki, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(ALICE + "\n")  # as a mounted Secret: a file, with a trailing newline
    security = ServerSecurity(pki.server.cert, pki.server.key, pki.ca.path, TOKENS)
    environ = {"SHIFTGYM_CLIENT_TLS_CA": str(pki.ca.path), "SHIFTGYM_CLIENT_TLS_CERT": str(pki.client_a.cert),
               "SHIFTGYM_CLIENT_TLS_KEY": str(pki.client_a.key), "SHIFTGYM_CLIENT_TOKEN_FILE": str(token_file)}
    from_env = ChannelSecurity.from_env(environ)
    assert from_env.uses_tls and from_env.bearer_token() == ALICE
    with SecureServerThread("null", security=security) as server:
        async with EnvPool([server.target], deadlines=Deadlines(2, 6, 30), security=from_env) as pool:
            assert pool.pods == {server.target: True} and pool.info is not None
            async with pool.episode(EpisodeRequest(TASK, seed=0)) as episode:
                assert (await episode.step("word0001")).outcome.success


def test_a_tls_server_answers_a_host_name_other_than_its_address_with_server_name(pki):
    with SecureServerThread("null", security=ServerSecurity(pki.server.cert, pki.server.key)) as server:
        with EnvClient(server.target, 10, tls(pki, server_name="localhost")) as client:
            assert client.describe().spec.name == "null"
        with EnvClient(server.target, 5, tls(pki, server_name="env.example.org")) as client:
            assert code_of(client.describe).code == Code.UNAVAILABLE


# --- bearer tokens -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server():
    with SecureServerThread("null", security=ServerSecurity(tokens=TOKENS)) as server:
        yield server


def test_every_rpc_without_a_valid_bearer_token_is_unauthenticated(token_server):
    for security, says in ((ChannelSecurity(), "missing bearer token"), (ChannelSecurity(token="x" * 30), "not one")):
        with EnvClient(token_server.target, 5, security) as client:
            for call in (client.describe, lambda: client.list_tasks("test", "easy"), lambda: client.reset(TASK),
                         lambda: client.step("s", "look"), lambda: client.close("s")):
                err = code_of(call)
                assert err.code == Code.UNAUTHENTICATED and says in err.message
            with client.stream() as stream:  # the stream is refused as a whole, before any episode opens
                refused = code_of(lambda: stream.reset(TASK))
                assert refused.code == Code.UNAUTHENTICATED and "UNAUTHENTICATED" in refused.message
    assert token_server.runtime.open_sessions == 0


def test_a_valid_token_opens_every_rpc_and_health_checks_need_none(token_server):
    with EnvClient(token_server.target, 10, ChannelSecurity(token=BOB)) as client, client.stream() as stream:
        assert plays(client)
        opened = stream.reset(TASK, seed=0)
        assert stream.step(opened.session_id, "word0001")[0].outcome.success
    with open_channel(token_server.target, ChannelSecurity()) as channel:  # kubelet's probe has no token
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="shiftgym.env.v1.EnvironmentService"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_a_bearer_token_needs_the_bearer_scheme(token_server):
    with grpc.insecure_channel(token_server.target) as channel:
        describe = channel.unary_unary("/shiftgym.env.v1.EnvironmentService/Describe",
                                       request_serializer=pb.DescribeRequest.SerializeToString,
                                       response_deserializer=pb.DescribeResponse.FromString)
        for value in (f"Basic {ALICE}", ALICE, "Bearer "):
            with pytest.raises(grpc.RpcError) as err:
                describe(pb.DescribeRequest(), metadata=(("authorization", value),), timeout=5)
            assert err.value.code() == Code.UNAUTHENTICATED
        assert describe(pb.DescribeRequest(), metadata=(("authorization", f"bearer {ALICE}"),), timeout=5).env == "null"


def test_a_tokens_file_names_its_tokens_and_rejects_short_ones(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# trainer tokens\nalice:{ALICE}\n\n{BOB}\n")
    assert load_tokens(path) == {ALICE: "alice", BOB: "token-4"}
    path.write_text("short:abc\n")
    with pytest.raises(ValueError, match="at least 16 characters"):
        load_tokens(path)
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no token"):
        load_tokens(path)


# --- per-client session quotas -------------------------------------------------------------------------


def test_session_quotas_count_per_token_and_say_when_to_retry():
    with SecureServerThread("null", Limits(max_sessions_per_client=2), ServerSecurity(tokens=TOKENS)) as server:
        with EnvClient(server.target, 10, ChannelSecurity(token=ALICE)) as alice, \
                EnvClient(server.target, 10, ChannelSecurity(token=BOB)) as bob:
            held = [alice.reset(TASK, seed=s).session_id for s in range(2)]
            err = code_of(lambda: alice.reset(TASK, seed=3))
            assert err.code == Code.RESOURCE_EXHAUSTED
            assert "client 'token:alice' holds its quota of 2" in err.message and "retry in 1 s" in err.message
            with alice.stream() as stream:  # the same answer on the stream, which stays open
                assert code_of(lambda: stream.reset(TASK, seed=3)).code == Code.RESOURCE_EXHAUSTED
                assert bob.reset(TASK, seed=3).session_id  # another client is not held back
                alice.close(held[0])
                assert stream.reset(TASK, seed=4).session_id
            assert server.runtime.sessions_of("token:alice") == 2 and server.runtime.sessions_of("token:bob") == 1


def test_a_full_quota_sends_a_retry_pushback_trailer():
    with SecureServerThread("null", Limits(max_sessions_per_client=1)) as server, \
            grpc.insecure_channel(server.target) as channel:
        reset = channel.unary_unary("/shiftgym.env.v1.EnvironmentService/Reset",
                                    request_serializer=pb.ResetRequest.SerializeToString,
                                    response_deserializer=pb.ResetResponse.FromString)
        reset(pb.ResetRequest(task_id=TASK), timeout=5)
        with pytest.raises(grpc.RpcError) as err:
            reset(pb.ResetRequest(task_id=TASK), timeout=5)
        assert err.value.code() == Code.RESOURCE_EXHAUSTED
        assert dict(err.value.trailing_metadata())["grpc-retry-pushback-ms"] == "1000"
        assert "client 'peer:ipv4:127.0.0.1'" in err.value.details()  # no TLS, no token: the peer's address


def test_quotas_count_per_client_certificate_and_episode_ids_stay_per_client(pki):
    security = ServerSecurity(pki.server.cert, pki.server.key, pki.ca.path)
    with SecureServerThread("null", Limits(max_sessions_per_client=1), security) as server:
        with EnvClient(server.target, 10, tls(pki, pki.client_a)) as a, \
                EnvClient(server.target, 10, tls(pki, pki.client_b)) as b:
            mine = a.reset(TASK, seed=0, client_episode_id="ep-1")
            assert a.reset(TASK, seed=0, client_episode_id="ep-1") == mine  # the same client's repeat
            assert "'cert:CN=trainer-a'" in code_of(lambda: a.reset(TASK, seed=1)).message
            theirs = b.reset(TASK, seed=0, client_episode_id="ep-1")  # the same id from another client
            assert theirs.session_id != mine.session_id


# --- message size limits -------------------------------------------------------------------------------


def test_a_request_over_the_message_limit_is_resource_exhausted_and_the_server_keeps_serving():
    with SecureServerThread("null", Limits(max_action_bytes=1024)) as server, \
            EnvClient(server.target, 10, ChannelSecurity()) as client:
        opened = client.reset(TASK, seed=0)
        huge = "a" * (MAX_MESSAGE_BYTES + 1)
        assert code_of(lambda: client.step(opened.session_id, huge)).code == Code.RESOURCE_EXHAUSTED
        with client.stream() as stream:
            assert code_of(lambda: stream.step(opened.session_id, huge)).code == Code.UNAVAILABLE  # stream ended
        big = "b" * 1025  # within the message limit, over the server's action limit
        err = code_of(lambda: client.step(opened.session_id, big))
        assert err.code == Code.INVALID_ARGUMENT and "longer than 1024 bytes" in err.message
        assert client.step(opened.session_id, "word0001")[0].outcome.success
        assert server.runtime.running_episodes == 0


# --- the command line ----------------------------------------------------------------------------------


def test_serve_takes_tls_and_token_flags_and_a_client_configured_from_the_environment_plays(pki, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice:{ALICE}\n")
    flags = ("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key), "--tls-client-ca",
             str(pki.ca.path), "--auth-tokens-file", str(tokens), "--max-sessions-per-client", "1", "--drain-grace-s", "0")
    environ = {"SHIFTGYM_CLIENT_TLS_CA": str(pki.ca.path), "SHIFTGYM_CLIENT_TLS_CERT": str(pki.client_a.cert),
               "SHIFTGYM_CLIENT_TLS_KEY": str(pki.client_a.key), "SHIFTGYM_CLIENT_TOKEN": ALICE}
    with ServerProcess("null", *flags) as server:
        with EnvClient(server.target, 10, ChannelSecurity.from_env(environ)) as client:
            assert plays(client)
            client.reset(TASK, seed=0)
            assert code_of(lambda: client.reset(TASK, seed=1)).code == Code.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("flags, says", [
    (("--tls-cert", "server.crt"), "needs both a certificate and its key"),
    (("--tls-cert", "missing.crt", "--tls-key", "missing.key"), "cannot read --tls-key file"),
    (("--auth-tokens-file", "missing-tokens"), "cannot read --auth-tokens-file file"),
])
def test_serve_with_bad_security_flags_says_what_to_fix_in_one_line(tmp_path, flags, says):
    run = subprocess.run([sys.executable, "-m", "env_server", "serve", "--env", "null", "--port", "0",
                          "--metrics-port", "-1", *flags], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode != 0
    assert says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


async def test_async_clients_carry_the_token_on_unary_calls_and_the_stream(token_server):
    async with AsyncEnvClient(token_server.target, 10, ChannelSecurity(token=ALICE)) as client:
        assert (await client.describe()).spec.name == "null"
        async with client.stream() as stream:
            opened = await stream.reset(TASK, seed=0)
            assert (await stream.step(opened.session_id, "word0001"))[0].outcome.success
