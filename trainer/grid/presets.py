"""Built-in grid specs. `shiftgym grid show --preset NAME` prints one as YAML, to copy and edit.

- `smoke`: the embedded default of `make run`. All five environments and all four axes at toy scale, a tiny
  Qwen2 policy trained on CPU (choice among valid actions), plus the oracle and uniform-random rows. Sized to
  finish on a 2-core machine within 20 minutes; its numbers show that the pipeline works, not what RL achieves.
- `paper`: the study's grid (arXiv 2603.12011) for Qwen2.5-3B/7B-Instruct: GRPO with 8 rollouts per task, avg@8,
  8192-token trajectories, the environments' own turn limits (AgentGym's), every axis at full size. Meant for GPUs:
  `shiftgym grid emit --preset paper` writes its OpenRLHF launch and dataset files.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from trainer.grid.spec import ENVS, GridSpec, parse_spec
from trainer.launch import STUDY_MAX_TURNS

# Choice-mode turns of a tiny model cost 20-100 ms here, and a failing episode runs to its turn limit: the smoke
# limits stay at or above what the oracle needs on the sampled tasks (TextCraft's hard recipes need up to 24).
SMOKE_MAX_TURNS = {"babyai": 12, "textcraft": 24, "alfworld": 15, "webshop": 10, "searchqa": 5}


def warm_start_available() -> bool:
    """Whether the behaviour-cloning stage (trainer/rl/sft.py, issue 11) is installed."""
    return importlib.util.find_spec("trainer.rl.sft") is not None


def smoke() -> dict[str, Any]:
    order = ["babyai", "textcraft", "webshop", "searchqa", "alfworld"]
    spec: dict[str, Any] = {
        "name": "smoke",
        "envs": {env: {"max_turns": SMOKE_MAX_TURNS[env]} for env in ENVS},
        "policies": {
            "tiny": {"kind": "tiny", "size": "tiny", "vocab_size": 2048, "corpus_episodes": 24, "mode": "choice"},
            "oracle": {"kind": "oracle"},
            "random": {"kind": "random"},
        },
        # WebShop's queries (the instruction's first clause) run to ~40 tokens with the tiny tokenizer.
        "budget": {"turn_tokens": 48, "trajectory_tokens": 3072},
        "training": {"steps": 2, "tasks_per_step": 4, "group_size": 4, "lr": 2e-3, "seed": 0},
        # 8 tasks x 2 samples per cell; the Signal section (warm-started tiny against random on easy) gets cells of
        # 32 tasks: at 8, its 95% intervals overlapped random's even at 25% against 6%.
        "evaluation": {"tasks": 8, "k": 2, "seed": 0, "difficulties": ["easy", "hard"], "signal_tasks": 32},
        "axes": {
            "difficulty": {"envs": ["babyai"], "test": ["easy", "hard"]},
            "cross_env": {"train": list(ENVS), "difficulty": "easy"},
            "sequential": {"orders": [order, order[::-1]], "mixture": True, "difficulty": "easy"},
            "interface": {"envs": ["babyai"], "train": "original", "test": "all", "lexicon": True},
        },
    }
    if warm_start_available():
        # ALFWorld is left out: its episodes are the longest, and its hidden targets need exploring, not copying.
        # TextCraft too: cloned, the tiny model replays a recipe's first crafts in a loop (it cannot count what it
        # holds) and solved 0-9% of easy tasks against random's 8%. Many episodes over few epochs: the names must
        # vary for the model to learn to copy them (64 per env for 30 epochs were learnt by heart and still chose
        # names at chance on held-out tasks). On the 32 signal tasks, in a grid without ALFWorld: 512 episodes per
        # env gave BabyAI 86% against random's 70%, WebShop 23% against 6%, SearchQA 9% against 0%; 768 gave
        # SearchQA 5%.
        spec["training"]["warm_start"] = {"envs": ["babyai", "webshop", "searchqa"], "episodes": 512,
                                          "epochs": 10, "batch_size": 8}
    return spec


def paper() -> dict[str, Any]:
    envs = list(ENVS)
    pairs = [[a, b] for a in envs for b in envs if a != b]
    return {
        "name": "paper",
        "envs": {env: {"max_turns": STUDY_MAX_TURNS[env]} for env in envs},
        "policies": {
            "qwen2.5-3b": {"kind": "pretrained", "model": "Qwen/Qwen2.5-3B-Instruct", "mode": "free"},
            "qwen2.5-7b": {"kind": "pretrained", "model": "Qwen/Qwen2.5-7B-Instruct", "mode": "free"},
            "oracle": {"kind": "oracle"},
            "random": {"kind": "random"},
        },
        "budget": {"turn_tokens": 512, "trajectory_tokens": 8192},
        "training": {"steps": 200, "tasks_per_step": 32, "group_size": 8, "lr": 1e-6, "kl_coef": 1e-3, "seed": 42,
                     "launch": {"num_nodes": 1, "gpus_per_node": 8, "vllm_num_engines": 8, "zero_stage": 3}},
        "evaluation": {"tasks": 100, "k": 8, "seed": 0, "difficulties": ["easy", "hard"]},
        "axes": {
            "difficulty": {"envs": envs, "test": ["easy", "hard"]},
            "cross_env": {"train": envs, "difficulty": "easy"},
            "sequential": {"orders": pairs + [envs, envs[::-1]], "mixture": True, "difficulty": "easy"},
            "interface": {"envs": envs, "train": "original", "test": "all", "lexicon": True},
        },
    }


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {"smoke": smoke, "paper": paper}


def preset(name: str) -> GridSpec:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return parse_spec(PRESETS[name]())
