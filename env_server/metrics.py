"""Prometheus collectors of one env server, in their own registry so several servers can share a process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServerMetrics:
    """`shiftgym_env_*` series, labelled by env and interface (adapter names, never task or session ids)."""

    def __init__(self, env: str, registry: CollectorRegistry | None = None) -> None:
        self.env = env
        self.registry = registry or CollectorRegistry()
        labels = ("env", "interface")
        self._steps = Counter("shiftgym_env_steps_total", "Steps taken", (*labels, "valid"), registry=self.registry)
        self._resets = Counter("shiftgym_env_resets_total", "Episodes started", labels, registry=self.registry)
        self._latency = Histogram(
            "shiftgym_env_step_duration_seconds", "Time to apply one step", labels,
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self._episodes = Counter(
            "shiftgym_env_episodes_total", "Episodes ended, by outcome (success, failure, truncated, expired, abandoned)",
            (*labels, "outcome"), registry=self.registry,
        )
        self._sessions = Gauge("shiftgym_env_active_sessions", "Open sessions", ("env",), registry=self.registry)
        self._max_sessions = Gauge("shiftgym_env_max_sessions", "Sessions the server holds before RESOURCE_EXHAUSTED",
                                   ("env",), registry=self.registry)
        self._errors = Counter(
            "shiftgym_env_errors_total", "Requests answered with an error status", ("env", "method", "code"),
            registry=self.registry,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._sessions.labels(env).set(0)

    def reset(self, interface: str) -> None:
        self._child(self._resets, interface).inc()

    def step(self, interface: str, valid: bool, seconds: float) -> None:
        self._child(self._steps, interface, "true" if valid else "false").inc()
        self._child(self._latency, interface).observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        # labels() validates and hashes on every call; a step pays for it twice, so keep the children.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.env, *labels)
        return child

    def episode_over(self, interface: str, outcome: str) -> None:
        self._episodes.labels(self.env, interface, outcome).inc()

    def set_max_sessions(self, count: int) -> None:
        self._max_sessions.labels(self.env).set(count)

    def set_open_sessions(self, count: int) -> None:
        self._sessions.labels(self.env).set(count)

    def error(self, method: str, code: str) -> None:
        self._errors.labels(self.env, method, code).inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve /metrics over HTTP; returns the bound port (pass 0 for any free one)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self._http = server
        return server.server_address[1]

    def stop_serving(self) -> None:
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()
