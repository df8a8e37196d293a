"""Loads WebShop's own data files (products, attributes, human instructions, goal dicts) into products and goals.

Follows princeton-nlp/WebShop `load_products`, `get_human_goals` and `get_synthetic_goals`; the one change is that
the two random draws (a price inside a listed range, the price bound of a goal) come from RNGs built from the ASIN
(and goal index), so a load is the same in every process.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from env_server.envs.webshop.reward import RewardInput

PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_BOUND = 1_000_000.0
_PRICE_CLAUSE = re.compile(r",\s*and price lower than [\d.]+ dollars\s*$")


@dataclass(frozen=True, slots=True)
class Product:
    asin: str
    title: str
    description: str
    bullet_points: tuple[str, ...]
    price: float  # what Buy Now charges
    price_text: str  # "$19.99" or "$10.0 to $20.0", as the pages show it
    options: tuple[tuple[str, tuple[str, ...]], ...]  # (option name, values) in file order
    attributes: tuple[str, ...]
    category: str
    query: str
    product_category: str
    rating: str = "N.A."

    def reward_input(self) -> RewardInput:
        return RewardInput(
            self.title, self.query, self.product_category, self.attributes, self.bullet_points, self.description
        )


@dataclass(frozen=True, slots=True)
class Goal:
    asin: str
    index: int  # this goal's position among the goals of its ASIN, in load order: part of the stable task id
    instruction_text: str
    attributes: tuple[str, ...]
    options: tuple[str, ...]  # option values; a synthetic goal's {name: value} keeps its values
    price_upper: float
    name: str
    query: str
    category: str
    product_category: str
    weight: float = 1.0

    @property
    def search_text(self) -> str:
        """The instruction without its price clause: the words the oracle searches with."""
        return _PRICE_CLAUSE.sub("", self.instruction_text).strip()

    def target(self) -> RewardInput:
        return RewardInput(self.name, self.query, self.product_category)


@dataclass(frozen=True, slots=True)
class Catalog:
    products: Mapping[str, Product]  # by ASIN, in file order
    goals: tuple[Goal, ...]  # in load order, before the split shuffle
    source: str


def parse_pricing(pricing: object) -> tuple[float, ...]:
    """`"$19.99"` -> (19.99,); `"$10.00 - $20.00"` -> (10.0, 20.0); empty or missing -> (100.0,)."""
    if not pricing:
        return (100.0,)
    values = []
    for part in str(pricing).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            values.append(float(digits))
        except ValueError:
            continue
    return tuple(values[:2]) or (100.0,)


def _charged_price(asin: str, pricing: tuple[float, ...]) -> float:
    if len(pricing) == 1:
        return pricing[0]
    return random.Random(f"webshop-price/{asin}").uniform(pricing[0], pricing[1])


def price_bound(asin: str, index: int, price: float) -> tuple[float, str]:
    """(price_upper, price clause): the larger of two draws from the first four multiples of 10 above the price."""
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return NO_PRICE_BOUND, ""
    upper = max(random.Random(f"webshop-goal-price/{asin}/{index}").sample(steps, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def _clean_options(raw: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, dict):
        return ()
    options = []
    for name, contents in raw.items():
        if not contents:
            continue
        values = tuple(str(c["value"]).strip().replace("/", " | ").lower() for c in contents)
        options.append((str(name).lower(), values))
    return tuple(options)


def load_products(
    raw_products: Iterable[Mapping[str, Any]], attributes: Mapping[str, Any] | None
) -> dict[str, Product]:
    """Products from an `items_shuffle*.json` array; `attributes` is the `items_ins_v2*.json` object, if any."""
    products: dict[str, Product] = {}
    for raw in raw_products:
        asin = str(raw.get("asin", "nan"))
        if asin == "nan" or len(asin) > 10 or asin in products:
            continue
        bullets = raw.get("small_description") or [""]
        bullets = (bullets,) if isinstance(bullets, str) else tuple(str(b) for b in bullets)
        pricing = parse_pricing(raw.get("pricing"))
        price_text = f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}"
        ins = (attributes or {}).get(asin) or {}
        products[asin] = Product(
            asin=asin,
            title=str(raw.get("name", "")),
            description=str(raw.get("full_description") or ""),
            bullet_points=bullets,
            price=_charged_price(asin, pricing),
            price_text=price_text,
            options=_clean_options(raw.get("customization_options")),
            attributes=tuple(ins["attributes"]) if "attributes" in ins else ("DUMMY_ATTR",),
            category=str(raw.get("category", "")),
            query=str(raw.get("query", "")).lower().strip(),
            product_category=str(raw.get("product_category", "")),
        )
    return products


def _goal(product: Product, index: int, instruction: str, attributes: Sequence[str], options: Sequence[str]) -> Goal:
    upper, clause = price_bound(product.asin, index, product.price)
    return Goal(
        asin=product.asin,
        index=index,
        instruction_text=instruction + clause,
        attributes=tuple(attributes),
        options=tuple(options),
        price_upper=upper,
        name=product.title,
        query=product.query,
        category=product.category,
        product_category=product.product_category,
    )


def human_goals(products: Mapping[str, Product], human: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Goal]:
    """Goals from `items_human_ins*.json`; records without instruction attributes are skipped, as upstream."""
    goals = []
    for asin, product in products.items():
        index = 0
        for record in human.get(asin) or ():
            if not record.get("instruction_attributes"):
                continue
            instruction = str(record["instruction"]).strip(".")
            asked = record.get("instruction_options") or ()
            goals.append(_goal(product, index, instruction, record["instruction_attributes"], asked))
            index += 1
    return goals


def synthetic_goals(products: Mapping[str, Product], ins: Mapping[str, Mapping[str, Any]]) -> list[Goal]:
    """Goals from the synthetic instructions of `items_ins_v2*.json`: one per combination of option values."""
    goals = []
    for asin, product in products.items():
        record = ins.get(asin) or {}
        if not record.get("instruction") or not record.get("instruction_attributes"):
            continue
        combos: list[tuple[tuple[str, str], ...]] = [()]
        for name, values in sorted(product.options):
            combos = [c + ((name, v),) for c in combos for v in values]
        for index, combo in enumerate(combos):
            option_text = ", and ".join(f"{k}: {v}" for k, v in combo)
            instruction = str(record["instruction"]) + (f" with {option_text}" if option_text else "")
            goals.append(_goal(product, index, instruction, record["instruction_attributes"], [v for _, v in combo]))
    return goals


def goals_from_dicts(products: Mapping[str, Product], dicts: Sequence[Mapping[str, Any]]) -> list[Goal]:
    """Goal dicts as WebShop's engine builds them (e.g. the `goal` of a session log); unknown ASINs are skipped."""
    goals, seen = [], dict[str, int]()
    for d in dicts:
        asin = str(d["asin"])
        if asin not in products:
            continue
        index = seen.get(asin, 0)
        seen[asin] = index + 1
        options = d.get("goal_options") or []
        values = [str(v) for v in (options.values() if isinstance(options, dict) else options)]
        goals.append(
            Goal(
                asin=asin,
                index=index,
                instruction_text=str(d["instruction_text"]),
                attributes=tuple(d.get("attributes") or ()),
                options=tuple(values),
                price_upper=float(d.get("price_upper", NO_PRICE_BOUND)),
                name=str(d.get("name") or products[asin].title),
                query=str(d.get("query", products[asin].query)).lower().strip(),
                category=str(d.get("category", products[asin].category)),
                product_category=str(d.get("product_category", products[asin].product_category)),
                weight=float(d.get("weight", 1.0)),
            )
        )
    return goals


