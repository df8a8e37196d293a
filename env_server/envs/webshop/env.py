"""WebShopEnv: loads or generates a catalog once per process, builds the BM25 index, plans and splits the goals."""

from __future__ import annotations

import logging
import os
import re
import random
from dataclasses import dataclass
from pathlib import Path

from env_server.envs.webshop.catalog import Catalog, DataFiles, Goal, build_catalog, load_catalog
from env_server.envs.webshop.episode import WebShopEpisode
from env_server.envs.webshop.generator import generate
from env_server.envs.webshop.plan import GoalPlan, plan_goal
from env_server.envs.webshop.search import SearchIndex
from env_server.errors import UnknownTask
from env_server.types import EnvSpec, SplitSpec, TaskInfo

log = logging.getLogger(__name__)

DATA_ENV = "SHIFTGYM_WEBSHOP_DATA"  # a folder holding WebShop's files (see DataFiles.discover)
PRODUCTS_ENV = "SHIFTGYM_WEBSHOP_PRODUCTS"  # size of the generated catalog when no folder is given
DEFAULT_PRODUCTS = 10_000
GENERATOR_SEED = 20220427
DEFAULT_MAX_TURNS = 10
SPLITS = ("train", "test")
DIFFICULTIES = ("easy", "medium", "hard")
SPLIT_SHUFFLE_SEED = 233  # WebShop shuffles its goals with random.seed(233) before cutting the splits
TEST_GOALS = 500

SUCCESS = "the purchase scores reward 1: right product type, every asked attribute and option, within the price bound"
SCORE = (
    "the reward of the purchase, in [0, 1]: r_type * (matched attributes + matched options + [price <= bound]) / "
    "(asked attributes + asked options + 1); 0 when the episode ends without buying"
)
DIFFICULTY = (
    "hard: target beyond the first results page for the instruction's words, or >= 5 asked attributes+options; "
    "medium: >= 3 asked, or >= 2 near-duplicates / an over-budget near-duplicate ranked above the target; "
    "easy: the rest"
)

_SITE_WORDS = frozenset("search click back next prev buy now description features reviews page price rating "
                        "instruction results total options webshop".split())


@dataclass(frozen=True, slots=True)
class _Task:
    info: TaskInfo
    goal: Goal
    plan: GoalPlan


def _resolve(data: DataFiles | Path | str | None, num_products: int | None, seed: int) -> tuple[Catalog, bool]:
    """(catalog, generated?) from the arguments, else the environment variables, else the generator."""
    if data is None and os.environ.get(DATA_ENV):
        data = os.environ[DATA_ENV]
    if data is not None:
        files = data if isinstance(data, DataFiles) else DataFiles.discover(Path(data))
        return load_catalog(files), False
    raw_size = num_products if num_products is not None else os.environ.get(PRODUCTS_ENV, DEFAULT_PRODUCTS)
    try:
        size = int(raw_size)
    except ValueError:
        raise ValueError(f"${PRODUCTS_ENV} must be a whole number of products; got {raw_size!r}") from None
    if size < 1:
        raise ValueError(f"the generated catalog needs at least 1 product; got {size}")
    gen = generate(size, seed)
    return build_catalog(gen.products, gen.attributes, gen.human, source=f"generated(n={size}, seed={seed})"), True


