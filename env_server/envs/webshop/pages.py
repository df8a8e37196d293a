"""Renders WebShop's pages as its text mode does: the visible strings of a page joined with ` [SEP] `.

Each page also lists its clickables and a structured copy of itself (Observation.fields). A page with a search
bar lists the placeholder `search[<query>]`: any text may stand for `<query>`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from env_server.envs.webshop.catalog import Product
from env_server.types import Observation

SEP = " [SEP] "
RESULTS_PER_PAGE = 10
SEARCH_PLACEHOLDER = "search[<query>]"
BACK, PREV, NEXT, BUY = "Back to Search", "< Prev", "Next >", "Buy Now"
SUB_PAGES = ("Description", "Features", "Reviews")


def click(label: str) -> str:
    return f"click[{label}]"


def page_count(total: int) -> int:
    return max(1, -(-total // RESULTS_PER_PAGE))


def search_page(instruction: str) -> Observation:
    text = SEP.join(("WebShop", "Instruction:", instruction, "Search"))
    return Observation(text, (SEARCH_PLACEHOLDER,), {"page": "search", "instruction": instruction})


def results_page(instruction: str, query: str, results: Sequence[Product], page_num: int) -> Observation:
    shown = results[(page_num - 1) * RESULTS_PER_PAGE : page_num * RESULTS_PER_PAGE]
    buttons = [BACK] + ([PREV] if page_num > 1 else []) + ([NEXT] if page_num < page_count(len(results)) else [])
    parts = ["Instruction:", instruction, BACK, f"Page {page_num} (Total results: {len(results)})", *buttons[1:]]
    for product in shown:
        parts += [product.asin, product.title, product.price_text]
    fields = {
        "page": "results",
        "instruction": instruction,
        "query": query,
        "page_num": page_num,
        "total_results": len(results),
        "results": [{"asin": p.asin, "title": p.title, "price": p.price_text} for p in shown],
    }
    return Observation(SEP.join(parts), tuple(map(click, buttons + [p.asin for p in shown])), fields)


def _item_fields(product: Product) -> dict[str, Any]:
    return {
        "asin": product.asin,
        "title": product.title,
        "price": product.price_text,
        "rating": product.rating,
        "options": {name: list(values) for name, values in product.options},
    }


def option_labels(product: Product) -> tuple[str, ...]:
    """The option buttons, each value once, in page order."""
    return tuple(dict.fromkeys(v for _, values in product.options for v in values))


def item_page(instruction: str, query: str, product: Product, selected: Mapping[str, str]) -> Observation:
    parts = ["Instruction:", instruction, BACK, PREV]
    for name, values in product.options:
        parts += [name, *values]
    parts += [product.title, f"Price: {product.price_text}", f"Rating: {product.rating}", *SUB_PAGES, BUY]
    buttons = (BACK, PREV, *option_labels(product), *SUB_PAGES, BUY)
    fields = {"page": "item", "instruction": instruction, "query": query, "item": _item_fields(product),
              "selected_options": dict(selected)}
    return Observation(SEP.join(parts), tuple(map(click, buttons)), fields)


def sub_page_lines(product: Product, sub_page: str) -> tuple[str, ...]:
    if sub_page == "Description":
        return (product.description,) if product.description else ()
    if sub_page == "Features":
        return tuple(b for b in product.bullet_points if b)
    return ()  # WebShop no longer loads reviews: the page is empty


def item_sub_page(instruction: str, query: str, product: Product, sub_page: str,
                  selected: Mapping[str, str]) -> Observation:
    lines = sub_page_lines(product, sub_page)
    fields = {"page": "item_sub", "instruction": instruction, "query": query, "item": _item_fields(product),
              "selected_options": dict(selected), "sub_page": sub_page, "sub_page_text": list(lines)}
    return Observation(SEP.join(("Instruction:", instruction, BACK, PREV, *lines)), (click(BACK), click(PREV)), fields)


def done_page(instruction: str, product: Product, selected: Mapping[str, str], price: float,
              reward: float, reward_info: Mapping[str, Any]) -> Observation:
    options = ", ".join(f"{k}: {v}" for k, v in selected.items()) or "none"
    text = SEP.join(("Thank you for shopping with us!", "Purchased", "asin", product.asin, "options", options,
                     "Your score (min 0.0, max 1.0)", f"{reward:.4f}"))
    fields = {"page": "done", "instruction": instruction,
              "purchase": {"asin": product.asin, "title": product.title, "options": dict(selected), "price": price},
              "reward": reward, "reward_info": dict(reward_info)}
    return Observation(text, (), fields)
