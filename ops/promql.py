"""The one table of PromQL expressions that the Grafana dashboard and the Prometheus alerts are generated from.

Each expression is a function of a Scope: the dashboard's scope adds Grafana's `$namespace` / `$env` variables
and `$__rate_interval`; an alert's scope adds nothing and uses the alert's own window. The live Prometheus test
(tests/ops/test_prometheus.py) runs every rendered expression against real env servers and a trainer stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# Error codes that mean the server, not the caller, is in trouble (the caller's mistakes are NOT_FOUND,
# INVALID_ARGUMENT and FAILED_PRECONDITION; see the error table in README.md).
SERVER_FAULT_CODES = "INTERNAL|UNKNOWN|UNAVAILABLE|RESOURCE_EXHAUSTED|DEADLINE_EXCEEDED"
_SERVER_FAULT = f'code=~"{SERVER_FAULT_CODES}"'
ENV_JOB = "env-server"  # the `job` label of env server targets (ServiceMonitor jobLabel: app.kubernetes.io/component)
TRAINER_JOB = "trainer"


@dataclass(frozen=True, slots=True)
class Scope:
    """Label matchers every selector gets (`env` ones only where the series has an env label), and the window."""

    matchers: tuple[str, ...] = ()
    env_matchers: tuple[str, ...] = ()
    window: str = "5m"

    def sel(self, metric: str, *matchers: str, env: bool = True) -> str:
        parts = (*matchers, *self.matchers, *(self.env_matchers if env else ()))
        return f"{metric}{{{', '.join(parts)}}}" if parts else metric

    def rate(self, metric: str, *matchers: str, env: bool = True) -> str:
        return f"rate({self.sel(metric, *matchers, env=env)}[{self.window}])"


DASHBOARD_SCOPE = Scope(('namespace=~"$namespace"',), ('env=~"$env"',), "$__rate_interval")


def _quantile(q: float, metric: str, by: str) -> Callable[[Scope], str]:
    return lambda s: f"histogram_quantile({q}, sum by ({by}, le) ({s.rate(metric)}))"


def _ratio(metric: str, matcher: str, by: str) -> Callable[[Scope], str]:
    return lambda s: f"sum by ({by}) ({s.rate(metric, matcher)}) / sum by ({by}) ({s.rate(metric)})"


EXPRESSIONS: dict[str, Callable[[Scope], str]] = {
    # Env servers (shiftgym_env_*, env_server/metrics.py).
    "env_targets_up": lambda s: s.sel("up", f'job="{ENV_JOB}"', env=False),
    "env_steps_rate": lambda s: f"sum by (env, interface) ({s.rate('shiftgym_env_steps_total')})",
    "env_invalid_action_ratio": _ratio("shiftgym_env_steps_total", 'valid="false"', "env"),
    "env_resets_rate": lambda s: f"sum by (env, interface) ({s.rate('shiftgym_env_resets_total')})",
    "env_step_p50": _quantile(0.5, "shiftgym_env_step_duration_seconds_bucket", "env"),
    "env_step_p90": _quantile(0.9, "shiftgym_env_step_duration_seconds_bucket", "env"),
    "env_step_p99": _quantile(0.99, "shiftgym_env_step_duration_seconds_bucket", "env"),
    "env_step_p99_by_namespace": _quantile(0.99, "shiftgym_env_step_duration_seconds_bucket", "namespace, env"),
    "env_active_sessions": lambda s: f"sum by (env) ({s.sel('shiftgym_env_active_sessions')})",
    "env_session_saturation": lambda s: (
        f"max by (namespace, env, pod) ({s.sel('shiftgym_env_active_sessions')})"
        f" / max by (namespace, env, pod) ({s.sel('shiftgym_env_max_sessions')})"
    ),
    "env_errors_rate": lambda s: f"sum by (env, method, code) ({s.rate('shiftgym_env_errors_total')})",
    "env_server_fault_ratio": lambda s: (
        f"sum by (namespace, env) ({s.rate('shiftgym_env_errors_total', _SERVER_FAULT)})"
        f" / (sum by (namespace, env) ({s.rate('shiftgym_env_steps_total')})"
        f" + sum by (namespace, env) ({s.rate('shiftgym_env_resets_total')}))"
    ),
    "env_episode_success_ratio": _ratio("shiftgym_env_episodes_total", 'outcome="success"', "env, interface"),
    "env_episodes_by_outcome": lambda s: f"sum by (env, outcome) ({s.rate('shiftgym_env_episodes_total')})",
    # Trainer side of rollouts (shiftgym_rollout_*, trainer/client/rollout_metrics.py).
    "rollout_episodes_rate": lambda s: f"sum by (env, status) ({s.rate('shiftgym_rollout_episodes_total')})",
    "rollout_failed_ratio": _ratio("shiftgym_rollout_episodes_total", 'status="failed"', "namespace, env"),
    "rollout_steps_rate": lambda s: f"sum by (env) ({s.rate('shiftgym_rollout_steps_total')})",
    "rollout_call_p99": _quantile(0.99, "shiftgym_rollout_call_duration_seconds_bucket", "env, method"),
    "rollout_in_flight": lambda s: f"sum by (env) ({s.sel('shiftgym_rollout_in_flight_episodes')})",
    "rollout_pods": lambda s: f"sum by (env, state) ({s.sel('shiftgym_rollout_pods')})",
    "rollout_retries_rate": lambda s: f"sum by (env, method) ({s.rate('shiftgym_rollout_retries_total')})",
    "rollout_failures_rate": lambda s: f"sum by (env, reason) ({s.rate('shiftgym_rollout_failures_total')})",
    # Training progress (shiftgym_train_*).
    "train_steps_rate": lambda s: f"sum by (namespace) ({s.rate('shiftgym_train_steps_total', env=False)})",
    "train_steps": lambda s: f"max by (namespace) ({s.sel('shiftgym_train_steps_total', env=False)})",
    "train_reward_mean": lambda s: f"avg by (namespace) ({s.sel('shiftgym_train_reward_mean', env=False)})",
    "train_seconds_since_step": lambda s: (
        f"time() - max by (namespace) ({s.sel('shiftgym_train_last_step_timestamp_seconds', env=False)})"
    ),
}


@dataclass(frozen=True, slots=True)
class Query:
    key: str  # into EXPRESSIONS
    legend: str

    def expr(self, scope: Scope = DASHBOARD_SCOPE) -> str:
        return EXPRESSIONS[self.key](scope)


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    unit: str  # a Grafana unit id
    queries: tuple[Query, ...]
    description: str = ""
    kind: str = "timeseries"  # or "stat"
    width: int = 12  # of Grafana's 24 columns


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    measure: str  # key into EXPRESSIONS: the quantity, which has series whenever the system runs
    op: str
    threshold: str
    for_: str
    severity: str
    summary: str
    description: str
    window: str = "5m"

    def measure_expr(self) -> str:
        return EXPRESSIONS[self.measure](Scope(window=self.window))

    def expr(self) -> str:
        return f"{self.measure_expr()} {self.op} {self.threshold}"


ROWS: tuple[Row, ...] = (
    Row("Env servers", (
        Panel("Steps/s", "reqps", (Query("env_steps_rate", "{{env}} {{interface}}"),),
              "Steps applied per second, by environment and interface."),
        Panel("Step latency", "s", (
            Query("env_step_p50", "p50 {{env}}"), Query("env_step_p90", "p90 {{env}}"),
            Query("env_step_p99", "p99 {{env}}"),
        ), "Time the server takes to apply one step (shiftgym_env_step_duration_seconds)."),
        Panel("Active sessions", "short", (Query("env_active_sessions", "{{env}}"),),
              "Open sessions over all pods of each environment."),
        Panel("Session saturation", "percentunit", (Query("env_session_saturation", "{{env}} {{pod}}"),),
              "Open sessions of each pod over its limit (shiftgym_env_max_sessions); RESOURCE_EXHAUSTED at 100%."),
        Panel("Errors/s", "reqps", (Query("env_errors_rate", "{{env}} {{method}} {{code}}"),),
              "Requests answered with an error status, by method and code."),
        Panel("Resets/s", "reqps", (Query("env_resets_rate", "{{env}} {{interface}}"),),
              "Episodes started per second."),
        Panel("Invalid actions", "percentunit", (Query("env_invalid_action_ratio", "{{env}}"),),
              "Share of steps whose action was not valid (an observation, not an error)."),
        Panel("Pods up", "short", (Query("env_targets_up", "{{service}} {{pod}}"),),
              "Scrape health of every env server pod (1 up, 0 down).", width=12),
    )),
    Row("Episodes", (
        Panel("Episode success by env and interface", "percentunit",
              (Query("env_episode_success_ratio", "{{env}} {{interface}}"),),
              "Episodes ended with success over all episodes ended, as the env servers count them.", width=16),
        Panel("Episodes ended by outcome", "short", (Query("env_episodes_by_outcome", "{{env}} {{outcome}}"),),
              "success, failure, truncated, expired (idle TTL), abandoned (closed early); per second.", width=8),
    )),
    Row("Trainer rollouts", (
        Panel("Rollout episodes/s", "short", (Query("rollout_episodes_rate", "{{env}} {{status}}"),),
              "Episodes the trainer finished, by status (completed, truncated, failed)."),
        Panel("Rollout steps/s", "short", (Query("rollout_steps_rate", "{{env}}"),),
              "Steps answered by env servers, as the trainer sees them."),
        Panel("Env call latency p99 (client side)", "s", (Query("rollout_call_p99", "{{env}} {{method}}"),),
              "One observation per attempt, retries included."),
        Panel("Episodes in flight", "short", (Query("rollout_in_flight", "{{env}}"),)),
        Panel("Env pods seen by the trainer", "short", (Query("rollout_pods", "{{env}} {{state}}"),)),
        Panel("Retries and failures/s", "short", (
            Query("rollout_retries_rate", "retry {{env}} {{method}}"),
            Query("rollout_failures_rate", "failed {{env}} {{reason}}"),
        ), "Calls retried (Reset elsewhere, Step with its step index) and episodes given up on."),
    )),
    Row("Training", (
        Panel("Training steps", "short", (Query("train_steps", "{{namespace}}"),), kind="stat", width=6),
        Panel("Mean reward", "short", (Query("train_reward_mean", "{{namespace}}"),), kind="stat", width=6),
        Panel("Seconds since the last training step", "s", (Query("train_seconds_since_step", "{{namespace}}"),),
              kind="stat", width=6),
        Panel("Training steps/s", "short", (Query("train_steps_rate", "{{namespace}}"),), width=6),
    )),
)

ALERTS: tuple[Alert, ...] = (
    Alert("ShiftGymEnvPodDown", "env_targets_up", "==", "0", "2m", "critical",
          "Env server {{ $labels.namespace }}/{{ $labels.pod }} is down",
          "Prometheus has not scraped {{ $labels.pod }} ({{ $labels.service }}) for 2 minutes; episodes pinned to "
          "it fail over to other pods."),
    Alert("ShiftGymEnvErrorRate", "env_server_fault_ratio", ">", "0.05", "10m", "warning",
          "{{ $labels.env }} answers {{ $value | humanizePercentage }} of requests with a server-side error",
          f"Errors with codes {SERVER_FAULT_CODES} over steps and resets in {{{{ $labels.namespace }}}}: "
          "RESOURCE_EXHAUSTED means the session limit is hit (scale out), INTERNAL has an error id in the logs."),
    Alert("ShiftGymEnvStepLatencyHigh", "env_step_p99_by_namespace", ">", "1", "10m", "warning",
          "{{ $labels.env }} step latency p99 is {{ $value | humanizeDuration }}",
          "The 99th percentile of shiftgym_env_step_duration_seconds is over 1 s: the pods are CPU-starved "
          "(check throttling and the HPA) or the environment has a slow path."),
    Alert("ShiftGymEnvSessionSaturation", "env_session_saturation", ">", "0.9", "5m", "warning",
          "{{ $labels.pod }} holds {{ $value | humanizePercentage }} of its session limit",
          "Over 90% of the pod's --max-sessions are open; new Resets will get RESOURCE_EXHAUSTED. Add replicas or "
          "check for clients that never close their episodes."),
    Alert("ShiftGymTrainerStalled", "train_seconds_since_step", ">", "1800", "5m", "critical",
          "The trainer in {{ $labels.namespace }} has not finished a training step for {{ $value | humanizeDuration }}",
          "shiftgym_train_last_step_timestamp_seconds has not moved for 30 minutes: check the trainer logs, the "
          "GPUs, and whether rollouts are failing (ShiftGymRolloutFailures)."),
    Alert("ShiftGymRolloutFailures", "rollout_failed_ratio", ">", "0.1", "10m", "warning",
          "{{ $value | humanizePercentage }} of {{ $labels.env }} rollouts fail",
          "Episodes end as `failed` when env calls fail after retries; see shiftgym_rollout_failures_total by "
          "reason and the env servers' errors.", window="10m"),
)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, rendered expression) for every query of the dashboard."""
    return [(p.title, q.expr()) for row in ROWS for p in row.panels for q in p.queries]
