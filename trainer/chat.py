"""Chat-template glue as token ids, so a multi-turn episode is assembled by appending, never re-tokenizing.

The tokenizer's own chat template is rendered once around placeholder messages; the text between them is the
glue a turn needs (e.g. Qwen's `<|im_end|>\\n<|im_start|>user\\n` ... `<|im_end|>\\n<|im_start|>assistant\\n`).
Any template that renders each message's content verbatim works.
"""

from __future__ import annotations

from typing import Any, Sequence

_USER1, _ASSISTANT, _USER2 = "\x00U1\x00", "\x00A1\x00", "\x00U2\x00"


class ChatGlue:
    def __init__(self, tokenizer: Any, system_prompt: str = "") -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        head = [{"role": "system", "content": system_prompt}] if system_prompt else []
        rendered = tokenizer.apply_chat_template(
            [*head, {"role": "user", "content": _USER1}, {"role": "assistant", "content": _ASSISTANT},
             {"role": "user", "content": _USER2}],
            tokenize=False, add_generation_prompt=True,
        )
        for mark in (_USER1, _ASSISTANT, _USER2):
            if rendered.count(mark) != 1:
                raise ValueError("the tokenizer's chat template does not render message contents verbatim")
        self._before_first = rendered[: rendered.index(_USER1)]
        self._after_user = rendered[rendered.index(_USER2) + len(_USER2):]
        self._after_assistant = rendered[rendered.index(_ASSISTANT) + len(_ASSISTANT): rendered.index(_USER2)]
        self.stop_id: int = tokenizer.convert_tokens_to_ids(self._stop_token())

    def _stop_token(self) -> str:
        """The token that ends an assistant message: what the policy must emit to stop."""
        for token in tokenizer_special_tokens(self.tokenizer):
            if self._after_assistant.startswith(token):
                return token
        raise ValueError("the chat template does not close assistant messages with a special token")

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def first_prompt(self, observation: str) -> list[int]:
        """Tokens up to where the policy starts its first action."""
        return self.encode(self._before_first + observation + self._after_user)

    def next_prompt(self, action_ids: Sequence[int], observation: str) -> list[int]:
        """Glue after an action: closes it (unless the policy already emitted the stop token) and adds the
        next observation and the assistant header."""
        glue = self._after_assistant
        if action_ids and action_ids[-1] == self.stop_id:
            glue = glue[len(self._stop_token()):]
        return self.encode(glue + observation + self._after_user)

    def action_text(self, action_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(action_ids), skip_special_tokens=True).strip()


def tokenizer_special_tokens(tokenizer: Any) -> list[str]:
    """Special and added tokens (chat markers are often only the latter), longest first so a prefix match finds the whole token."""
    return sorted(set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab()), key=len, reverse=True)
