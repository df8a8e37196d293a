"""The grid spec: what to train and what to evaluate, as YAML validated into typed models.

Every model forbids unknown fields; `load_spec` turns a validation failure into `SpecError`, one line per problem,
each naming the field (`axes.sequential.orders.1`) and what is allowed there. trainer/grid/expand.py turns a spec
into training stages and evaluation cells; trainer/grid/presets.py holds `smoke` and `paper`.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from env_server.adapters.presets import PRESETS
from trainer.grid.spec_errors import describe_errors

ENVS = ("babyai", "textcraft", "alfworld", "webshop", "searchqa")
# Held-out evaluation split per environment (ALFWorld has no `test`: its unseen floor plans are the held-out set).
DEFAULT_TEST_SPLIT = {"alfworld": "valid_unseen"}
INTERFACES = tuple(PRESETS)
Regime = Literal["easy", "hard", "mixed", "easy_then_hard"]


class SpecError(ValueError):
    """A bad grid spec; the message has one line per problem, naming the field and what is allowed."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(kind: str, values: list[str], allowed: typing.Iterable[str]) -> list[str]:
    allowed = tuple(allowed)
    for value in values:
        if value not in allowed:
            raise ValueError(f"unknown {kind} {value!r} (allowed: {', '.join(allowed)})")
    return values


class EnvSettings(Strict):
    max_turns: int | None = Field(None, ge=1, description="turn limit (default: the environment's own)")
    train_split: str = "train"
    test_split: str | None = None  # default: test (ALFWorld: valid_unseen)


class PolicySpec(Strict):
    kind: Literal["tiny", "pretrained", "oracle", "random"]
    model: str | None = None  # pretrained: a Hugging Face id or a model directory
    size: Literal["tiny", "small"] = "tiny"  # tiny: trainer/tiny.py's sizes
    vocab_size: int = Field(2048, ge=300)
    corpus_episodes: int = Field(24, ge=1)  # tiny: oracle episodes per env the tokenizer is trained on
    seed: int = 0
    mode: Literal["choice", "free"] = "choice"  # LM policies: choose among valid actions, or generate
    temperature: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _model_only_when_pretrained(self) -> "PolicySpec":
        if self.kind == "pretrained" and not self.model:
            raise ValueError("a pretrained policy needs `model` (a Hugging Face id or a directory)")
        if self.kind != "pretrained" and self.model:
            raise ValueError(f"`model` is only for kind pretrained, not {self.kind}")
        return self

    @property
    def trainable(self) -> bool:
        return self.kind in ("tiny", "pretrained")


class WarmStart(Strict):
    """Behaviour cloning on oracle episodes before the RL stages (trainer/rl/sft.py, issue 11)."""

    envs: list[str] = Field(min_length=1)
    episodes: int = Field(ge=1)  # oracle episodes per environment, from the train split
    difficulties: list[str] = Field(default_factory=lambda: ["easy"], min_length=1)
    epochs: int = Field(8, ge=1)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(16, ge=1)  # episodes per optimizer step

    check_envs = field_validator("envs")(lambda cls, v: _known("env", v, ENVS))


class Stage(Strict):
    """One training stage: GRPO on the train split of one env, or of several at once (a mixture)."""

    envs: list[str] = Field(min_length=1)
    difficulty: str = "easy"  # a difficulty, or `mixed` (training.mixed_difficulties together)
    interface: str = "original"
    steps: int | None = Field(None, ge=1)  # default: training.steps per env in the stage

    check_envs = field_validator("envs")(lambda cls, v: _known("env", v, ENVS))
    check_interface = field_validator("interface")(lambda cls, v: _known("interface", [v], INTERFACES)[0])


class TrainingPlan(Strict):
    """A policy trained through stages in order; evaluated after the last on every env (evaluation.difficulties)."""

    name: str = Field(min_length=1)
    policy: str
    warm_start: WarmStart | None = None
    stages: list[Stage] = Field(min_length=1)


class Budget(Strict):
    turn_tokens: int = Field(32, ge=1)  # tokens one turn may sample
    trajectory_tokens: int = Field(3072, ge=2)  # tokens a whole trajectory may hold

    @model_validator(mode="after")
    def _nested(self) -> "Budget":
        if self.turn_tokens >= self.trajectory_tokens:
            raise ValueError("turn_tokens must be smaller than trajectory_tokens")
        return self


