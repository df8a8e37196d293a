"""A typed config -> OpenRLHF `train_sft` argv: the supervised warm start a GPU plan may run before its RL launch.

Trains on the oracle chat JSONL of trainer/bc_dataset.py in OpenRLHF's multi-turn format (loss on the assistant
turns only); `then(launch)` points an RL `LaunchConfig` at the SFT output. tests/trainer/test_bc_dataset.py checks
the argv against the pinned OpenRLHF's own parser. No GPU package is imported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trainer.launch import LaunchConfig


class SFTLaunchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pretrain: str = "Qwen/Qwen2.5-3B-Instruct"
    dataset: str  # JSONL from `shiftgym bc-data`
    output_dir: str = "/checkpoints/shiftgym/sft"
    max_len: int = Field(8192, gt=0)  # tokens of a whole episode, as the RL launch's max_len
    max_epochs: int = Field(1, ge=1)
    learning_rate: float = Field(5e-6, gt=0)
    lr_warmup_ratio: float = 0.03
    train_batch_size: int = Field(64, ge=1)
    micro_train_batch_size: int = Field(1, ge=1)
    max_samples: int | None = None
    zero_stage: Literal[0, 1, 2, 3] = 2
    gradient_checkpointing: bool = True
    packing_samples: bool = True
    seed: int = 42
    extra_args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """The arguments after `python -m openrlhf.cli.train_sft` (or `deepspeed --module openrlhf.cli.train_sft`)."""
        args = [
            "--model.model_name_or_path", self.pretrain,
            "--data.dataset", self.dataset,
            "--data.input_key", "messages", "--data.apply_chat_template", "--data.multiturn",
            "--data.max_len", str(self.max_len),
            "--train.max_epochs", str(self.max_epochs),
            "--train.batch_size", str(self.train_batch_size),
            "--train.micro_batch_size", str(self.micro_train_batch_size),
            "--train.seed", str(self.seed),
            "--adam.lr", str(self.learning_rate), "--lr_warmup_ratio", str(self.lr_warmup_ratio),
            "--ds.zero_stage", str(self.zero_stage), "--ds.param_dtype", "bf16",
            "--ckpt.output_dir", self.output_dir, "--ckpt.save_hf",
        ]
        if self.gradient_checkpointing:
            args.append("--model.gradient_checkpointing_enable")
        if self.packing_samples:
            args.append("--ds.packing_samples")
        if self.max_samples is not None:
            args += ["--data.max_samples", str(self.max_samples)]
        return args + list(self.extra_args)

    def command(self, python: str = "python3") -> list[str]:
        return [python, "-m", "openrlhf.cli.train_sft", *self.argv()]

    def then(self, launch: LaunchConfig) -> LaunchConfig:
        """The RL launch, starting from this warm start's output."""
        return launch.model_copy(update={"pretrain": self.output_dir})
