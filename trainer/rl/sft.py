"""Behaviour cloning on CPU: oracle episodes assembled into token trajectories by the RL path's own EpisodeRunner
and ChatGlue, cross-entropy on the action tokens only (the RL action mask), and a checkpoint the RL stages start from.

A token-level teacher plays each episode: at every turn it asks the server for the oracle's action and emits that
action's tokens and the stop token, exactly the tokens choice mode would sample for it. So the trajectory's
`action_ranges` are the loss mask, and observations and chat glue are masked as GRPO masks them.
`warm_start(...)` is the whole stage for the grid; `shiftgym warm-start` its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence

import click
import torch

from env_server.types import Observation, TaskInfo
from trainer.bc_dataset import Demonstration, plan_tasks, server_tasks, write_demonstrations
from trainer.chat import ChatGlue
from trainer.client.errors import EnvCallError
from trainer.client.pool import EnvPool, EpisodeRequest
from trainer.datasets import Interface, interface_json, parse_interface
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec, PooledEpisode
from trainer.policies.base import Generation, Message
from trainer.rl.grpo import _pack  # the RL path's packing: its action mask is the one GRPO trains with
from trainer.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class TokenDemonstration:
    """A won oracle episode as the learner sees it (token ids, action ranges) and as chat messages."""

    trajectory: Trajectory
    demonstration: Demonstration


class OracleTeacher:
    """For one episode: the source that opens it (through `source`) and the token policy that plays the oracle's
    actions in it, each as its tokens plus the stop token."""

    name = "oracle-teacher"

    def __init__(self, source: Any, tokenizer: Any, system_prompt: str = "") -> None:
        self.source = source
        self.tokenizer = tokenizer
        self.glue = ChatGlue(tokenizer, system_prompt)
        self.messages: list[Message] = [Message("system", system_prompt)] if system_prompt else []
        self._episode: PooledEpisode | None = None

    @contextlib.asynccontextmanager
    async def episode(self, request: EpisodeRequest) -> AsyncIterator[PooledEpisode]:
        async with self.source.episode(request) as episode:
            self._episode = episode
            yield episode

    async def act_tokens(self, prompt_ids: Sequence[int], observation: Observation, max_tokens: int,
                         rng: random.Random) -> Generation:
        assert self._episode is not None, "the teacher plays only episodes it opened"
        action = await self._episode.oracle_action()
        self.messages += [Message("user", observation.text), Message("assistant", action)]
        ids = [*self.glue.encode(action), self.glue.stop_id]
        finish = "stop" if len(ids) <= max_tokens else "length"
        ids = ids[:max_tokens]
        return Generation(tuple(ids), (0.0,) * len(ids), finish)


async def oracle_demonstrations(source: Any, env: str, plan: Sequence[tuple[TaskInfo, int]], tokenizer: Any, *,
                                interface: Interface = (), max_turns: int = 0, budget: Budget = Budget(),
                                system_prompt: str = "") -> tuple[list[TokenDemonstration], list[str]]:
    """Play the teacher on every planned (task, seed); returns the won, uncut episodes and why the rest were not."""

    async def one(task: TaskInfo, seed: int) -> TokenDemonstration | str:
        teacher = OracleTeacher(source, tokenizer, system_prompt)
        runner = EpisodeRunner(teacher, budget=budget, system_prompt=system_prompt)
        spec = EpisodeSpec(env, task.task_id, seed, interface=interface, max_turns=max_turns)
        trajectory = await runner.run(spec, teacher)
        if not trajectory.success or trajectory.status != "completed":
            return f"{task.task_id}: {trajectory.status}" + (f" ({trajectory.reason})" if trajectory.reason else "")
        chat = Demonstration(env, task, seed, trajectory.interface, tuple(teacher.messages))
        return TokenDemonstration(trajectory, chat)

    results = await asyncio.gather(*(one(task, seed) for task, seed in plan))
    return [r for r in results if isinstance(r, TokenDemonstration)], [r for r in results if isinstance(r, str)]


def pack(trajectories: Sequence[Trajectory]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention, action mask) as GRPO packs them: mask index t-1 is 1 where token t was an action token."""
    ids, attention, mask, _, _ = _pack([(t, 0.0) for t in trajectories])
    return ids, attention, mask


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions where `mask` is 1; logits (batch, T, vocab), labels and mask (batch, T).
    Labels where the mask is 0 are never read into the value or its gradient."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -(picked * mask).sum() / mask.sum().clamp(min=1)


def sft_loss(model: Any, trajectories: Sequence[Trajectory]) -> torch.Tensor:
    """Cross-entropy of the action tokens given everything before them; observation and glue tokens are context
    only. Position t-1's logits score token t, as in `token_log_probs`."""
    ids, attention, mask = pack(trajectories)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    return masked_cross_entropy(logits, ids[:, 1:], mask)


