"""On GPU the same spec becomes OpenRLHF launch and dataset files, chained stage to stage."""

from __future__ import annotations

import json

from tests.trainer import openrlhf_code
from trainer.grid.expand import expand
from trainer.grid.gpu import emit
from trainer.grid.spec import parse_spec

SPEC = {
    "name": "gpu-test",
    "envs": {"babyai": {"max_turns": 10}, "textcraft": {}},
    "policies": {"qwen": {"kind": "pretrained", "model": "Qwen/Qwen2.5-3B-Instruct", "mode": "free"},
                 "oracle": {"kind": "oracle"}},
    "budget": {"turn_tokens": 512, "trajectory_tokens": 8192},
    "training": {"steps": 3, "tasks_per_step": 4, "group_size": 8, "lr": 1e-6, "kl_coef": 1e-3,
                 "warm_start": {"envs": ["babyai"], "episodes": 10},
                 "launch": {"gpus_per_node": 1, "vllm_num_engines": 1}},
    "evaluation": {"tasks": 5, "k": 8, "difficulties": ["easy"]},
    "axes": {"sequential": {"orders": [["babyai", "textcraft"]], "mixture": True}},
}


def test_emit_writes_chained_launches_and_datasets(tmp_path):
    grid = expand(parse_spec(SPEC))
    plan = emit(grid, tmp_path, {"babyai": "10.0.0.1:50051"}, "/ckpt")
    assert json.loads((tmp_path / "plan.json").read_text()) == plan
    stages = plan["stages"]
    assert [s["kind"] for s in stages] == ["base", "warm_start", "grpo", "grpo", "grpo"]
    assert stages[0]["checkpoint"] == "Qwen/Qwen2.5-3B-Instruct"
    by_id = {s["id"]: s for s in stages}
    for stage in stages[2:]:
        launch = json.loads((tmp_path / "stages" / stage["id"] / "launch.json").read_text())
        # every stage starts from its parent's output; the first RL stage from the warm start's
        assert launch["pretrain"] == by_id[stage["parent"]]["checkpoint"]
        assert launch["output_dir"] == stage["checkpoint"] == f"/ckpt/{stage['id']}"
        assert launch["n_samples_per_prompt"] == 8 and launch["max_len"] == 8192 and launch["turn_tokens"] == 512
        assert launch["eval_n_samples_per_prompt"] == 8
        assert launch["agent"]["endpoints"] == {"babyai": "10.0.0.1:50051",
                                                "textcraft": "dns:///textcraft.shiftgym.svc.cluster.local:50051"}
        prompts = (tmp_path / "stages" / stage["id"] / "prompts.jsonl").read_text().splitlines()
        node = grid.nodes[stage["id"]]
        assert len(prompts) == node.steps * 4  # steps x tasks_per_step, over the stage's envs
        evals = (tmp_path / "stages" / stage["id"] / "eval.jsonl").read_text().splitlines()
        assert len(evals) == sum(c.tasks for c in grid.cells.values() if c.node == node.id)
        env_sh = (tmp_path / "stages" / stage["id"] / "env.sh").read_text()
        assert "export SHIFTGYM_ENDPOINTS_BABYAI=10.0.0.1:50051" in env_sh
    warm = stages[1]
    assert warm["commands"][0].startswith("shiftgym bc-data ") and "openrlhf.cli.train_sft" in warm["commands"][-1]
    # The mixture trains on the same tasks as the order's stages, together.
    mixture = next(s for s in stages[2:] if "+" in s["label"].split(" > ")[-1])
    order = [s for s in stages[2:] if s is not mixture]
    def tasks(stage):  # noqa: E306
        return {json.loads(json.loads(line)["label"])["task_id"]
                for line in (tmp_path / "stages" / stage["id"] / "prompts.jsonl").read_text().splitlines()}
    assert tasks(mixture) == tasks(order[0]) | tasks(order[1])
    # OpenRLHF's own parser accepts a generated argv.
    args = (tmp_path / "stages" / order[0]["id"] / "args.txt").read_text().splitlines()
    code, out, parsed = openrlhf_code.run_train_ppo_ray_cli(args)
    assert code == 0 and parsed is not None, out
    assert parsed.rollout.n_samples_per_prompt == 8 and parsed.actor.model_name_or_path == by_id[order[0]["parent"]][
        "checkpoint"]
