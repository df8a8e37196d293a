"""Interface adapters; importing the package registers every adapter kind and the presets in base.KINDS."""

from env_server.adapters import action_format, action_list, feedback, lexicon, obs_format, presets, prompt_style

__all__ = ["action_format", "action_list", "feedback", "lexicon", "obs_format", "presets", "prompt_style"]
