"""Tiny Qwen2-architecture models for CPU runs and tests: a byte-level BPE tokenizer trained on the environments'
own text, with a Qwen-style chat template, and a small randomly initialised `Qwen2ForCausalLM`, saved with
`save_pretrained` so that the ordinary `from_pretrained` path loads it. Same arguments, same files, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from env_server import registry
from env_server.envs.base import Environment
from env_server.errors import UnknownEnvironment
from env_server.tasks import sample_tasks

if TYPE_CHECKING:  # torch and transformers load only when a model is built, not when the CLI starts
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

# ALFWorld is left out by default: a game is generated and planned at its first reset, seconds to half a minute
# each on this machine, so a build would take minutes. `--envs ...,alfworld` adds it.
DEFAULT_ENVS = ("babyai", "textcraft", "webshop", "searchqa")
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
# Qwen's template without its default system prompt or tool calls: one block per message.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The words the chat template and a ReAct-style policy put around environment text.
_GLUE = ("system\n", "user\n", "assistant\n", "Thought: ", "Action: ", "Valid actions: ")
_BYTE_ALPHABET = 256
MAX_POSITIONS = 4096
METADATA_FILE = "shiftgym_tiny.json"


class TinyModelError(ValueError):
    """A bad argument to the builder; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ModelSize:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int


SIZES = {
    "tiny": ModelSize(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=256),  # ~0.25M parameters at vocab 2048
    "small": ModelSize(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=512),  # ~1.3M parameters at vocab 2048
}


def check_envs(envs: Sequence[str]) -> tuple[str, ...]:
    """The names, checked against the served environments (raises UnknownEnvironment)."""
    known = registry.names()
    for name in envs:
        if name not in known:
            raise UnknownEnvironment(f"unknown env {name!r} (known: {', '.join(known)})")
    if not envs:
        raise TinyModelError(f"no environments given (known: {', '.join(known)})")
    return tuple(envs)


def collect_corpus(envs: Sequence[str], episodes_per_env: int, seed: int) -> list[str]:
    """Text from oracle episodes of each environment, in process: first observations, valid actions, oracle actions
    and the observations that follow, plus the chat-template glue. Tasks are drawn from the train split, spread
    over the difficulties, with `seed`."""
    _check_episodes(episodes_per_env)
    corpus = list(_GLUE)
    for name in check_envs(envs):
        env = registry.load(name)
        split = "train" if env.spec.split("train") else env.spec.splits[0].name
        difficulties = env.spec.difficulties
        for rank, difficulty in enumerate(difficulties):
            count = episodes_per_env // len(difficulties) + (rank < episodes_per_env % len(difficulties))
            for task in sample_tasks(env.tasks(split, difficulty), count, seed):
                corpus.extend(_episode_text(env, task.task_id, seed, env.spec.default_max_turns))
    return corpus


def _episode_text(env: Environment, task_id: str, seed: int, max_turns: int) -> list[str]:
    episode = env.reset(task_id, seed)
    try:
        observation = episode.observe()
        texts = [observation.text]
        for _ in range(max_turns):
            if observation.valid_actions:
                texts.append("Valid actions: " + ", ".join(observation.valid_actions))
            action = episode.oracle_action()
            texts.append("Action: " + action)
            result = episode.step(action)
            observation = result.observation
            texts.append(observation.text)
            if result.done:
                break
        return texts
    finally:
        episode.close()


def train_tokenizer(corpus: Sequence[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Qwen2's pipeline, Qwen's special tokens and a Qwen-style chat template.

    Returned as a `Qwen2Tokenizer` (a `PreTrainedTokenizerFast`): transformers 5 loads every qwen2 checkpoint's
    tokenizer through that class, which rebuilds the pipeline as Qwen's (NFC, Qwen's split regex, byte level) from
    the vocabulary and merges alone, so training uses the same pipeline or the loaded tokenizer would split text
    differently from the one that learnt the merges. Byte level means no unknown tokens: decode(encode(s)) is s
    for any NFC string, and NFC(s) for the rest.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    _check_vocab_size(vocab_size)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    bpe = json.loads(tokenizer.to_str())["model"]
    merges: list[Any] = [tuple(pair) for pair in bpe["merges"]]  # pairs, as tokenizers' BPE takes them
    return Qwen2Tokenizer(  # no bos or unk token, as Qwen's own tokenizer_config
        vocab=bpe["vocab"], merges=merges, bos_token=None, unk_token=None,  # type: ignore[arg-type]
        eos_token=IM_END, pad_token=ENDOFTEXT, extra_special_tokens=[IM_START], chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS, clean_up_tokenization_spaces=False,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, size: str = "tiny", seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 model sized for CPU, its weights drawn from a generator seeded with `seed`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    dims = _size(size)
    endoftext, im_end = tokenizer.pad_token_id, tokenizer.eos_token_id
    if endoftext is None or im_end is None:
        raise TinyModelError("the tokenizer needs a pad token and an eos token")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=dims.hidden, intermediate_size=dims.intermediate,
        num_hidden_layers=dims.layers, num_attention_heads=dims.heads, num_key_value_heads=dims.kv_heads,
        max_position_embeddings=MAX_POSITIONS, max_window_layers=dims.layers, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0},
        bos_token_id=endoftext, eos_token_id=im_end, pad_token_id=endoftext,  # as Qwen2's own configs
    )
    with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG: leave it as it was
        model = Qwen2ForCausalLM(config)
    _initialise(model, torch.Generator().manual_seed(seed))
    model.generation_config = GenerationConfig(bos_token_id=endoftext, eos_token_id=im_end, pad_token_id=endoftext)
    model.eval()
    return model


