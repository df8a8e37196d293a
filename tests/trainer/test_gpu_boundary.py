"""The GPU boundary (STYLE.md): the trainer's core imports where vllm, deepspeed, flash_attn, ray and openrlhf cannot
be imported at all, and the client, episode and launch code even without torch and transformers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPU_PACKAGES = ("vllm", "deepspeed", "flash_attn", "ray", "openrlhf", "triton", "xformers")
CORE = ("trainer.client", "trainer.client.pool", "trainer.client.env_client", "trainer.episodes",
        "trainer.trajectory", "trainer.shaping", "trainer.chat", "trainer.evaluation", "trainer.policies.base",
        "trainer.policies.lm", "trainer.policies.scripted", "trainer.policies.hf", "trainer.policies.vllm",
        "trainer.rl", "trainer.rl.losses", "trainer.rl.grpo", "trainer.tiny", "trainer.launch", "trainer.datasets")
WITHOUT_TORCH = ("trainer.client", "trainer.client.pool", "trainer.episodes", "trainer.launch", "trainer.datasets",
                 "trainer.policies.vllm")

# A meta-path finder that refuses the blocked packages, installed before anything else is imported.
PROBE = textwrap.dedent("""
    import importlib, json, sys

    BLOCKED = set(json.loads(sys.argv[1]))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the GPU boundary")
            return None

    sys.meta_path.insert(0, Blocker())
    imported, failed = [], {}
    for module in json.loads(sys.argv[2]):
        try:
            importlib.import_module(module)
            imported.append(module)
        except ImportError as err:
            failed[module] = str(err)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"imported": imported, "failed": failed, "leaked": leaked}))
""")


def probe(blocked: tuple[str, ...], modules: tuple[str, ...]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(blocked), json.dumps(modules)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_core_imports_without_any_gpu_package():
    result = probe(GPU_PACKAGES, (*CORE, "trainer.openrlhf_agent"))
    assert result["imported"] == list(CORE), result["failed"]
    assert result["leaked"] == []
    # ... and the one module that is meant to need OpenRLHF says so.
    assert "openrlhf" in result["failed"]["trainer.openrlhf_agent"]


def test_clients_episodes_and_launch_need_neither_torch_nor_transformers():
    result = probe((*GPU_PACKAGES, "torch", "transformers"), WITHOUT_TORCH)
    assert result["imported"] == list(WITHOUT_TORCH), result["failed"]
    assert result["leaked"] == []


def test_a_standalone_vllm_engine_imports_vllm_only_when_built():
    script = textwrap.dedent("""
        import sys
        sys.modules["vllm"] = None  # importing vllm now raises ImportError
        from trainer.policies.vllm import VLLMEngine
        try:
            VLLMEngine.standalone("/nonexistent")
        except ImportError:
            print("refused")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "refused"
