"""WebShop's purchase reward: type, attribute, option and price matching, as in the original engine.

    reward = r_type * (n_att + n_opt + [price <= price_upper]) / (len(goal.attributes) + len(goal.options) + 1)

* n_att: goal attributes matched, each by a fuzzy match (token_set_ratio > 85) against one of the product's
  `Attributes`, else by a substring of its title, bullet points or description (all lowercased).
* n_opt: goal options matched by a fuzzy match (token_set_ratio > 85) against one of the selected option values,
  after each side is reduced to the first colour name it contains (`normalize_color`).
* r_type: 1.0, lowered to 0.5 when neither the search query, >= 2 shared breadcrumb crumbs, nor a title-noun
  overlap above 0.2 ties the product to the goal; 0.1 when the noun overlap is below 0.1 and 0.0 when it is 0.

Deviations from the original, all deterministic: nouns come from a word-list heuristic instead of spaCy's tagger
(`title_nouns`), fuzzy scores from rapidfuzz (Levenshtein InDel ratio, as python-Levenshtein) instead of
fuzzywuzzy's difflib ratio, and the colour list is ShiftGym's own, longest names first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from rapidfuzz import fuzz, utils

FUZZY_THRESHOLD = 85

# Colour names that `normalize_color` reduces an option to; longer names first so "navy blue" wins over "blue".
_COLORS = (
    "beige", "black", "blue", "bronze", "brown", "burgundy", "charcoal", "coral", "cream", "gold", "gray", "green",
    "grey", "ivory", "khaki", "lavender", "lime", "magenta", "maroon", "mint", "multicolor", "mustard", "navy",
    "olive", "orange", "peach", "pink", "purple", "red", "rose gold", "silver", "tan", "teal", "turquoise", "violet",
    "white", "wine", "yellow", "light blue", "dark blue", "navy blue", "sky blue", "dark green", "light gray",
    "dark gray", "hot pink", "light pink", "dark brown", "off white",
)
COLOR_SET = tuple(sorted(_COLORS, key=lambda c: (-len(c), c)))

# Words spaCy would not tag NOUN/PROPN in product titles: function words, numbers' companions and common adjectives.
_NOT_NOUNS = frozenset(
    """a an the and or nor but of for with without to from in on at by as into onto over under up down out off
    is are be been was were it its this that these those your you our my me we us they them their he she his her
    not no all any each every both some more most less very too so than then also just only per via plus new
    best great good high low large small big little long short light dark extra super ultra premium natural
    soft hard easy free compatible portable professional durable adjustable comfortable modern classic cute
    elegant lightweight waterproof wireless stainless organic fresh pure original perfect full mini multi
    womens mens women's men's kids unisex black white red blue green pink gray grey purple brown""".split()
)

_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")


def title_nouns(title: str) -> frozenset[str]:
    """The words of a title treated as nouns: lowercased alphabetic words not in a fixed non-noun list."""
    return frozenset(w for w in _WORD.findall(title.lower()) if w not in _NOT_NOUNS and len(w) > 1)


def normalize_color(value: str) -> str:
    """The first colour name found in the value (substring match, as upstream), else the value itself."""
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def fuzzy_match(a: str, b: str) -> bool:
    return fuzz.token_set_ratio(a, b, processor=utils.default_process) > FUZZY_THRESHOLD


@dataclass(frozen=True, slots=True)
class RewardInput:
    """What the reward reads of a product, or of a goal's target (name = title)."""

    title: str
    query: str
    product_category: str
    attributes: tuple[str, ...] = ()
    bullet_points: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class RewardInfo:
    reward: float
    r_type: float
    r_att: float
    r_option: float | None  # None when the goal asks for no option
    r_price: bool
    query_match: bool
    category_match: bool
    title_score: float


def _crumbs(product_category: str) -> set[str]:
    return {c.strip() for c in product_category.split("›")}


def type_reward(bought: RewardInput, target: RewardInput) -> tuple[float, bool, bool, float]:
    """(r_type, query_match, category_match, title_score) of a bought product against the goal's target."""
    query_match = bought.query == target.query
    category_match = len(_crumbs(bought.product_category) & _crumbs(target.product_category)) >= 2
    wanted = title_nouns(target.title)
    title_score = len(title_nouns(bought.title) & wanted) / len(wanted) if wanted else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, query_match, category_match, title_score


def attribute_matches(bought: RewardInput, goal_attributes: Sequence[str]) -> int:
    text = (bought.title.lower(), " ".join(bought.bullet_points).lower(), bought.description.lower())
    matches = 0
    for wanted in goal_attributes:
        if any(fuzzy_match(have, wanted) for have in bought.attributes) or any(wanted in t for t in text):
            matches += 1
    return matches


def option_matches(selected: Iterable[str], goal_options: Sequence[str]) -> int:
    have = [normalize_color(v) for v in selected]
    return sum(1 for wanted in map(normalize_color, goal_options) if any(fuzzy_match(h, wanted) for h in have))


def compute_reward(
    bought: RewardInput,
    target: RewardInput,
    goal_attributes: Sequence[str],
    goal_options: Sequence[str],
    price_upper: float,
    price: float,
    selected: Iterable[str],
) -> RewardInfo:
    """The reward of buying `bought` at `price` with the `selected` option values (see the module docstring)."""
    r_type, query_match, category_match, title_score = type_reward(bought, target)
    n_att = attribute_matches(bought, goal_attributes)
    n_opt = option_matches(selected, goal_options) if goal_options else 0
    r_price = price <= price_upper
    total = (n_att + n_opt + int(r_price)) / (len(goal_attributes) + len(goal_options) + 1)
    return RewardInfo(
        reward=total * r_type,
        r_type=r_type,
        r_att=n_att / len(goal_attributes) if goal_attributes else 0.0,
        r_option=n_opt / len(goal_options) if goal_options else None,
        r_price=r_price,
        query_match=query_match,
        category_match=category_match,
        title_score=title_score,
    )
