"""Pools for several environments at once."""

from __future__ import annotations

import asyncio
from typing import Iterator, Mapping, Sequence

from trainer.client import channels
from trainer.client.pool import EnvPool
from trainer.client.pool_terms import Deadlines, Retries
from trainer.client.rollout_metrics import RolloutMetrics


class EnvFleet(Mapping[str, EnvPool]):
    """One EnvPool per environment, from {env: endpoints}, sharing one RolloutMetrics; started and closed together."""

    def __init__(
        self,
        endpoints: Mapping[str, Sequence[str] | str],
        *,
        deadlines: Deadlines = Deadlines(),
        retries: Retries = Retries(),
        max_episodes: int = 256,
        metrics: RolloutMetrics | None = None,
        health_interval_s: float = 2.0,
        resolve_interval_s: float = 30.0,
        security: channels.ChannelSecurity | None = None,
    ) -> None:
        self.metrics = metrics or RolloutMetrics()
        self._pools = {
            env: EnvPool(targets, env=env, deadlines=deadlines, retries=retries, max_episodes=max_episodes,
                         metrics=self.metrics, health_interval_s=health_interval_s,
                         resolve_interval_s=resolve_interval_s, security=security)
            for env, targets in endpoints.items()
        }

    def __getitem__(self, env: str) -> EnvPool:
        if env not in self._pools:
            raise KeyError(f"no pool for env {env!r} (known: {', '.join(sorted(self._pools))})")
        return self._pools[env]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    async def __aenter__(self) -> "EnvFleet":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        results = await asyncio.gather(*(pool.start() for pool in self._pools.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.aclose()
            raise errors[0]

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools.values()))
