"""Grid specs: bad ones get errors naming the field and what is allowed; presets expand into shared, stable cells."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainer.cli import main as cli
from trainer.grid.expand import expand
from trainer.grid.presets import preset
from trainer.grid.spec import ENVS, SpecError, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"name": "t", "envs": {"babyai": {}, "textcraft": {}},
           "policies": {"tiny": {"kind": "tiny"}, "oracle": {"kind": "oracle"}}}


def errors(data: dict) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return str(caught.value)


def test_bad_specs_name_the_field_and_what_is_allowed():
    assert "envs: unknown env 'minecraft' (allowed: babyai, textcraft, alfworld, webshop, searchqa)" in errors(
        {**MINIMAL, "envs": {"minecraft": {}}})
    message = errors({**MINIMAL, "policies": {"tiny": {"kind": "tiny", "lr": 1}}})
    assert message.startswith("policies.tiny.lr: unknown field (allowed here: kind, model, size")
    assert "policies.x.kind: Input should be 'tiny', 'pretrained', 'oracle' or 'random'" in errors(
        {**MINIMAL, "policies": {"x": {"kind": "gpt"}}})
    assert "training.steps: Input should be greater than or equal to 1" in errors({**MINIMAL, "training": {"steps": 0}})
    message = errors({**MINIMAL, "axes": {"sequential": {"orders": [["babyai", "babyai"]]}}})
    assert "axes.sequential.orders: an order needs two or more distinct envs" in message
    message = errors({**MINIMAL, "axes": {"interface": {"envs": ["babyai"], "test": ["xml"]}}})
    assert "axes.interface.test: unknown interface 'xml' (allowed: original, json_obs" in message
    message = errors({**MINIMAL, "axes": {"cross_env": {"train": ["webshop"]}}})
    assert "axes.cross_env.train: env(s) webshop not in `envs` (declared: babyai, textcraft)" in message
    message = errors({**MINIMAL, "trained": ["oracle"]})
    assert "trained.0: policy 'oracle' is oracle, which cannot be trained" in message
    assert "axes.transfer: unknown field (allowed here: difficulty, cross_env, sequential, interface)" in errors(
        {**MINIMAL, "axes": {"transfer": {}}})
    assert "training.launch: unknown or grid-owned launch field(s) pretrain" in errors(
        {**MINIMAL, "training": {"launch": {"pretrain": "x"}}})
    assert "policies.p: a pretrained policy needs `model`" in errors(
        {**MINIMAL, "policies": {"p": {"kind": "pretrained"}}})
    assert "name: required field missing" in errors({k: v for k, v in MINIMAL.items() if k != "name"})


def test_the_cli_prints_spec_errors_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nenvs: {babyai: {max_turns: 0}}\npolicies: {o: {kind: oracle}}\n")
    result = CliRunner().invoke(cli, ["grid", "show", str(path)])
    assert result.exit_code != 0
    assert "envs.babyai.max_turns: Input should be greater than or equal to 1" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["grid", "show"])
    assert "give a spec file or --preset NAME" in result.output


def test_presets_cover_every_env_and_axis_and_round_trip_through_yaml(tmp_path):
    for name in ("smoke", "paper"):
        spec = preset(name)
        assert set(spec.envs) == set(ENVS)
        axes = spec.axes
        assert axes.difficulty and axes.cross_env and axes.sequential and axes.interface
        assert set(axes.cross_env.train) == set(ENVS)
        assert sum(len(o) == 5 for o in axes.sequential.orders) >= 2
        result = CliRunner().invoke(cli, ["grid", "show", "--preset", name])
        assert result.exit_code == 0, result.output
        path = tmp_path / f"{name}.yaml"
        path.write_text(result.output)
        assert load_spec(path) == spec  # `grid show` prints a spec that loads back as the same spec
    paper = preset("paper")
    assert paper.evaluation.k == 8 and paper.training.group_size == 8 and paper.budget.trajectory_tokens == 8192
    assert {p.model for p in paper.policies.values() if p.kind == "pretrained"} == {
        "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct"}
    assert {e: s.max_turns for e, s in paper.envs.items()} == {
        "babyai": 20, "textcraft": 30, "alfworld": 30, "webshop": 10, "searchqa": 5}


def test_expansion_shares_stages_and_cells_and_is_stable():
    spec = preset("smoke")
    grid = expand(spec)
    again = expand(spec)
    assert list(grid.cells) == list(again.cells) and list(grid.nodes) == list(again.nodes)
    views = grid.views
    order = next(o for (_, o) in views.sequential if o[0] == "babyai" and len(o) == 5)
    # The first stage of a sequential order is the cross-env run on that env: one node, one set of cells.
    assert views.sequential[("tiny", order)][1]["babyai"] == views.transfer["tiny"]["babyai"]["babyai"]
    # A1's "easy" regime is the same stage as A2's babyai stage.
    assert views.difficulty[("tiny", "babyai", "easy")]["easy"] == views.transfer["tiny"]["babyai"]["babyai"]
    # Both five-env orders have one mixture: the same data.
    mixtures = {tuple(sorted(m.values())) for m in views.mixture.values()}
    assert len(mixtures) == 1
    # easy-then-hard continues from the easy checkpoint
    etoh = grid.cells[views.difficulty[("tiny", "babyai", "easy_then_hard")]["easy"]]
    easy = grid.cells[views.difficulty[("tiny", "babyai", "easy")]["easy"]]
    assert grid.nodes[etoh.node].parent == easy.node
    # A4 tests every preset of the env, the lexicon included, and the oracle and random rows under each
    presets = list(views.interface[("tiny", "babyai")]["trained"])
    assert presets[0] == "original" and "lexicon" in presets and len(presets) == 13
    assert ("oracle", "babyai") in views.interface and ("random", "babyai") in views.interface
    # A changed setting is a new cell, not a stale result
    changed = expand(parse_spec({**spec.model_dump(mode="json"), "evaluation": {"tasks": 5, "k": 2}}))
    assert not set(changed.cells) & set(grid.cells)


def test_warm_start_is_a_node_before_every_rl_stage():
    data = {**MINIMAL, "training": {"warm_start": {"envs": ["babyai"], "episodes": 4}},
            "axes": {"cross_env": {"train": ["babyai"]}}}
    grid = expand(parse_spec(data))
    kinds = [n.kind for n in grid.training_order()]
    assert kinds == ["base", "warm_start", "grpo"]
    grpo = grid.training_order()[-1]
    assert grid.nodes[grpo.parent].kind == "warm_start"
    # the untrained row of the transfer matrix is the warm-started model
    base_cell = grid.cells[grid.views.transfer["tiny"]["base"]["babyai"]]
    assert grid.nodes[base_cell.node].kind == "warm_start"


def test_grid_and_report_import_without_torch():
    probe = ("import sys, json\n"
             "class B:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('torch', 'transformers'): raise ImportError(name)\n"
             "sys.meta_path.insert(0, B())\n"
             "import trainer.grid.spec, trainer.grid.expand, trainer.grid.store, trainer.grid.runner, "
             "trainer.grid.local, trainer.grid.cli, trainer.grid.gpu, trainer.report.build\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
