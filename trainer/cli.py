"""`shiftgym`: the trainer side's commands. Each lives in its own module; this file only gathers them."""

from __future__ import annotations

import click

from trainer.bc_dataset import bc_data_command
from trainer.datasets import main as dataset_command
from trainer.grid.cli import register as register_grid_commands
from trainer.rl.sft import warm_start_command
from trainer.rl.train_command import train_command
from trainer.tiny import tiny_model_command


@click.group()
def main() -> None:
    """ShiftGym: train and evaluate LLM agents on text environments served over gRPC."""


main.add_command(tiny_model_command)
main.add_command(train_command)
main.add_command(dataset_command, name="dataset")
main.add_command(bc_data_command)
main.add_command(warm_start_command)
register_grid_commands(main)  # shiftgym grid run|show|emit, shiftgym report

if __name__ == "__main__":
    main()