@dataclass(frozen=True, slots=True)
class SFTConfig:
    lr: float = 3e-3
    epochs: int = 8  # passes over the demonstrations
    batch_size: int = 16  # trajectories per optimizer step
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    schedule: str = "constant"  # or "cosine": decay to zero over all `epochs`
    warmup_frac: float = 0.0  # share of all optimizer steps spent ramping the lr up from zero

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.max_grad_norm <= 0:
            raise ValueError(f"bad SFT settings: {self}")
        if self.schedule not in ("constant", "cosine") or not 0 <= self.warmup_frac < 1:
            raise ValueError(f"bad SFT schedule: {self.schedule!r} (known: constant, cosine), warmup_frac "
                             f"{self.warmup_frac} (give 0 <= warmup_frac < 1)")

    def lr_factor(self, step: int, total_steps: int) -> float:
        """The multiplier of `lr` at optimizer step `step` (from 0) of `total_steps`."""
        warmup = self.warmup_frac * total_steps
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if self.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1.0, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class SFTTrainer:
    """AdamW on `sft_loss`, over shuffled batches of trajectories; the model stays in eval mode between epochs."""

    def __init__(self, model: Any, config: SFTConfig = SFTConfig()) -> None:
        self.model = model
        self.config = config
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self._rng = random.Random(config.seed)
        self.epochs = 0
        self.steps = 0

    def _set_lr(self, batches_per_epoch: int) -> None:
        # The schedule spans the configured epochs at this epoch's batch count; epochs past them keep the last lr.
        total = self.config.epochs * batches_per_epoch
        factor = self.config.lr_factor(min(self.steps, total - 1), total)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor

    def epoch(self, trajectories: Sequence[Trajectory]) -> float:
        """One pass over batches of similar length (padding is most of the cost on CPU), in a seeded order;
        returns the mean of the batches' losses."""
        if not trajectories:
            raise ValueError("no trajectories to train on")
        ranked = sorted(trajectories, key=lambda t: (len(t.token_ids), self._rng.random()))
        size = self.config.batch_size
        batches = [ranked[start: start + size] for start in range(0, len(ranked), size)]
        self._rng.shuffle(batches)
        self.model.train()
        losses = []
        for batch in batches:
            self._set_lr(len(batches))
            self.optimizer.zero_grad()
            loss = sft_loss(self.model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            self.steps += 1
            losses.append(float(loss.detach()))
        self.model.eval()
        self.epochs += 1
        return sum(losses) / len(losses)


EpochHook = Callable[[int, float], Awaitable[None] | None]  # (epoch, mean loss)


async def warm_start_async(
    model_dir_in: str | Path, out_dir: str | Path, endpoints: Mapping[str, str], envs: Sequence[str] | None = None,
    episodes: int = 200, seed: int = 0, *, split: str = "train", difficulties: Sequence[str] = ("easy",),
    match: str = "", exclude: Collection[str] = (), interface: Interface = (), max_turns: int = 0,
    budget: Budget = Budget(turn_tokens=32, trajectory_tokens=3072), config: SFTConfig | None = None,
    system_prompt: str = "", on_epoch: EpochHook | None = None,
) -> Path:
    """Behaviour-clone the model in `model_dir_in` on `episodes` oracle episodes per env and save it to `out_dir`.

    Episodes come from `split` (train), spread over `difficulties`, tasks drawn with `seed`, never a task id in
    `exclude` (the held-out evaluation's ids). `out_dir` gets the model and tokenizer (save_pretrained),
    `bc_data.jsonl` (the same episodes as chat JSONL for OpenRLHF, with `bc_data.tasks.json`: the task ids used)
    and `shiftgym_warm_start.json` (settings, per-epoch losses, counts). Raises ValueError when a setting is wrong
    or the oracle won no episode (e.g. a server without --enable-oracle).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or SFTConfig(seed=seed)
    names = list(envs) if envs is not None else sorted(endpoints)
    missing = [env for env in names if env not in endpoints]
    if not names or missing:
        raise ValueError(f"no endpoint for env(s) {', '.join(missing) or '(none given)'} "
                         f"(given: {', '.join(sorted(endpoints)) or 'none'})")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir_in))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir_in), dtype=torch.float32)
    started = time.monotonic(), time.process_time()
    demonstrations: list[TokenDemonstration] = []
    lost: dict[str, list[str]] = {}
    for env in names:
        target = endpoints[env]
        plan = await plan_tasks(await server_tasks(target.split(",")[0].strip()),
                                [(split, d) for d in difficulties], episodes, seed, match=match, exclude=exclude)
        async with EnvPool(target, env=env) as pool:
            won, lost[env] = await oracle_demonstrations(pool, env, plan, tokenizer, interface=interface,
                                                         max_turns=max_turns, budget=budget,
                                                         system_prompt=system_prompt)
        if not won:
            raise ValueError(f"{env}: the oracle won none of {len(plan)} episodes; first: {lost[env][0]}")
        demonstrations += won
    recorded = time.monotonic(), time.process_time()
    torch.manual_seed(config.seed)
    trainer = SFTTrainer(model, config)
    losses = []
    for epoch in range(1, config.epochs + 1):
        losses.append(await asyncio.to_thread(trainer.epoch, [d.trajectory for d in demonstrations]))
        if on_epoch is not None:
            maybe = on_epoch(epoch, losses[-1])
            if maybe is not None:
                await maybe
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_demonstrations(out / "bc_data.jsonl", [d.demonstration for d in demonstrations], envs=names, split=split,
                         difficulties=list(difficulties), match=match, seed=seed, interface=interface_json(interface),
                         system_prompt=system_prompt)
    done = time.monotonic(), time.process_time()
    (out / "shiftgym_warm_start.json").write_text(json.dumps({
        "from": str(model_dir_in), "envs": names, "episodes_per_env": episodes, "split": split,
        "difficulties": list(difficulties), "match": match, "seed": seed, "interface": interface_json(interface),
        "sft": asdict(config), "losses": losses, "demonstrations": len(demonstrations),
        "action_tokens": sum(sum(d.trajectory.action_mask()) for d in demonstrations), "lost": lost,
        "record_s": {"wall": recorded[0] - started[0], "cpu": recorded[1] - started[1]},
        "train_s": {"wall": done[0] - recorded[0], "cpu": done[1] - recorded[1]},
    }, indent=2) + "\n")
    return out


def warm_start(model_dir_in: str | Path, out_dir: str | Path, endpoints: Mapping[str, str],
               envs: Sequence[str] | None = None, episodes: int = 200, seed: int = 0, **kwargs: Any) -> Path:
    """`warm_start_async` for callers without an event loop (it runs one)."""
    return asyncio.run(warm_start_async(model_dir_in, out_dir, endpoints, envs, episodes, seed, **kwargs))


def _endpoints(values: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for value in values:
        env, sep, target = value.partition("=")
        if not sep or not env.strip() or not target.strip():
            raise ValueError(f"bad --endpoint {value!r}: give ENV=host:port[,host:port...]")
        parsed[env.strip()] = target.strip()
    return parsed


@click.command("warm-start")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A transformers model directory (e.g. from `shiftgym tiny-model`).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Where to save the warm-started model.")
@click.option("--endpoint", "endpoints", multiple=True, required=True,
              help="ENV=host:port[,host:port...] of servers run with --enable-oracle; repeat per environment.")
@click.option("--episodes", default=200, show_default=True, help="Oracle episodes per environment.")
@click.option("--split", default="train", show_default=True)
@click.option("--difficulty", "difficulties", default="easy", show_default=True, help="Comma-separated.")
@click.option("--match", default="", help="Regex a task id must match, e.g. GoToLocal.")
@click.option("--exclude-tasks", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Held-out task ids never to train on: a .tasks.json, a JSON list or one id a line.")
@click.option("--interface", default="", help="Preset name or JSON list of adapters (default: the env's own).")
@click.option("--max-turns", default=0, show_default=True, help="Turn limit (0: the environment's default).")
@click.option("--epochs", default=8, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--batch-size", default=16, show_default=True, help="Trajectories per optimizer step.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning rate over the epochs: flat, or a cosine decay to zero.")
@click.option("--warmup", default=0.0, show_default=True, help="Share of the steps ramping the lr up from zero.")
@click.option("--seed", default=0, show_default=True, help="Seeds the task draw and the batch order.")
def warm_start_command(model_dir: str, out: str, endpoints: tuple[str, ...], episodes: int, split: str,
                       difficulties: str, match: str, exclude_tasks: str | None, interface: str, max_turns: int,
                       epochs: int, lr: float, batch_size: int, schedule: str, warmup: float, seed: int) -> None:
    """Behaviour-clone a model on oracle episodes (action tokens only) and save the checkpoint RL starts from."""
    from transformers.utils import logging as transformers_logging

    from trainer.bc_dataset import read_task_ids

    transformers_logging.disable_progress_bar()  # a few-MB checkpoint: the bar is noise on stderr
    try:
        if episodes < 1 or max_turns < 0:
            raise ValueError(f"need --episodes >= 1 and --max-turns >= 0, got {episodes} and {max_turns}")
        config = SFTConfig(lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, schedule=schedule,
                           warmup_frac=warmup)
        path = warm_start(model_dir, out, _endpoints(endpoints), None, episodes, seed,
                          difficulties=[d.strip() for d in difficulties.split(",") if d.strip()], split=split,
                          match=match, exclude=read_task_ids(exclude_tasks) if exclude_tasks else (),
                          interface=parse_interface(interface), max_turns=max_turns, config=config,
                          on_epoch=lambda epoch, loss: click.echo(f"epoch {epoch:3d}  loss {loss:.4f}"))
    except (ValueError, OSError, EnvCallError) as err:
        raise click.ClickException(str(err).splitlines()[0] if str(err) else repr(err)) from None
    summary = json.loads((path / "shiftgym_warm_start.json").read_text())
    click.echo(f"wrote {path}: {summary['demonstrations']} oracle episodes, loss {summary['losses'][-1]:.4f}")
