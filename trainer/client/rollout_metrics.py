"""Prometheus collectors of the trainer's side of rollouts (`shiftgym_rollout_*`), in their own registry.

The env pool records calls, steps, retries, failures, pods and episodes in flight; the episode runner records
how each episode ended with `episode_over`. Labels take small fixed sets of values, never task or episode ids.
The gauges say how prometheus_client's multiprocess mode combines the processes of a pod
(trainer/client/metrics_endpoint.py); counters and histograms are summed.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

EPISODE_STATUSES = ("completed", "truncated", "failed")
METHODS = ("reset", "step", "oracle_action", "close", "health")
POD_STATES = ("healthy", "down")
_LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RolloutMetrics:
    """One set of collectors shared by every env pool of a trainer; `env` is a label."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.episodes = Counter("shiftgym_rollout_episodes_total", "Episodes ended, by status (completed, truncated, "
                                "failed)", ("env", "interface", "status"), registry=r)
        self.steps = Counter("shiftgym_rollout_steps_total", "Steps answered by env servers", ("env",), registry=r)
        self.call_duration = Histogram("shiftgym_rollout_call_duration_seconds", "Env server calls as the client "
                                       "sees them, one per attempt", ("env", "method"), buckets=_LATENCY_BUCKETS,
                                       registry=r)
        # Each process has its own episodes open: the pod's figure is their sum over the processes still alive.
        self.in_flight = Gauge("shiftgym_rollout_in_flight_episodes", "Episodes open in the pool", ("env",),
                               registry=r, multiprocess_mode="livesum")
        # Every process's pool watches the same env pods: the latest report is the fleet's state (a sum would count
        # each env pod once per process).
        self.pods = Gauge("shiftgym_rollout_pods", "Env server pods known to the pool, by state", ("env", "state"),
                          registry=r, multiprocess_mode="livemostrecent")
        self.retries = Counter("shiftgym_rollout_retries_total", "Calls retried (Reset elsewhere, Step with its step "
                               "index)", ("env", "method"), registry=r)
        self.failures = Counter("shiftgym_rollout_failures_total", "Episodes the pool gave up on, by reason",
                                ("env", "reason"), registry=r)

    def for_env(self, env: str) -> "EnvMetrics":
        """The series of one env, with their label lookups done once (they sit on the step path)."""
        return EnvMetrics(
            env=env,
            metrics=self,
            steps=self.steps.labels(env),
            in_flight=self.in_flight.labels(env),
            durations={m: self.call_duration.labels(env, m) for m in METHODS},
        )

    def episode_over(self, env: str, interface: str, status: str) -> None:
        if status not in EPISODE_STATUSES:
            raise ValueError(f"unknown episode status {status!r} (known: {', '.join(EPISODE_STATUSES)})")
        self.episodes.labels(env, interface, status).inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve /metrics over HTTP; returns the bound port (pass 0 for any free one)."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self._http = server
        return int(server.server_address[1])

    def stop_serving(self) -> None:
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()


@dataclass(frozen=True, slots=True)
class EnvMetrics:
    env: str
    metrics: RolloutMetrics
    steps: Counter
    in_flight: Gauge
    durations: dict[str, Histogram]

    def call(self, method: str, seconds: float) -> None:
        self.durations[method].observe(seconds)

    def retry(self, method: str) -> None:
        self.metrics.retries.labels(self.env, method).inc()

    def failure(self, reason: str) -> None:
        self.metrics.failures.labels(self.env, reason).inc()

    def pods(self, healthy: int, down: int) -> None:
        self.metrics.pods.labels(self.env, "healthy").set(healthy)
        self.metrics.pods.labels(self.env, "down").set(down)
