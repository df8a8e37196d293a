"""Fixtures of the reliability suite: servers with security settings, certificates made per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from env_server.envs.base import Environment
from env_server.runtime import Limits
from env_server.security import ServerSecurity
from env_server.server import EnvServer, build_server
from tests.reliability.certs import CertificateAuthority, Issued
from tests.servers import ServerThread


class SecureServerThread(ServerThread):
    """tests.servers.ServerThread with TLS, mutual TLS or tokens."""

    def __init__(self, env: str | Environment, limits: Limits | None = None,
                 security: ServerSecurity | None = None) -> None:
        super().__init__(env, limits)
        self._security = security

    async def _start(self) -> EnvServer:
        server = await build_server(self._env, "127.0.0.1:0", self._limits, security=self._security)
        await server.start()
        return server


class Pki:
    """A trusted CA with a server certificate and two client certificates, and an untrusted CA with one client."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = CertificateAuthority.create(folder / "ca", "shiftgym-test-ca")
        self.server: Issued = self.ca.issue(folder / "server", "env-server", server=True)
        self.client_a: Issued = self.ca.issue(folder / "clients", "trainer-a", server=False)
        self.client_b: Issued = self.ca.issue(folder / "clients", "trainer-b", server=False)
        self.rogue_ca = CertificateAuthority.create(folder / "rogue", "rogue-ca")
        self.rogue: Issued = self.rogue_ca.issue(folder / "rogue", "intruder", server=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))
