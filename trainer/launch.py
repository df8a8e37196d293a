"""A typed launch config -> OpenRLHF `train_ppo_ray` argv, plus the environment the agent executor reads.

`LaunchConfig.argv()` is what follows `python -m openrlhf.cli.train_ppo_ray` (a Job's or RayJob's entrypoint) and
`LaunchConfig.environ()` the variables for that Job's pods (env endpoints, interface, shaping, turn budget), read
back by `AgentSettings.from_environ` inside trainer/openrlhf_agent.py. Defaults follow the study: Qwen2.5-3B-Instruct,
GRPO (`group_norm`) with 8 samples per prompt, 8192-token trajectories, the environments' own turn limits.
tests/trainer/test_launch.py checks every generated flag against the pinned OpenRLHF's own parser.
No GPU package is imported here.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer.datasets import Interface, interface_json, parse_interface
from trainer.shaping import Shaping

log = logging.getLogger(__name__)

PREFIX = "SHIFTGYM_"
ENDPOINTS_PREFIX = PREFIX + "ENDPOINTS_"  # SHIFTGYM_ENDPOINTS_BABYAI=host:port,host:port | dns:///name:port
MAX_TURNS_PREFIX = PREFIX + "MAX_TURNS_"  # SHIFTGYM_MAX_TURNS_BABYAI=20
SHAPING_PREFIX = PREFIX + "SHAPING_"  # Shaping.from_env's variables
# The pod's, read by the executor's metrics endpoint (trainer/client/metrics_endpoint.py), not a launch setting.
METRICS_VARIABLES = frozenset({PREFIX + "METRICS_PORT", PREFIX + "METRICS_HOST"})
AGENT_FILE = Path(__file__).with_name("openrlhf_agent.py")
# The study's turn limits (AgentGym's): each environment server's default, stated here so a run records them.
STUDY_MAX_TURNS = {"babyai": 20, "textcraft": 30, "alfworld": 30, "webshop": 10, "searchqa": 5}
Mode = Literal["free", "choice"]


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the agent executor needs besides what OpenRLHF passes to execute(); one environment variable each."""

    endpoints: Mapping[str, str]  # env -> endpoints, as trainer/client/endpoints.py takes them
    max_turns: Mapping[str, int] = field(default_factory=dict)  # env -> turn limit (absent: the env's default)
    interface: Interface | None = None  # for labels that name none
    mode: Mode = "free"
    turn_tokens: int = 0  # tokens one turn may sample; 0: OpenRLHF's max_tokens (--rollout.max_new_tokens)
    system_prompt: str = ""
    shaping: Shaping = Shaping()
    sample_seed: int = 0  # seeds the executor's per-episode sampling seeds
    call_timeout_s: float = 30.0
    turn_timeout_s: float = 120.0
    episode_timeout_s: float = 1800.0
    max_episodes: int = 512  # open episodes per environment and process
    episode_attempts: int = 2  # plays of an episode whose pod was lost, counting the first

    _SCALARS = {  # variable suffix -> (field, parser)
        "INTERFACE": ("interface", parse_interface),
        "POLICY_MODE": ("mode", str),
        "TURN_TOKENS": ("turn_tokens", int),
        "SYSTEM_PROMPT": ("system_prompt", str),
        "SAMPLE_SEED": ("sample_seed", int),
        "CALL_TIMEOUT_S": ("call_timeout_s", float),
        "TURN_TIMEOUT_S": ("turn_timeout_s", float),
        "EPISODE_TIMEOUT_S": ("episode_timeout_s", float),
        "MAX_EPISODES": ("max_episodes", int),
        "EPISODE_ATTEMPTS": ("episode_attempts", int),
    }

    def __post_init__(self) -> None:
        if self.mode not in ("free", "choice"):
            raise ValueError(f"{PREFIX}POLICY_MODE={self.mode!r}: use free or choice")
        if self.turn_tokens < 0 or self.max_episodes < 1 or self.episode_attempts < 1:
            raise ValueError(f"need turn_tokens >= 0, max_episodes >= 1, episode_attempts >= 1; got {self}")
        if not 0 < self.call_timeout_s < self.turn_timeout_s < self.episode_timeout_s:
            raise ValueError("timeouts must nest: 0 < call_timeout_s < turn_timeout_s < episode_timeout_s")
        for env, turns in self.max_turns.items():
            if turns < 1:
                raise ValueError(f"{MAX_TURNS_PREFIX}{env.upper()}={turns}: a turn limit must be >= 1")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "AgentSettings":
        """Read the settings; raises ValueError naming the variable that is wrong. Unknown SHIFTGYM_ variables are
        logged (they may belong to another part of the system)."""
        values: dict[str, Any] = {"endpoints": {}, "max_turns": {}}
        known_shaping = {SHAPING_PREFIX + f.name.upper() for f in fields(Shaping)}
        for name, raw in sorted(environ.items()):
            if not name.startswith(PREFIX):
                continue
            suffix = name[len(PREFIX):]
            try:
                if name.startswith(ENDPOINTS_PREFIX) and raw.strip():
                    values["endpoints"][name[len(ENDPOINTS_PREFIX):].lower()] = raw.strip()
                elif name.startswith(MAX_TURNS_PREFIX):
                    values["max_turns"][name[len(MAX_TURNS_PREFIX):].lower()] = int(raw)
                elif suffix in cls._SCALARS:
                    attr, parse = cls._SCALARS[suffix]
                    values[attr] = parse(raw)
                elif name not in known_shaping and name not in METRICS_VARIABLES:
                    log.warning("ignoring unknown variable %s", name)
            except ValueError as err:
                raise ValueError(f"{name}={raw!r}: {err}") from None
        return cls(shaping=Shaping.from_env(dict(environ), SHAPING_PREFIX), **values)

    def to_environ(self) -> dict[str, str]:
        out = {ENDPOINTS_PREFIX + env.upper(): targets for env, targets in sorted(self.endpoints.items())}
        out.update({MAX_TURNS_PREFIX + env.upper(): str(turns) for env, turns in sorted(self.max_turns.items())})
        for suffix, (attr, _) in self._SCALARS.items():
            value = getattr(self, attr)
            if attr == "interface":
                if value is not None:
                    out[PREFIX + suffix] = _json(interface_json(value))
            else:
                out[PREFIX + suffix] = str(value)
        out.update({SHAPING_PREFIX + f.name.upper(): repr(float(getattr(self.shaping, f.name)))
                    for f in fields(Shaping)})
        return out


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class AgentConfig(BaseModel):
    """The executor's settings as a launch config spells them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: dict[str, str] = Field(min_length=1)  # env -> "host:port,host:port" or "dns:///svc.ns:port"
    max_turns: dict[str, int] = Field(default_factory=lambda: dict(STUDY_MAX_TURNS))
    interface: str | list[dict[str, Any]] | None = None  # preset name or adapters, for labels that name none
    mode: Mode = "free"
    system_prompt: str = ""
    success_weight: float = 1.0  # Shaping's weights; the study rewards success alone
    score_weight: float = 0.0
    step_cost: float = 0.0
    invalid_penalty: float = 0.0
    truncation_penalty: float = 0.0
    sample_seed: int = 0
    call_timeout_s: float = 30.0
    turn_timeout_s: float = 120.0
    episode_timeout_s: float = 1800.0
    max_episodes: int = 512
    episode_attempts: int = 2

    def settings(self, turn_tokens: int) -> AgentSettings:
        envs = set(self.endpoints)
        return AgentSettings(
            endpoints=dict(self.endpoints), max_turns={e: t for e, t in self.max_turns.items() if e in envs},
            interface=None if self.interface is None else parse_interface(self.interface), mode=self.mode,
            turn_tokens=turn_tokens, system_prompt=self.system_prompt,
            shaping=Shaping(self.success_weight, self.score_weight, self.step_cost, self.invalid_penalty,
                            self.truncation_penalty),
            sample_seed=self.sample_seed, call_timeout_s=self.call_timeout_s, turn_timeout_s=self.turn_timeout_s,
            episode_timeout_s=self.episode_timeout_s, max_episodes=self.max_episodes,
            episode_attempts=self.episode_attempts,
        )


class LaunchConfig(BaseModel):
    """One `train_ppo_ray` run of ShiftGym's agent: model, data, GRPO settings and GPUs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pretrain: str = "Qwen/Qwen2.5-3B-Instruct"
    prompt_dataset: str  # JSONL from trainer/datasets.py
    eval_dataset: str | None = None
    agent: AgentConfig
    agent_path: str = str(AGENT_FILE)  # where the executor file is on the Ray workers
    output_dir: str = "/checkpoints/shiftgym/final"
    ckpt_path: str = "/checkpoints/shiftgym/ckpt"
    save_steps: int = -1
    eval_steps: int = -1
    logging_steps: int = 1
    tensorboard_dir: str | None = None
    seed: int = 42
    # GRPO
    advantage_estimator: Literal["group_norm", "dr_grpo", "rloo", "reinforce_baseline"] = "group_norm"
    n_samples_per_prompt: int = Field(8, ge=2)
    actor_learning_rate: float = Field(1e-6, gt=0)
    lr_warmup_ratio: float = 0.0
    kl_coef: float = Field(1e-3, ge=0)  # as a k3 loss term; 0 drops the reference model
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    eps_clip: float = 0.2
    entropy_coef: float | None = None
    temperature: float = 1.0  # 1 with top_p 1: vLLM's log-probs are then those of the distribution sampled
    top_p: float = 1.0
    max_len: int = 8192  # tokens of a whole trajectory
    turn_tokens: int = 512  # tokens one turn may sample
    rollout_batch_size: int = 32  # prompts per rollout
    train_batch_size: int = 256  # samples per optimizer step: 32 x 8 is one on-policy step per rollout
    micro_train_batch_size: int = 1
    micro_rollout_batch_size: int = 2
    max_epochs: int = 1
    num_episodes: int = 1  # passes over the prompt dataset
    max_samples: int | None = None
    eval_n_samples_per_prompt: int = 8  # avg@8
    eval_temperature: float = 1.0
    # GPUs (one node of 8 by default, everything colocated: vLLM sleeps while DeepSpeed trains)
    num_nodes: int = 1
    gpus_per_node: int = 8
    vllm_num_engines: int = 8
    vllm_tensor_parallel_size: int = 1
    vllm_gpu_memory_utilization: float = 0.5
    colocate_all: bool = True
    zero_stage: Literal[0, 1, 2, 3] = 3
    gradient_checkpointing: bool = True
    packing_samples: bool = True
    extra_args: tuple[str, ...] = ()  # passed through after the generated flags

    @model_validator(mode="after")
    def _consistent(self) -> "LaunchConfig":
        if not 0 < self.turn_tokens < self.max_len:
            raise ValueError(f"need 0 < turn_tokens < max_len, got {self.turn_tokens} and {self.max_len}")
        if (self.rollout_batch_size * self.n_samples_per_prompt) % self.train_batch_size:
            raise ValueError("train_batch_size must divide rollout_batch_size * n_samples_per_prompt")
        if self.agent.mode == "choice" and (self.temperature, self.eval_temperature, self.top_p) != (1.0, 1.0, 1.0):
            raise ValueError("choice mode scores actions with vLLM's prompt log-probs, which are at temperature 1: "
                             "keep temperature, eval_temperature and top_p at 1")
        gpus = self.num_nodes * self.gpus_per_node
        if self.n_samples_per_prompt * self.rollout_batch_size // self.micro_rollout_batch_size < gpus:
            raise ValueError(f"rollout_batch_size * n_samples_per_prompt / micro_rollout_batch_size must give at "
                             f"least one micro-batch per GPU ({gpus})")
        if self.colocate_all and self.vllm_num_engines * self.vllm_tensor_parallel_size != gpus:
            raise ValueError(f"colocate_all needs vllm_num_engines * vllm_tensor_parallel_size == {gpus} GPUs")
        return self

    def argv(self) -> list[str]:
        """The arguments after `python -m openrlhf.cli.train_ppo_ray`."""
        nodes, gpus = str(self.num_nodes), str(self.gpus_per_node)
        args: list[str | tuple[str, ...]] = [
            ("--actor.model_name_or_path", self.pretrain),
            ("--actor.num_nodes", nodes), ("--actor.num_gpus_per_node", gpus),
            ("--vllm.num_engines", str(self.vllm_num_engines)),
            ("--vllm.tensor_parallel_size", str(self.vllm_tensor_parallel_size)),
            ("--vllm.gpu_memory_utilization", str(self.vllm_gpu_memory_utilization)),
            "--vllm.enable_prefix_caching",
            ("--train.agent_func_path", self.agent_path),
            ("--data.prompt_dataset", self.prompt_dataset),
            ("--data.input_key", "prompt"), ("--data.label_key", "label"),
            ("--data.max_len", str(self.max_len)),
            ("--rollout.max_new_tokens", str(self.turn_tokens)),
            ("--rollout.n_samples_per_prompt", str(self.n_samples_per_prompt)),
            ("--rollout.batch_size", str(self.rollout_batch_size)),
            ("--rollout.micro_batch_size", str(self.micro_rollout_batch_size)),
            ("--rollout.temperature", str(self.temperature)), ("--rollout.top_p", str(self.top_p)),
            ("--train.batch_size", str(self.train_batch_size)),
            ("--train.micro_batch_size", str(self.micro_train_batch_size)),
            ("--train.max_epochs", str(self.max_epochs)), ("--train.num_episodes", str(self.num_episodes)),
            ("--train.seed", str(self.seed)),
            ("--algo.advantage.estimator", self.advantage_estimator),
            ("--actor.adam.lr", str(self.actor_learning_rate)),
            ("--actor.lr_warmup_ratio", str(self.lr_warmup_ratio)),
            ("--actor.eps_clip", str(self.eps_clip)),
            ("--algo.kl.init_coef", str(self.kl_coef)),
            ("--ds.zero_stage", str(self.zero_stage)), ("--ds.param_dtype", "bf16"),
            ("--ckpt.output_dir", self.output_dir), ("--ckpt.path", self.ckpt_path), "--ckpt.save_hf",
            ("--ckpt.save_steps", str(self.save_steps)), ("--logger.logging_steps", str(self.logging_steps)),
        ]
        if self.kl_coef > 0:
            args += ["--algo.kl.use_loss", ("--algo.kl.estimator", self.kl_estimator),
                     ("--ref.num_nodes", nodes), ("--ref.num_gpus_per_node", gpus)]
        if self.entropy_coef is not None:
            args.append(("--actor.entropy_coef", str(self.entropy_coef)))
        if self.colocate_all:
            args += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
        if self.gradient_checkpointing:
            args.append("--actor.gradient_checkpointing_enable")
        if self.packing_samples:
            args.append("--ds.packing_samples")
        if self.max_samples is not None:
            args.append(("--data.max_samples", str(self.max_samples)))
        if self.eval_dataset:
            args += [("--eval.dataset", self.eval_dataset), ("--eval.steps", str(self.eval_steps)),
                     ("--eval.n_samples_per_prompt", str(self.eval_n_samples_per_prompt)),
                     ("--eval.temperature", str(self.eval_temperature))]
        if self.tensorboard_dir:
            args.append(("--logger.tensorboard_dir", self.tensorboard_dir))
        flat = [part for arg in args for part in ((arg,) if isinstance(arg, str) else arg)]
        return flat + list(self.extra_args)

    def command(self, python: str = "python3") -> list[str]:
        return [python, "-m", "openrlhf.cli.train_ppo_ray", *self.argv()]

    def settings(self) -> AgentSettings:
        return self.agent.settings(self.turn_tokens)

    def environ(self) -> dict[str, str]:
        """Variables for the Job's pods: the executor's settings (read in every vLLM actor)."""
        return self.settings().to_environ()


def flags(argv: list[str]) -> list[str]:
    """The option names in an argv (`--x.y` tokens)."""
    return [a for a in argv if a.startswith("--")]


def load_config(path: str | Path) -> LaunchConfig:
    """A LaunchConfig from a JSON file, or a YAML one (needs pyyaml)."""
    text = Path(path).read_text()
    if Path(path).suffix == ".json":
        return LaunchConfig.model_validate_json(text)
    import yaml

    return LaunchConfig.model_validate(yaml.safe_load(text))


if __name__ == "__main__":  # print the command and environment of a config file: python -m trainer.launch run.yaml
    if len(sys.argv) != 2:
        sys.exit("usage: python -m trainer.launch CONFIG.yaml")
    try:
        config = load_config(sys.argv[1])
    except ValidationError as err:
        sys.exit("error: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()))
    except (OSError, ValueError) as err:
        sys.exit(f"error: {err}")
    import shlex

    for name, value in config.environ().items():
        print(f"export {name}={shlex.quote(value)}")
    print(shlex.join(config.command()))