class TrainingSettings(Strict):
    steps: int = Field(4, ge=1)  # GRPO steps per stage and env
    tasks_per_step: int = Field(8, ge=1)
    group_size: int = Field(8, ge=2)  # rollouts per task
    lr: float = Field(2e-3, gt=0)
    kl_coef: float = Field(0.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    seed: int = 0
    mixed_difficulties: list[str] = Field(default_factory=lambda: ["easy", "hard"], min_length=2)
    warm_start: WarmStart | None = None  # begins every plan the axes generate
    launch: dict[str, Any] = Field(default_factory=dict)  # trainer.launch.LaunchConfig fields for GPU runs

    @field_validator("launch")
    @classmethod
    def _launch_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        from trainer.launch import LaunchConfig

        owned = {"pretrain", "prompt_dataset", "eval_dataset", "agent", "output_dir", "n_samples_per_prompt",
                 "actor_learning_rate", "kl_coef", "max_len", "turn_tokens", "rollout_batch_size", "train_batch_size",
                 "temperature", "eval_n_samples_per_prompt", "seed"}
        bad = sorted(set(value) - (set(LaunchConfig.model_fields) - owned))
        if bad:
            raise ValueError(f"unknown or grid-owned launch field(s) {', '.join(bad)} (allowed: "
                             f"{', '.join(sorted(set(LaunchConfig.model_fields) - owned))})")
        return value


class EvaluationSettings(Strict):
    tasks: int = Field(8, ge=1)  # held-out tasks per cell, the same sample for every policy
    k: int = Field(8, ge=1)  # samples per task: avg@k, pass@k
    seed: int = 0  # draws the tasks and seeds the samples
    difficulties: list[str] = Field(default_factory=lambda: ["easy", "hard"], min_length=1)
    # The report's Signal section (each trained policy before RL against random, on the first difficulty) on
    # this many tasks per env, in cells of its own: a few tasks per cell cannot tell 25% from 6%. 0: it reads the
    # reference rows.
    signal_tasks: int = Field(0, ge=0)


class DifficultyAxis(Strict):
    """A1: train easy / hard / mixed / easy-then-hard, test every difficulty listed, per env."""

    envs: list[str] = Field(min_length=1)
    regimes: list[Regime] = Field(default_factory=lambda: ["easy", "hard", "mixed", "easy_then_hard"], min_length=1)
    test: list[str] = Field(default_factory=lambda: ["easy", "hard"], min_length=1)

    check_envs = field_validator("envs")(lambda cls, v: _known("env", v, ENVS))


class CrossEnvAxis(Strict):
    """A2: train on each env, test zero-shot on all: the transfer matrix."""

    train: list[str] = Field(min_length=1)
    test: list[str] | None = None  # default: every env of the spec
    difficulty: str = "easy"

    check_envs = field_validator("train", "test")(lambda cls, v: v if v is None else _known("env", v, ENVS))


class SequentialAxis(Strict):
    """A3: envs trained one after another, evaluated after every stage; a mixture of the same data beside each."""

    orders: list[list[str]] = Field(min_length=1)
    mixture: bool = True
    difficulty: str = "easy"

    @field_validator("orders")
    @classmethod
    def _orders(cls, orders: list[list[str]]) -> list[list[str]]:
        for order in orders:
            _known("env", order, ENVS)
            if len(order) < 2 or len(set(order)) != len(order):
                raise ValueError(f"an order needs two or more distinct envs, got {order}")
        return orders


class InterfaceAxis(Strict):
    """A4: train on one interface preset, test on every other preset of the same env (and the lexicon shift)."""

    envs: list[str] = Field(min_length=1)
    train: str = "original"
    test: list[str] | Literal["all"] = "all"
    lexicon: bool = True  # test under the lexicon shift too
    difficulty: str = "easy"

    check_envs = field_validator("envs")(lambda cls, v: _known("env", v, ENVS))
    check_train = field_validator("train")(lambda cls, v: _known("interface", [v], INTERFACES)[0])

    @field_validator("test")
    @classmethod
    def _test(cls, value: Any) -> Any:
        return value if value == "all" else _known("interface", value, INTERFACES)

    def test_interfaces(self) -> list[str]:
        chosen = list(INTERFACES) if self.test == "all" else list(self.test)
        if self.lexicon and "lexicon" not in chosen:
            chosen.append("lexicon")
        return [self.train] + [i for i in chosen if i != self.train]


class Axes(Strict):
    difficulty: DifficultyAxis | None = None
    cross_env: CrossEnvAxis | None = None
    sequential: SequentialAxis | None = None
    interface: InterfaceAxis | None = None


class GridSpec(Strict):
    name: str = Field(min_length=1)
    envs: dict[str, EnvSettings] = Field(min_length=1)
    policies: dict[str, PolicySpec] = Field(min_length=1)
    trained: list[str] | None = None  # policies the axes train (default: every trainable one)
    baselines: list[str] | None = None  # reference rows on every env and difficulty (default: every policy)
    budget: Budget = Budget()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    axes: Axes = Axes()
    plans: list[TrainingPlan] = Field(default_factory=list)

    @field_validator("envs")
    @classmethod
    def _env_names(cls, envs: dict[str, EnvSettings]) -> dict[str, EnvSettings]:
        _known("env", list(envs), ENVS)
        return envs

    @model_validator(mode="after")
    def _references(self) -> "GridSpec":
        problems = []
        envs = set(self.envs)

        def need_envs(where: str, names: typing.Iterable[str]) -> None:
            missing = [n for n in names if n not in envs]
            if missing:
                problems.append(f"{where}: env(s) {', '.join(missing)} not in `envs` (declared: "
                                f"{', '.join(self.envs)})")

        def need_policy(where: str, name: str, trainable: bool = False) -> None:
            if name not in self.policies:
                problems.append(f"{where}: unknown policy {name!r} (declared: {', '.join(self.policies)})")
            elif trainable and not self.policies[name].trainable:
                problems.append(f"{where}: policy {name!r} is {self.policies[name].kind}, which cannot be trained "
                                f"(trainable kinds: tiny, pretrained)")

        for i, name in enumerate(self.trained or []):
            need_policy(f"trained.{i}", name, trainable=True)
        for i, name in enumerate(self.baselines or []):
            need_policy(f"baselines.{i}", name)
        axes = self.axes
        if axes.difficulty:
            need_envs("axes.difficulty.envs", axes.difficulty.envs)
        if axes.cross_env:
            need_envs("axes.cross_env.train", axes.cross_env.train)
            need_envs("axes.cross_env.test", axes.cross_env.test or [])
        if axes.sequential:
            for i, order in enumerate(axes.sequential.orders):
                need_envs(f"axes.sequential.orders.{i}", order)
        if axes.interface:
            need_envs("axes.interface.envs", axes.interface.envs)
        if self.training.warm_start:
            need_envs("training.warm_start.envs", self.training.warm_start.envs)
        for i, plan in enumerate(self.plans):
            need_policy(f"plans.{i}.policy", plan.policy, trainable=True)
            for j, stage in enumerate(plan.stages):
                need_envs(f"plans.{i}.stages.{j}.envs", stage.envs)
            if plan.warm_start:
                need_envs(f"plans.{i}.warm_start.envs", plan.warm_start.envs)
        wants_training = any((axes.difficulty, axes.cross_env, axes.sequential, axes.interface, self.plans))
        if wants_training and not self.trained_policies:
            problems.append("trained: the axes need at least one trainable policy (kind tiny or pretrained)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def trained_policies(self) -> list[str]:
        if self.trained is not None:
            return list(self.trained)
        return [n for n, p in self.policies.items() if p.trainable]

    @property
    def baseline_policies(self) -> list[str]:
        return list(self.baselines) if self.baselines is not None else list(self.policies)

    def test_split(self, env: str) -> str:
        return self.envs[env].test_split or DEFAULT_TEST_SPLIT.get(env, "test")


def parse_spec(data: Any) -> GridSpec:
    if not isinstance(data, dict):
        raise SpecError(f"(spec): a grid spec is a mapping of fields, got {type(data).__name__}")
    try:
        return GridSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe_errors(err, GridSpec)) from None


def load_spec(path: str | Path) -> GridSpec:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    return parse_spec(data)


def dump_spec(spec: GridSpec) -> str:
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False, width=120)
