"""Per-goal analysis done once at start-up: the oracle's route to the target and the goal's difficulty.

Difficulty, measured on the catalog being served (so real files get levels too):

* hard: the target ranks beyond the first results page for the goal's own words, or the goal asks for 5 or more
  attributes and options together;
* medium: 3 or more attributes and options, or 2 or more near-duplicates of the target (same sub-category query,
  >= 75% of its title nouns) on the pages up to the target, or a near-duplicate above it that breaks the price bound;
* easy: everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from rapidfuzz import fuzz, utils

from env_server.envs.webshop import pages
from env_server.envs.webshop.catalog import Goal, Product
from env_server.envs.webshop.episode import OraclePlan
from env_server.envs.webshop.reward import FUZZY_THRESHOLD, compute_reward, normalize_color, title_nouns
from env_server.envs.webshop.search import SearchIndex

NEAR_DUPLICATE_NOUN_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class GoalPlan:
    oracle: OraclePlan
    rank: int  # 1-based rank of the target for the oracle's query
    steps: int  # oracle actions from the search page to the purchase
    oracle_reward: float
    near_duplicates: int
    price_trap: bool
    difficulty: str


def choose_options(product: Product, goal_options: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """For each goal option, the (name, value) on the product's page that matches it best; one value per name."""
    first_group = {}
    for name, values in product.options:
        for v in values:
            first_group.setdefault(v, name)  # a click selects the value in the first group that has it
    choices: dict[str, str] = {}
    for wanted in goal_options:
        best: tuple[float, str, str] | None = None
        for value, name in first_group.items():
            if name in choices:
                continue
            if value == wanted:
                score = 300.0
            elif normalize_color(value) == normalize_color(wanted):
                score = 200.0
            else:
                score = fuzz.token_set_ratio(normalize_color(value), normalize_color(wanted),
                                             processor=utils.default_process)
                if score <= FUZZY_THRESHOLD:
                    continue
            if best is None or score > best[0]:
                best = (score, name, value)
        if best is not None:
            choices[best[1]] = best[2]
    return tuple(choices.items())


def _route(index: SearchIndex, query: str, target: str) -> tuple[tuple[str, ...], int]:
    results = index.search(query)
    return results, (results.index(target) + 1 if target in results else 0)


def plan_goal(goal: Goal, products: Mapping[str, Product], index: SearchIndex) -> GoalPlan | None:
    """None when the target cannot be found by searching either the goal's words or the product title."""
    product = products[goal.asin]
    query = goal.search_text.lower()
    results, rank = _route(index, query, goal.asin)
    if rank == 0:
        query = product.title.lower()
        results, rank = _route(index, query, goal.asin)
        if rank == 0:
            return None
    choices = choose_options(product, goal.options)
    info = compute_reward(product.reward_input(), goal.target(), goal.attributes, goal.options, goal.price_upper,
                          product.price, [v for _, v in choices])
    steps = 1 + (rank - 1) // pages.RESULTS_PER_PAGE + 1 + len(choices) + 1
    wanted = title_nouns(product.title)
    near = 0
    trap = False
    for other in results[: max(rank, pages.RESULTS_PER_PAGE)]:
        if other == goal.asin:
            continue
        candidate = products[other]
        if candidate.query != product.query or not wanted:
            continue
        if len(title_nouns(candidate.title) & wanted) / len(wanted) >= NEAR_DUPLICATE_NOUN_SHARE:
            near += 1
            trap = trap or (results.index(other) < rank - 1 and candidate.price > goal.price_upper)
    required = len(goal.attributes) + len(goal.options)
    if rank > pages.RESULTS_PER_PAGE or required >= 5:
        difficulty = "hard"
    elif required >= 3 or near >= 2 or trap:
        difficulty = "medium"
    else:
        difficulty = "easy"
    return GoalPlan(OraclePlan(query, goal.asin, choices), rank, steps, info.reward, near, trap, difficulty)
