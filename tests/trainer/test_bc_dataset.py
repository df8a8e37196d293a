"""Oracle demonstration datasets: `shiftgym bc-data` against a real BabyAI server writes JSONL that OpenRLHF's own
SFTDataset loads on CPU with the RL path's tokens and mask, warm-start tasks never overlap held-out ones, bad input
is a one-line error, and the SFT launch passes the pinned `train_sft` parser."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from env_server import registry
from env_server.runtime import Limits
from env_server.types import TaskInfo
from tests.servers import ServerThread
from tests.trainer import openrlhf_code
from trainer.bc_dataset import check_disjoint, choose_tasks, pick_tasks, read_task_ids, tasks_path
from trainer.cli import main as cli
from trainer.launch import LaunchConfig, AgentConfig
from trainer.sft_launch import SFTLaunchConfig

LEVEL = "GoToLocal"


@pytest.fixture(scope="module")
def server():
    with ServerThread("babyai", Limits(enable_oracle=True)) as running:
        yield running


@pytest.fixture(scope="module")
def dataset_file(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("bc") / "babyai.jsonl"
    result = CliRunner().invoke(cli, ["bc-data", str(out), "--env", "babyai", "--endpoint", server.target,
                                      "--episodes", "6", "--match", LEVEL, "--max-turns", "10", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("wrote 6 oracle episodes")
    return out


def _sft_dataset(path, tokenizer):
    from datasets import load_dataset
    from openrlhf.datasets import SFTDataset

    # The flags SFTLaunchConfig passes, as train_sft's parser hands them to SFTDataset through strategy.args.
    data = SimpleNamespace(input_key="messages", output_key=None, apply_chat_template=True,
                           tokenizer_chat_template=None)
    strategy = SimpleNamespace(args=SimpleNamespace(data=data))
    rows = load_dataset("json", data_files=str(path), split="train")
    return SFTDataset(rows, tokenizer, 2048, strategy, input_template=None, num_processors=1, multiturn=True)


def test_records_are_chat_episodes_of_train_tasks_with_their_ids(dataset_file):
    records = [json.loads(line) for line in dataset_file.read_text().splitlines()]
    assert len(records) == 6
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant" and roles[::2] == ["user"] * record["turns"]
        assert record["split"] == "train" and LEVEL in record["task_id"] and record["interface"] == "original"
        assert record["messages"][0]["content"].startswith("Your mission: go to")
    assert read_task_ids(tasks_path(dataset_file)) == {r["task_id"] for r in records}


def test_openrlhf_sft_dataset_loads_the_file_with_the_rl_tokens_and_mask(dataset_file, server, tiny_model_dir):
    import asyncio

    from transformers import AutoTokenizer

    from trainer.client.pool import EnvPool
    from trainer.rl.sft import oracle_demonstrations

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    dataset = _sft_dataset(dataset_file, tokenizer)
    records = [json.loads(line) for line in dataset_file.read_text().splitlines()]
    assert len(dataset) == len(records)
    listed = {t.task_id: t for t in registry.load("babyai").tasks("train", "easy")}

    async def teacher():
        async with EnvPool([server.target], env="babyai") as pool:
            return await oracle_demonstrations(pool, "babyai", [(listed[r["task_id"]], 0) for r in records],
                                               tokenizer, max_turns=10)

    demos, lost = asyncio.run(teacher())
    assert not lost
    for index, demo in enumerate(demos):
        input_ids, _, loss_mask = dataset[index]
        # OpenRLHF tokenizes the same ids the RL path assembles for the same episode...
        assert input_ids[0].tolist() == list(demo.trajectory.token_ids)
        # ...and trains on each assistant turn (OpenRLHF's mask is shifted: index t-1 marks token t), which is
        # the RL action mask, plus the newline the chat template puts after each but the last <|im_end|>.
        width = len(demo.trajectory.token_ids)
        trained = [i + 1 for i, m in enumerate(loss_mask[0].tolist()) if m and i + 1 < width]  # last: no label
        actions = [i for start, end in demo.trajectory.action_ranges for i in range(start, end)]
        extra = sorted(set(trained) - set(actions))
        assert set(actions) <= set(trained) and tokenizer.decode([input_ids[0, i] for i in extra]) == "\n" * len(extra)
        assert len(extra) == len(actions and demo.trajectory.action_ranges) - 1


def _tasks(split: str, count: int) -> list[TaskInfo]:
    return [TaskInfo(f"env/{split}/easy/{kind}-{i:05d}", split, "easy") for kind in ("A", "B") for i in range(count)]


def test_warm_start_and_held_out_tasks_are_disjoint_across_splits():
    env = registry.load("babyai")
    choice = choose_tasks(lambda split: env.tasks(split, "easy"), warm_start=200, held_out=40, seed=0, match=LEVEL)
    assert len(choice.warm_start) == 200 and len(choice.held_out) == 40
    trained, evaluated = {t.task_id for t in choice.warm_start}, {t.task_id for t in choice.held_out}
    assert not trained & evaluated
    assert all("/train/" in t for t in trained) and all("/test/" in t and LEVEL in t for t in evaluated)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_split_is_partitioned_when_warm_start_and_held_out_share_it(seed):
    choice = choose_tasks(lambda split: _tasks(split, 10), warm_start=15, held_out=5, seed=seed, match="/A-",
                          warm_split="train", held_out_split="train")
    trained, evaluated = {t.task_id for t in choice.warm_start}, {t.task_id for t in choice.held_out}
    assert len(evaluated) == 5 and len(trained) == 5 and not trained & evaluated  # 10 A-tasks: 5 left to train on
    assert all("/A-" in t for t in trained | evaluated)


def test_pick_tasks_is_seeded_and_honours_exclusions():
    tasks = _tasks("train", 20)
    assert pick_tasks(tasks, 5, seed=4) == pick_tasks(tasks, 5, seed=4) != pick_tasks(tasks, 5, seed=5)
    excluded = {t.task_id for t in tasks[:30]}
    assert {t.task_id for t in pick_tasks(tasks, 40, seed=0, exclude=excluded)} == {t.task_id for t in tasks[30:]}


def test_overlapping_task_sets_are_refused():
    check_disjoint(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="share b"):
        check_disjoint(["a", "b"], ["b", "c"])


def test_held_out_ids_are_never_recorded(server, tmp_path):
    held_out = tmp_path / "held_out.txt"
    train = [t.task_id for t in registry.load("babyai").tasks("train", "easy") if "GoToLocal-0000" in t.task_id]
    held_out.write_text("\n".join(train[:8]) + "\n")  # GoToLocal-00000..07 of 00000..09
    out = tmp_path / "d.jsonl"
    result = CliRunner().invoke(cli, ["bc-data", str(out), "--env", "babyai", "--endpoint", server.target,
                                      "--episodes", "5", "--match", "GoToLocal-0000", "--exclude-tasks",
                                      str(held_out), "--max-turns", "10"])
    assert result.exit_code == 0, result.output
    assert read_task_ids(tasks_path(out)) == set(train[8:10])  # only two left; repeated with episode seed 1
    assert sorted(json.loads(line)["seed"] for line in out.read_text().splitlines()) == [0, 0, 1, 1, 2]


@pytest.mark.parametrize("args, says", [
    (["--episodes", "0"], "--episodes >= 1"),
    (["--match", "GoTo("], "bad task pattern"),
    (["--match", "NoSuchLevel"], "no task matches 'NoSuchLevel'"),
    (["--difficulty", "impossible"], "impossible"),
    (["--interface", '[{"nam": "x"}]'], "bad adapter"),
    (["--env", "textcraft"], "not 'textcraft'"),
])
def test_bad_input_is_a_one_line_error(server, tmp_path, args, says):
    base = ["bc-data", str(tmp_path / "d.jsonl"), "--env", "babyai", "--endpoint", server.target, "--episodes", "2"]
    result = CliRunner().invoke(cli, base + args)
    assert result.exit_code != 0 and says in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.output


def test_a_server_without_the_oracle_is_a_one_line_error(tmp_path):
    with ServerThread("babyai", Limits(enable_oracle=False)) as plain:
        result = CliRunner().invoke(cli, ["bc-data", str(tmp_path / "d.jsonl"), "--env", "babyai", "--endpoint",
                                          plain.target, "--episodes", "2"])
    assert result.exit_code == 1 and "--enable-oracle" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.output


def _run_train_sft_cli(argv: list[str]):
    """`python -m openrlhf.cli.train_sft ARGV`'s own `__main__` block up to `train(args)`, which is captured."""
    import argparse
    from datetime import datetime

    block = openrlhf_code.main_block("cli/train_sft.py")
    captured: list = []
    scope = {"__name__": "__main__", "argparse": argparse, "datetime": datetime, "train": captured.append}
    out, saved, code = io.StringIO(), sys.argv, 0
    sys.argv = ["train_sft", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(ast.Module(body=block, type_ignores=[]), "train_sft.py", "exec"), scope)  # noqa: S102
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.argv = saved
    return code, out.getvalue(), captured[0] if captured else None


