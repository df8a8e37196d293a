"""`shiftgym`: the trainer side's commands. Each lives in its own module; this file only gathers them."""

from __future__ import annotations

import click

from trainer.datasets import main as dataset_command
from trainer.rl.train_command import train_command
from trainer.tiny import tiny_model_command


@click.group()
def main() -> None:
    """ShiftGym: train and evaluate LLM agents on text environments served over gRPC."""


main.add_command(tiny_model_command)
main.add_command(train_command)
main.add_command(dataset_command, name="dataset")

if __name__ == "__main__":
    main()