@dataclass(frozen=True, slots=True)
class DataFiles:
    """Where the original files are. Goals come from `goals`, else `human_instructions`, else `attributes`."""

    products: Path  # items_shuffle*.json
    attributes: Path | None = None  # items_ins_v2*.json
    human_instructions: Path | None = None  # items_human_ins*.json
    goals: Path | None = None  # a JSON list of goal dicts (ShiftGym extension)

    @classmethod
    def discover(cls, folder: Path) -> DataFiles:
        def one(pattern: str, required: bool = False) -> Path | None:
            found = sorted(folder.glob(pattern))
            if len(found) > 1:
                names = ", ".join(p.name for p in found)
                raise ValueError(f"{folder}: several files match {pattern!r} ({names}); keep one")
            if required and not found:
                raise ValueError(f"{folder}: no {pattern!r} (WebShop's product file) found")
            return found[0] if found else None

        products = one("items_shuffle*.json", required=True)
        assert products is not None
        return cls(products, one("items_ins_v2*.json"), one("items_human_ins*.json"), one("goals*.json"))


def build_catalog(raw_products: Sequence[Mapping[str, Any]], attributes: Mapping[str, Any] | None = None,
                  human: Mapping[str, Any] | None = None, goal_dicts: Sequence[Mapping[str, Any]] | None = None,
                  source: str = "in memory") -> Catalog:
    products = load_products(raw_products, attributes)
    if goal_dicts is not None:
        goals = goals_from_dicts(products, goal_dicts)
    elif human is not None:
        goals = human_goals(products, human)
    elif attributes is not None:
        goals = synthetic_goals(products, attributes)
    else:
        raise ValueError(f"{source}: no goals: give a goals, items_human_ins or items_ins_v2 file")
    if not goals:
        raise ValueError(f"{source}: the files give no goal whose product is in the product file")
    return Catalog(products, tuple(goals), source)


def load_catalog(files: DataFiles) -> Catalog:
    def read(path: Path | None) -> Any:
        return None if path is None else json.loads(path.read_text(encoding="utf-8"))

    return build_catalog(
        read(files.products), read(files.attributes), read(files.human_instructions), read(files.goals),
        source=str(files.products.parent),
    )
