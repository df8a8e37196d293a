"""The launch config against the pinned OpenRLHF's own `train_ppo_ray` command line: its --help, its parser and the
checks its `__main__` runs before training, plus the executor's environment contract."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec

import pytest
from pydantic import ValidationError

from trainer.datasets import parse_interface
from trainer.launch import AGENT_FILE, STUDY_MAX_TURNS, AgentConfig, AgentSettings, LaunchConfig, flags
from trainer.shaping import Shaping

from tests.trainer import openrlhf_code

PINNED = "0.11.2"
AGENT = AgentConfig(endpoints={"babyai": "dns:///babyai.shiftgym.svc.cluster.local:50051",
                               "webshop": "10.0.0.7:50051,10.0.0.8:50051"})
# Every optional branch of argv() switched on, and off.
CONFIGS = {
    "defaults": LaunchConfig(prompt_dataset="/data/babyai_easy.jsonl", agent=AGENT),
    "everything": LaunchConfig(
        prompt_dataset="/data/train.jsonl", eval_dataset="/data/eval.jsonl", agent=AGENT, max_samples=512,
        tensorboard_dir="/logs", entropy_coef=0.001, pretrain="Qwen/Qwen2.5-7B-Instruct",
        extra_args=("--vllm.enforce_eager", "--ckpt.max_num", "2")),
    "bare": LaunchConfig(prompt_dataset="/data/train.jsonl", agent=AGENT, kl_coef=0.0, colocate_all=False,
                         gradient_checkpointing=False, packing_samples=False, vllm_num_engines=2),
}


@pytest.fixture(scope="module")
def help_text() -> str:
    code, out, args = openrlhf_code.run_train_ppo_ray_cli(["--help"])
    assert code == 0 and args is None
    return out


def test_the_pinned_openrlhf_is_installed():
    assert openrlhf_code.version() == PINNED


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_generated_flag_is_in_train_ppo_ray_help(help_text, name):
    known = set(re.findall(r"(?<![\w-])--[A-Za-z_][\w.]*", help_text))
    assert {"--train.agent_func_path", "--algo.advantage.estimator"} <= known  # the help text is the real one
    generated = flags(CONFIGS[name].argv())
    assert generated and not set(generated) - known, sorted(set(generated) - known)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_train_ppo_ray_parses_and_accepts_the_generated_argv(name):
    config = CONFIGS[name]
    code, out, args = openrlhf_code.run_train_ppo_ray_cli(config.argv())
    assert code == 0 and args is not None, out
    assert args.train.agent_func_path == str(AGENT_FILE) and args.reward.remote_url == ["agent"]
    assert args.algo.advantage.estimator == "group_norm" and args.critic.model_name_or_path is None
    assert args.rollout.n_samples_per_prompt == 8 and args.data.max_len == 8192
    assert args.rollout.max_new_tokens == config.turn_tokens == 512
    assert (args.data.input_key, args.data.label_key, args.data.apply_chat_template) == ("prompt", "label", False)
    assert args.actor.adam.lr == 1e-6 and args.rollout.temperature == 1.0
    assert args.algo.kl.use_loss == (config.kl_coef > 0) and args.algo.kl.init_coef == config.kl_coef
    if config.kl_coef:
        assert args.algo.kl.estimator == "k3"
    assert args.train.colocate_all == config.colocate_all == args.vllm.enable_sleep


def test_a_bad_argv_is_refused_by_the_real_parser():
    code, out, args = openrlhf_code.run_train_ppo_ray_cli([*CONFIGS["defaults"].argv(), "--prompt_max_len", "1024"])
    assert code == 2 and args is None  # a flag of older OpenRLHF versions, still in its README


@pytest.mark.skipif(find_spec("vllm") is None or find_spec("ray") is None,
                    reason="the literal `python -m openrlhf.cli.train_ppo_ray --help` imports vllm and ray (GPU image)")
def test_the_literal_help_command_lists_every_generated_flag():
    out = subprocess.run([sys.executable, "-m", "openrlhf.cli.train_ppo_ray", "--help"], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    known = set(re.findall(r"(?<![\w-])--[A-Za-z_][\w.]*", out))
    for config in CONFIGS.values():
        assert not set(flags(config.argv())) - known


def test_environ_is_read_back_by_the_executor_settings():
    config = LaunchConfig(prompt_dataset="p.jsonl", agent=AgentConfig(
        endpoints={"babyai": "127.0.0.1:5001,127.0.0.1:5002"}, interface="listed_actions", mode="choice",
        step_cost=0.01, invalid_penalty=0.05, system_prompt="You are an agent.\nAct.", sample_seed=7),
        turn_tokens=64)
    environ = config.environ()
    assert environ["SHIFTGYM_ENDPOINTS_BABYAI"] == "127.0.0.1:5001,127.0.0.1:5002"
    assert environ["SHIFTGYM_TURN_TOKENS"] == "64" and environ["SHIFTGYM_MAX_TURNS_BABYAI"] == "20"
    assert "SHIFTGYM_MAX_TURNS_WEBSHOP" not in environ  # only the environments with endpoints
    settings = AgentSettings.from_environ({**environ, "PATH": "/usr/bin"})
    assert settings == config.settings()
    assert settings.interface == parse_interface("listed_actions") and settings.max_turns == {"babyai": 20}
    assert settings.shaping == Shaping(step_cost=0.01, invalid_penalty=0.05)


def test_study_defaults():
    config = CONFIGS["defaults"]
    assert config.pretrain == "Qwen/Qwen2.5-3B-Instruct" and config.advantage_estimator == "group_norm"
    assert config.n_samples_per_prompt == 8 and config.max_len == 8192 and config.eval_n_samples_per_prompt == 8
    assert config.agent.max_turns == STUDY_MAX_TURNS


@pytest.mark.parametrize("bad", [
    {"n_samples_per_prompt": 1},
    {"train_batch_size": 100},
    {"turn_tokens": 8192},
    {"vllm_num_engines": 3},
    {"lerning_rate": 1e-6},  # a typo fails loudly
])
def test_inconsistent_or_misspelt_configs_are_refused(bad):
    with pytest.raises(ValidationError):
        LaunchConfig(prompt_dataset="p.jsonl", agent=AGENT, **bad)


def test_choice_mode_needs_temperature_one_everywhere():
    choice = AgentConfig(endpoints={"babyai": "127.0.0.1:1"}, mode="choice")
    LaunchConfig(prompt_dataset="p.jsonl", agent=choice)
    with pytest.raises(ValidationError, match="temperature"):
        LaunchConfig(prompt_dataset="p.jsonl", agent=choice, eval_temperature=0.6)


@pytest.mark.parametrize("environ, wrong", [
    ({"SHIFTGYM_TURN_TOKENS": "many"}, "SHIFTGYM_TURN_TOKENS"),
    ({"SHIFTGYM_POLICY_MODE": "greedy"}, "POLICY_MODE"),
    ({"SHIFTGYM_SHAPING_STEP_COST": "-1"}, "step_cost"),
    ({"SHIFTGYM_INTERFACE": '[{"nam": "x"}]'}, "SHIFTGYM_INTERFACE"),
    ({"SHIFTGYM_MAX_TURNS_BABYAI": "0"}, "MAX_TURNS_BABYAI"),
])
def test_bad_executor_settings_name_the_variable(environ, wrong):
    with pytest.raises(ValueError, match=wrong):
        AgentSettings.from_environ({"SHIFTGYM_ENDPOINTS_BABYAI": "127.0.0.1:1", **environ})
