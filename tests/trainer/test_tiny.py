"""The tiny Qwen2 model builder: what it saves loads back through the ordinary from_pretrained path, unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.tiny import (
    CHAT_TEMPLATE,
    DEFAULT_ENVS,
    METADATA_FILE,
    build_model,
    collect_corpus,
    make_tiny,
    tiny_model_command,
    train_tokenizer,
)

SEED, VOCAB, EPISODES = 3, 512, 3  # a small corpus keeps the build to seconds
MESSAGES = [{"role": "system", "content": "You play a text game."}, {"role": "user", "content": "You see a key."}]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same recipe twice: once through make_tiny, once by hand, keeping the in-memory model that was saved."""
    made = make_tiny(tmp_path_factory.mktemp("made"), DEFAULT_ENVS, seed=SEED, vocab_size=VOCAB,
                     episodes_per_env=EPISODES)
    tokenizer = train_tokenizer(collect_corpus(DEFAULT_ENVS, EPISODES, SEED), VOCAB)
    model = build_model(tokenizer, "tiny", seed=SEED)
    by_hand = tmp_path_factory.mktemp("by_hand")
    tokenizer.save_pretrained(by_hand)
    model.save_pretrained(by_hand)
    return made, by_hand, model


@pytest.fixture(scope="module")
def loaded(built):
    made = built[0]
    return AutoTokenizer.from_pretrained(made), AutoModelForCausalLM.from_pretrained(made)


def test_loads_back_as_a_small_qwen2_model(built, loaded):
    tokenizer, model = loaded
    assert model.config.model_type == "qwen2" and type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.architectures == ["Qwen2ForCausalLM"]
    assert 100_000 < model.num_parameters() < 2_000_000
    assert model.config.vocab_size == len(tokenizer) <= VOCAB
    assert model.config.tie_word_embeddings and model.config.max_position_embeddings == 4096
    metadata = json.loads((built[0] / METADATA_FILE).read_text())
    assert metadata["seed"] == SEED and metadata["envs"] == list(DEFAULT_ENVS)
    assert metadata["parameters"] == model.num_parameters() and metadata["vocab_size"] == len(tokenizer)


def test_the_chat_template_renders_the_qwen_form(loaded):
    tokenizer, _ = loaded
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou play a text game.<|im_end|>\n"
                    "<|im_start|>user\nYou see a key.<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.apply_chat_template(MESSAGES, tokenize=False) == text.removesuffix("<|im_start|>assistant\n")
    ids = tokenizer.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert ids == tokenizer.encode(text)
    assert tokenizer.chat_template == CHAT_TEMPLATE


def test_special_tokens_are_single_ids_named_as_in_qwen(loaded):
    tokenizer, model = loaded
    ids = {token: tokenizer.encode(token) for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    assert all(len(one) == 1 for one in ids.values()) and len({one[0] for one in ids.values()}) == 3
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == ids["<|im_end|>"][0]
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == ids["<|endoftext|>"][0]
    assert tokenizer.bos_token is None  # Qwen prepends nothing
    for config in (model.config, model.generation_config):
        assert config.eos_token_id == tokenizer.eos_token_id and config.pad_token_id == tokenizer.pad_token_id
        assert config.bos_token_id == tokenizer.pad_token_id
    turn = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert turn[0] == ids["<|im_start|>"][0] and turn[-1] == ids["<|im_end|>"][0]
    assert tokenizer.decode(tokenizer.encode("<|im_start|>user\nhi<|im_end|>"), skip_special_tokens=True) == "user\nhi"


def test_the_loaded_tokenizer_is_the_one_that_was_trained(built, loaded):
    # transformers builds a qwen2 checkpoint's tokenizer from vocabulary and merges with Qwen's own pipeline.
    saved = json.loads((built[0] / "tokenizer.json").read_text())
    live = json.loads(loaded[0].backend_tokenizer.to_str())
    for part in ("normalizer", "pre_tokenizer", "decoder", "added_tokens"):
        assert live[part] == saved[part], part
    assert live["model"]["vocab"] == saved["model"]["vocab"] and live["model"]["merges"] == saved["model"]["merges"]


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_any_string_round_trips_up_to_nfc(loaded, text):
    tokenizer, _ = loaded
    assert tokenizer.decode(tokenizer.encode(text)) == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize("text", [
    "", "go to the red ball", "Ünïcødé 日本語 🙂\t\r\n  x  ", "a\u00a0b\u200dc", "\x00\x7f"])
def test_nfc_strings_round_trip_exactly(loaded, text):
    tokenizer, _ = loaded
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_the_loaded_model_computes_what_the_saved_one_did(built, loaded):
    tokenizer, model = loaded
    ids = torch.tensor([tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=False)])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, built[2](ids).logits)


def test_generate_runs_and_stops_within_its_budget(loaded):
    tokenizer, model = loaded
    ids = torch.tensor([tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=False)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 1 and ids.shape[1] < out.shape[1] <= ids.shape[1] + 4
    assert torch.equal(out[:, :ids.shape[1]], ids)


def test_the_same_seed_builds_identical_files(built):
    made, by_hand, _ = built
    assert (made / "tokenizer.json").read_bytes() == (by_hand / "tokenizer.json").read_bytes()
    assert (made / "model.safetensors").read_bytes() == (by_hand / "model.safetensors").read_bytes()
    first, second = load_file(made / "model.safetensors"), load_file(by_hand / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_another_seed_draws_other_weights_and_leaves_the_global_rng_alone(built, loaded):
    state = torch.get_rng_state()
    other = build_model(loaded[0], "tiny", seed=SEED + 1)
    assert torch.equal(torch.get_rng_state(), state)
    weights = built[2].model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(other.model.layers[0].self_attn.q_proj.weight, weights)


@pytest.mark.parametrize(("args", "message"), [
    (["--envs", "babyai,nosuch"], "unknown env 'nosuch' (known: alfworld, babyai, searchqa, textcraft, webshop)"),
    (["--size", "huge"], "unknown size 'huge' (known: tiny, small)"),
    (["--vocab-size", "100"], "vocab_size must be at least 259 (256 bytes and 3 special tokens), got 100"),
    (["--episodes-per-env", "0"], "episodes_per_env must be at least 1, got 0"),
])
def test_a_bad_argument_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "model"
    result = CliRunner().invoke(tiny_model_command, ["--out", str(out), *args])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {message}"
    assert not out.exists()


def test_an_out_path_that_is_a_file_is_refused_and_left_alone(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    result = CliRunner().invoke(tiny_model_command, ["--out", str(taken)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {taken} is a file: give a directory to write the model into"
    assert taken.read_text() == "keep me"


def test_runs_as_a_module_and_stays_light_to_import(tmp_path):
    # The trainer CLI imports this module: torch and transformers must wait until a model is built.
    root = Path(__file__).resolve().parents[2]
    heavy = "import sys, trainer.tiny; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", heavy], capture_output=True, text=True, check=True, cwd=root)
    assert imported.stdout.strip() == "[]"
    command = [sys.executable, "-m", "trainer.tiny", "--out", str(tmp_path / "m"), "--envs", "nosuch"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
    assert result.returncode == 1 and result.stderr.strip().startswith("Error: unknown env 'nosuch'")
    assert "Traceback" not in result.stderr
