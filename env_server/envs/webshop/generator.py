"""A seeded catalog generator that writes WebShop's own formats: `items_shuffle`, `items_ins_v2`, `items_human_ins`.

Products come in families around one target: alone (easy), with a few near-duplicates that miss one attribute,
one option value or the price bound (medium), or with many price-trap copies that outrank the target so it lands
beyond the first results page (hard). Each target gets one human-style instruction.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from env_server.envs.webshop.catalog import price_bound
from env_server.envs.webshop.vocab import BRAND_SYLLABLES, FILLER, LINES, OPTION_VALUES, SUBCATEGORIES, SubCategory

_ASIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FAMILY_KINDS = (("easy", 0.40), ("medium", 0.35), ("hard", 0.25))


@dataclass
class GeneratedData:
    """The three files' contents, as WebShop stores them."""

    products: list[dict[str, Any]] = field(default_factory=list)  # items_shuffle
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # items_ins_v2
    human: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # items_human_ins

    def write(self, folder: Path, tag: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in (("items_shuffle", self.products), ("items_ins_v2", self.attributes),
                           ("items_human_ins", self.human)):
            (folder / f"{name}_{tag}.json").write_text(json.dumps(data), encoding="utf-8")


@dataclass
class _Spec:
    """One product before it is written out."""

    sub: SubCategory
    type: str
    brand: str
    line: str
    attributes: list[str]
    options: dict[str, list[str]]
    price: float
    filler: int  # filler sentences in the description: longer text ranks lower under BM25
    boost: int = 0  # extra mentions of the type, so price-trap copies outrank the target


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.asins: set[str] = set()
        self.data = GeneratedData()

    def asin(self) -> str:
        while True:
            asin = "B0" + "".join(self.rng.choice(_ASIN_CHARS) for _ in range(8))
            if asin not in self.asins:
                self.asins.add(asin)
                return asin

    def brand(self) -> str:
        return "".join(self.rng.sample(BRAND_SYLLABLES, 2)).capitalize()

    def base(self) -> _Spec:
        rng = self.rng
        sub = rng.choice(SUBCATEGORIES)
        options = {}
        for name in sub.options:
            pool = OPTION_VALUES[name]
            options[name] = rng.sample(pool, rng.randint(min(3, len(pool)), min(6, len(pool))))
        price = round(rng.choice((rng.uniform(4, 60), rng.uniform(10, 150), rng.uniform(20, 400))), 2)
        return _Spec(sub, rng.choice(sub.types), self.brand(), rng.choice(LINES),
                     rng.sample(sub.attributes, rng.randint(3, min(5, len(sub.attributes) - 1))), options, price,
                     filler=rng.randint(1, 3))

    def emit(self, spec: _Spec) -> str:
        asin = self.asin()
        attrs = [a.title() for a in spec.attributes]
        title = f"{spec.brand} {spec.line} {spec.type.title()}, " + ", ".join(attrs[:2])
        first = f"{attrs[0]} {spec.type} made by {spec.brand}." if attrs else f"{spec.type} made by {spec.brand}."
        bullets = [first] + [f"{a}: a {spec.type} you can count on." for a in attrs[1:]]
        description = f"This {spec.brand} {spec.type} offers {', '.join(spec.attributes)}. " + " ".join(
            self.rng.sample(FILLER, spec.filler)) + f" A {spec.type} for every day." * spec.boost
        self.data.products.append({
            "asin": asin,
            "name": title,
            "full_description": description,
            "small_description": bullets,
            "pricing": f"${spec.price:,.2f}",
            "images": [f"https://images.example.invalid/{asin}.jpg"],
            "product_category": " › ".join(spec.sub.breadcrumb),
            "category": spec.sub.category,
            "query": spec.sub.query,
            "brand": f"Brand: {spec.brand}",
            "average_rating": f"{self.rng.randint(30, 50) / 10} out of 5 stars",
            "customization_options": {
                name: [{"value": v, "image": None} for v in values] for name, values in spec.options.items()
            },
        })
        self.data.attributes[asin] = {"attributes": list(spec.attributes)}
        return asin

    def instruct(self, asin: str, spec: _Spec, kind: str) -> None:
        rng = self.rng
        n_att = {"easy": 1, "medium": 2, "hard": rng.randint(2, 3)}[kind]
        n_opt = {"easy": rng.randint(0, 1), "medium": rng.randint(1, 2), "hard": rng.randint(1, 2)}[kind]
        attrs = spec.attributes[:n_att]
        chosen = [(name, spec.options[name][0]) for name in list(spec.options)[:n_opt]]
        who = f"{spec.brand} " if kind != "hard" else ""
        opener = rng.choice(("i am looking for a", "i need a", "find me a", "i want to buy a"))
        text = f"{opener} {who}{spec.type} that is {' and '.join(attrs)}"
        if chosen:
            text += " with " + " and ".join(f"{name} {value}" for name, value in chosen)
        self.data.human[asin] = [{
            "asin": asin,
            "instruction": text,
            "instruction_attributes": attrs,
            "instruction_options": [v for _, v in chosen],
            "attributes": list(spec.attributes),
            "options": [f"{n}: {v}" for n, v in chosen] or [""],
            "worker_id": "GENERATED",
            "assignment_id": f"{asin}-0",
        }]
        self.data.attributes[asin].update({
            "instruction": f"Find me {spec.type} with {', '.join(attrs)}",
            "instruction_attributes": attrs,
        })

    def family(self, kind: str) -> None:
        rng = self.rng
        target = self.base()
        target.filler = {"easy": 1, "medium": 2, "hard": 8}[kind]
        asin = self.emit(target)
        self.instruct(asin, target, kind)
        upper, _ = price_bound(asin, 0, target.price)
        above = upper if upper < 1e6 else target.price
        if kind == "medium":
            for variant in range(rng.randint(3, 5)):
                copy = _Spec(target.sub, target.type, target.brand, target.line, list(target.attributes),
                             {k: list(v) for k, v in target.options.items()}, target.price, filler=2)
                if variant % 3 == 0:  # misses an asked-for attribute
                    spare = [a for a in target.sub.attributes if a not in target.attributes]
                    copy.attributes[0] = rng.choice(spare)
                elif variant % 3 == 1:  # misses the asked-for first option value
                    first = next(iter(copy.options))
                    copy.options[first] = copy.options[first][1:]
                else:  # costs more than the bound
                    copy.price = round(above + rng.uniform(1, 30), 2)
                self.emit(copy)
        elif kind == "hard":
            for _ in range(rng.randint(12, 16)):
                copy = _Spec(target.sub, target.type, self.brand(), target.line, list(target.attributes),
                             {k: list(v) for k, v in target.options.items()}, round(above + rng.uniform(1, 40), 2),
                             filler=0, boost=1)
                self.emit(copy)


def generate(num_products: int, seed: int) -> GeneratedData:
    """About `num_products` products (whole families, so a few more), shuffled as in `items_shuffle`."""
    gen = _Generator(seed)
    kinds, weights = zip(*_FAMILY_KINDS)
    while len(gen.data.products) < num_products:
        gen.family(gen.rng.choices(kinds, weights)[0])
    gen.rng.shuffle(gen.data.products)
    return gen.data
