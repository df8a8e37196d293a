"""`shiftgym_train_*` series: training progress, next to the rollout series in the same registry."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge


class TrainMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._steps = Counter("shiftgym_train_steps_total", "Optimiser steps taken", registry=registry)
        self._reward = Gauge("shiftgym_train_reward_mean", "Mean shaped reward of the last step's rollouts",
                             registry=registry)
        self._success = Gauge("shiftgym_train_success_mean", "Mean success of the last step's rollouts",
                              registry=registry)
        # Set at start as well, so a trainer that never finishes a step still looks stalled to the alert.
        self._last_step = Gauge("shiftgym_train_last_step_timestamp_seconds",
                                "Unix time of the last optimiser step (of the start, before the first)",
                                registry=registry)
        self._last_step.set(time.time())

    def step(self, reward: float, success: float) -> None:
        self._steps.inc()
        self._reward.set(reward)
        self._success.set(success)
        self._last_step.set(time.time())