def _initialise(model: Qwen2ForCausalLM, generator: torch.Generator) -> None:
    """Qwen2's own scheme (normal(0, initializer_range) weights, zero biases and padding row, unit norms), drawn from
    `generator` in parameter order, so that the weights depend on the seed alone."""
    import torch

    std = model.config.initializer_range
    with torch.no_grad():
        for name, parameter in model.named_parameters():  # the tied lm_head is listed once, as embed_tokens
            if name.endswith("norm.weight"):
                parameter.fill_(1.0)
            elif name.endswith(".bias"):
                parameter.zero_()
            else:
                parameter.normal_(0.0, std, generator=generator)
        model.model.embed_tokens.weight[model.config.pad_token_id].zero_()


def _check_vocab_size(vocab_size: int) -> None:
    least = _BYTE_ALPHABET + len(SPECIAL_TOKENS)
    if vocab_size < least:
        raise TinyModelError(f"vocab_size must be at least {least} (256 bytes and {len(SPECIAL_TOKENS)} special "
                             f"tokens), got {vocab_size}")


def _check_episodes(episodes_per_env: int) -> None:
    if episodes_per_env < 1:
        raise TinyModelError(f"episodes_per_env must be at least 1, got {episodes_per_env}")


def _size(size: str) -> ModelSize:
    if size not in SIZES:
        raise TinyModelError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
    return SIZES[size]


def check_arguments(
    out_dir: str | Path, envs: Sequence[str], size: str, vocab_size: int, episodes_per_env: int,
) -> Path:
    """Everything make_tiny can refuse, checked before any environment or model loads; returns `out_dir`.

    Raises TinyModelError or UnknownEnvironment, with a message that says what to change.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TinyModelError(f"{out} is a file: give a directory to write the model into")
    check_envs(envs)
    _size(size)
    _check_vocab_size(vocab_size)
    _check_episodes(episodes_per_env)
    return out


def make_tiny(
    out_dir: str | Path, envs: Sequence[str] = DEFAULT_ENVS, seed: int = 0, vocab_size: int = 2048,
    size: str = "tiny", episodes_per_env: int = 24,
) -> Path:
    """Build the tokenizer and model and save both into `out_dir`, with `shiftgym_tiny.json` saying how."""
    out = check_arguments(out_dir, envs, size, vocab_size, episodes_per_env)
    import tokenizers
    import torch
    import transformers

    corpus = collect_corpus(envs, episodes_per_env, seed)
    tokenizer = train_tokenizer(corpus, vocab_size)
    model = build_model(tokenizer, size, seed)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    for weights in out.glob("*.safetensors"):  # save_pretrained leaves them 0600; a pod running as non-root reads them
        weights.chmod(0o644)
    digest = hashlib.sha256("\0".join(corpus).encode()).hexdigest()
    metadata = {
        "envs": list(envs), "episodes_per_env": episodes_per_env, "seed": seed, "size": size,
        "dims": asdict(SIZES[size]), "vocab_size_requested": vocab_size, "vocab_size": len(tokenizer),
        "parameters": model.num_parameters(), "corpus": {"texts": len(corpus), "chars": sum(map(len, corpus)),
                                                          "sha256": digest},
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "torch": torch.__version__},
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return out


@click.command("tiny-model")
@click.option("--out", "out_dir", required=True, help="Directory to write the model and tokenizer into.")
@click.option("--envs", default=",".join(DEFAULT_ENVS), show_default=True,
              help="Comma-separated environments whose text trains the tokenizer.")
@click.option("--episodes-per-env", default=24, show_default=True, help="Oracle episodes played per environment.")
@click.option("--seed", default=0, show_default=True, help="Seeds the task sample and the weights.")
@click.option("--vocab-size", default=2048, show_default=True, help="BPE vocabulary size, special tokens included.")
@click.option("--size", default="tiny", show_default=True, help=f"Model size: {', '.join(SIZES)}.")
def tiny_model_command(out_dir: str, envs: str, episodes_per_env: int, seed: int, vocab_size: int, size: str) -> None:
    """Train a byte-level BPE tokenizer on environment text and save a tiny Qwen2 model for CPU runs."""
    names = tuple(name.strip() for name in envs.split(",") if name.strip())
    try:
        check_arguments(out_dir, names, size, vocab_size, episodes_per_env)  # before seconds of imports
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # one shard of a few MB: a progress bar is noise
        out = make_tiny(out_dir, names, seed=seed, vocab_size=vocab_size, size=size,
                        episodes_per_env=episodes_per_env)
    except (TinyModelError, UnknownEnvironment) as err:
        raise click.ClickException(str(err)) from None
    metadata = json.loads((out / METADATA_FILE).read_text())
    click.echo(f"wrote {out}: Qwen2 {size}, {metadata['parameters']:,} parameters, "
               f"vocabulary {metadata['vocab_size']}, {metadata['corpus']['texts']} texts from {', '.join(names)}")


if __name__ == "__main__":
    tiny_model_command(prog_name=f"{Path(sys.executable).name} -m trainer.tiny")