@pytest.mark.parametrize("config", [
    SFTLaunchConfig(dataset="/data/bc.jsonl"),
    SFTLaunchConfig(dataset="/data/bc.jsonl", max_samples=1000, gradient_checkpointing=False, packing_samples=False,
                    extra_args=("--ds.adam_offload",)),
])
def test_train_sft_parses_the_generated_argv(config):
    code, out, args = _run_train_sft_cli(config.argv())
    assert code == 0 and args is not None, out
    assert (args.data.input_key, args.data.output_key) == ("messages", None)
    assert args.data.apply_chat_template and args.data.multiturn
    assert args.model.model_name_or_path == config.pretrain and args.ckpt.output_dir == config.output_dir
    assert args.data.dataset == "/data/bc.jsonl" and args.adam.lr == config.learning_rate and args.ckpt.save_hf


def test_a_bad_sft_argv_is_refused_by_the_real_parser():
    code, _, args = _run_train_sft_cli([*SFTLaunchConfig(dataset="d.jsonl").argv(), "--pretrain", "x"])
    assert code == 2 and args is None


def test_the_rl_launch_starts_from_the_sft_output():
    sft = SFTLaunchConfig(dataset="/data/bc.jsonl", output_dir="/checkpoints/warm")
    rl = sft.then(LaunchConfig(prompt_dataset="/data/p.jsonl", agent=AgentConfig(endpoints={"babyai": "x:1"})))
    assert rl.pretrain == "/checkpoints/warm" and rl.argv()[rl.argv().index("--actor.model_name_or_path") + 1] == \
        "/checkpoints/warm"