class WebShopEnv:
    """WebShop's text site over WebShop-format files; with no files, over a generated catalog."""

    def __init__(self, data: DataFiles | Path | str | None = None, num_products: int | None = None,
                 generator_seed: int = GENERATOR_SEED, max_turns: int = DEFAULT_MAX_TURNS) -> None:
        self.catalog, generated = _resolve(data, num_products, generator_seed)
        products = list(self.catalog.products.values())
        self.index = SearchIndex(products)
        planned: list[tuple[Goal, GoalPlan]] = []
        self.dropped_goals = 0
        for goal in self.catalog.goals:
            plan = plan_goal(goal, self.catalog.products, self.index)
            # A generated goal must be winnable within the default turn limit; real goals are kept as they are.
            if plan is None or (generated and (plan.steps > max_turns or plan.oracle_reward < 1.0)):
                self.dropped_goals += 1
                continue
            planned.append((goal, plan))
        if self.dropped_goals:
            log.info("webshop: %d goals dropped (target unreachable by search or unwinnable)", self.dropped_goals)
        random.Random(SPLIT_SHUFFLE_SEED).shuffle(planned)
        n_test = min(TEST_GOALS, len(planned) // 2)
        self._tasks: dict[str, _Task] = {}
        lists: dict[tuple[str, str], list[TaskInfo]] = {(s, d): [] for s in SPLITS for d in DIFFICULTIES}
        for position, (goal, plan) in enumerate(planned):
            split = "test" if position < n_test else "train"
            task_id = f"webshop/{split}/{plan.difficulty}/{goal.asin}-{goal.index}"
            info = TaskInfo(task_id, split, plan.difficulty, {
                "asin": goal.asin,
                "instruction": goal.instruction_text,
                "target_rank": str(plan.rank),
                "asked": str(len(goal.attributes) + len(goal.options)),
                "oracle_steps": str(plan.steps),
                "oracle_reward": f"{plan.oracle_reward:.4f}",
            })
            self._tasks[task_id] = _Task(info, goal, plan)
            lists[split, plan.difficulty].append(info)
        self._lists = {key: tuple(sorted(infos, key=lambda t: t.task_id)) for key, infos in lists.items()}
        self.spec = EnvSpec(
            name="webshop",
            version="1.0.0",
            difficulties=DIFFICULTIES,
            splits=tuple(SplitSpec(s, {d: len(self._lists[s, d]) for d in DIFFICULTIES}) for s in SPLITS),
            default_max_turns=DEFAULT_MAX_TURNS,
            max_turns_limit=100,
            reward_range=(0.0, 1.0),
            success_definition=SUCCESS,
            score_definition=SCORE,
            difficulty_definition=DIFFICULTY,
        )

    def lexicon_words(self) -> tuple[str, ...]:
        """Entity words for the `lexicon` adapter: the catalog's product types, categories, attributes and option
        values, and the goals' attributes and options (brands and other title words are left as they are)."""
        words: set[str] = set()
        for product in self.catalog.products.values():
            words.update((product.query, product.product_category, *product.attributes))
            words.update(v for _, values in product.options for v in values)
        for goal in self.catalog.goals:
            words.update((*goal.attributes, *goal.options))
        # Whole words, less the site's own (verbs and buttons), so that renaming never touches the interface.
        tokens = {t for phrase in words for t in re.findall(r"[A-Za-z]+", phrase.lower())}
        return tuple(sorted(tokens - _SITE_WORDS))

    def tasks(self, split: str, difficulty: str) -> tuple[TaskInfo, ...]:
        if (split, difficulty) not in self._lists:
            raise UnknownTask(
                f"no tasks for split {split!r} difficulty {difficulty!r} "
                f"(known: {', '.join(SPLITS)} / {', '.join(DIFFICULTIES)})"
            )
        return self._lists[split, difficulty]

    def reset(self, task_id: str, seed: int) -> WebShopEpisode:
        """Start a session. Nothing in a session is random, so `seed` does not change it."""
        task = self._tasks.get(task_id)
        if task is None:
            example = next(iter(self._tasks), "webshop/test/easy/B000000000-0")
            raise UnknownTask(
                f"unknown task id {task_id!r}: expected webshop/<train|test>/<easy|medium|hard>/<ASIN>-<goal index> "
                f"of this catalog ({self.catalog.source}), e.g. {example!r}; list them with tasks(split, difficulty)"
            )
        return WebShopEpisode(task.info, task.goal, task.plan.oracle, self.catalog.products, self.index)
