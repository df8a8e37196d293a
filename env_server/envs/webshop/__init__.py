"""WebShop (princeton-nlp/WebShop) re-implemented: its text-mode site, search and reward over its own data formats.

An agent reads an instruction ("i need a ... with color pink, and price lower than 40.00 dollars"), acts with
`search[<query>]` on the search page and `click[<button>]` elsewhere (Back to Search, Next >, < Prev, an ASIN, an
option value, Description / Features / Reviews, Buy Now), and the episode ends when it buys. Pages are the visible
strings joined with ` [SEP] `; `Observation.fields` carries the page as structured data; `valid_actions` lists every
clickable as `click[...]` and, on the search page only (the one page with a search bar), the placeholder
`search[<query>]`, where any text may stand for `<query>`. An invalid action leaves the page as it was (WebShop's own
answer) with `action_valid=False` and the reason in `fields["message"]`.

Data: WebShop's files (`items_shuffle*.json`, `items_ins_v2*.json`, `items_human_ins*.json`, or a list of goal dicts
`goals*.json`) from the `data` argument or the folder in $SHIFTGYM_WEBSHOP_DATA; otherwise a catalog generated in
memory in the same formats ($SHIFTGYM_WEBSHOP_PRODUCTS products, default 10,000, fixed generator seed).

Difficulty (measured per goal on the served catalog, see plan.py): easy / medium / hard from the number of asked
attributes and options, near-duplicate distractors and over-budget look-alikes ranked above the target, and whether
the target ranks beyond the first results page for the instruction's words.

Success: the purchase earns reward 1. Score: the purchase reward in [0, 1] (reward.py states the formula);
0 if the episode ends without a purchase.
"""

from env_server.envs.webshop.env import WebShopEnv
from env_server.envs.webshop.episode import WebShopEpisode

__all__ = ["WebShopEnv", "WebShopEpisode"]
