"""FakeTrainer: a STAND-IN trainer in the live Prometheus test, beside a real `shiftgym train` run: it makes the
failure series (refused resets, retries, failed rollouts) a healthy run never makes.

It plays real episodes against real env servers through trainer.client.env_client (oracle actions after one
invalid action, so the servers count valid and invalid steps, successes and errors) and exports the trainer's
series with prometheus_client: `shiftgym_rollout_*` as trainer/client/rollout_metrics.py names them and
`shiftgym_train_*` as trainer/rl/metrics.py names them.

    python -m tests.ops.fake_trainer --target babyai=127.0.0.1:50051 --target textcraft=127.0.0.1:50052

Prints `READY metrics_port=N` once /metrics is served; runs until SIGTERM or --duration-s.
"""

from __future__ import annotations

import signal
import threading
import time

import click
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from trainer.client.env_client import EnvClient
from trainer.client.errors import EnvCallError


class FakeTrainerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.episodes = Counter("shiftgym_rollout_episodes_total", "Episodes ended", ("env", "interface", "status"),
                                registry=r)
        self.steps = Counter("shiftgym_rollout_steps_total", "Steps answered", ("env",), registry=r)
        self.calls = Histogram("shiftgym_rollout_call_duration_seconds", "Env calls", ("env", "method"), registry=r)
        self.in_flight = Gauge("shiftgym_rollout_in_flight_episodes", "Episodes open", ("env",), registry=r)
        self.pods = Gauge("shiftgym_rollout_pods", "Env pods by state", ("env", "state"), registry=r)
        self.retries = Counter("shiftgym_rollout_retries_total", "Calls retried", ("env", "method"), registry=r)
        self.failures = Counter("shiftgym_rollout_failures_total", "Episodes given up", ("env", "reason"), registry=r)
        self.train_steps = Counter("shiftgym_train_steps_total", "Training steps", registry=r)
        self.reward = Gauge("shiftgym_train_reward_mean", "Mean reward of the last batch", registry=r)
        self.last_step = Gauge("shiftgym_train_last_step_timestamp_seconds", "When the last step ended", registry=r)


class FakeTrainer:
    def __init__(self, targets: dict[str, str], metrics: FakeTrainerMetrics) -> None:
        self.clients = {env: EnvClient(target, timeout_s=10) for env, target in targets.items()}
        self.m = metrics
        for env in targets:
            self.m.pods.labels(env, "healthy").set(1)
            self.m.pods.labels(env, "down").set(0)

    def _call(self, env: str, method: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.m.calls.labels(env, method).observe(time.perf_counter() - start)

    def _open(self, env: str, index: int) -> str | None:
        """Reset, retried once like the pool retries elsewhere; None when the episode cannot start."""
        client = self.clients[env]
        for attempt in range(2):
            try:
                opened = self._call(env, "reset", client.reset, split="test", difficulty="easy", index=index, seed=1)
                self.m.in_flight.labels(env).inc()
                return opened.session_id
            except EnvCallError as err:
                if attempt == 0:
                    self.m.retries.labels(env, "reset").inc()
                    continue
                self.m.failures.labels(env, err.code.name.lower()).inc()
                self.m.episodes.labels(env, "original", "failed").inc()
        return None

    def _play(self, env: str, session_id: str) -> float:
        client = self.clients[env]
        result, turn = self._call(env, "step", client.step, session_id, "xyzzy", step_index=0)  # an invalid action
        self.m.steps.labels(env).inc()
        while not result.done:
            action = self._call(env, "oracle_action", client.oracle_action, session_id)
            result, turn = self._call(env, "step", client.step, session_id, action, step_index=turn)
            self.m.steps.labels(env).inc()
        self._call(env, "close", client.close, session_id)
        self.m.in_flight.labels(env).dec()
        self.m.episodes.labels(env, "original", "truncated" if result.truncated else "completed").inc()
        return result.reward if result.outcome is None else result.outcome.score

    def round(self, index: int, extra_sessions: int) -> None:
        """Per env: open 1 + extra_sessions episodes at once (beyond a server's --max-sessions some are refused),
        play the ones that opened; then one training step."""
        scores = []
        for env in self.clients:
            sessions = [s for s in (self._open(env, index + k) for k in range(1 + extra_sessions)) if s]
            scores += [self._play(env, s) for s in sessions]
        self.m.train_steps.inc()
        self.m.reward.set(sum(scores) / len(scores) if scores else 0.0)
        self.m.last_step.set(time.time())


@click.command()
@click.option("--target", "targets", multiple=True, required=True, help="ENV=HOST:PORT of an env server.")
@click.option("--extra-sessions", default=2, show_default=True, help="Episodes opened at once beyond the first.")
@click.option("--period-s", default=0.5, show_default=True)
@click.option("--duration-s", default=300.0, show_default=True)
def main(targets: tuple[str, ...], extra_sessions: int, period_s: float, duration_s: float) -> None:
    metrics = FakeTrainerMetrics()
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    trainer = FakeTrainer(dict(t.split("=", 1) for t in targets), metrics)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"READY metrics_port={server.server_address[1]}", flush=True)
    deadline = time.monotonic() + duration_s
    index = 0
    while not stop.is_set() and time.monotonic() < deadline:
        trainer.round(index % 50, extra_sessions)
        index += 1
        stop.wait(period_s)
    server.shutdown()


if __name__ == "__main__":
    main()
