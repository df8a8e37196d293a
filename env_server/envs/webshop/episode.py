"""One WebShop session: page state, `search[...]` / `click[...]` handling, the purchase reward and the oracle."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Mapping

from env_server.envs.webshop import pages
from env_server.envs.webshop.catalog import Goal, Product
from env_server.envs.webshop.reward import compute_reward
from env_server.envs.webshop.search import SearchIndex
from env_server.errors import EpisodeFinished
from env_server.types import Observation, Outcome, StepResult, TaskInfo

_ACTION = re.compile(r"^(search|click)\[(.*)\]$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class OraclePlan:
    """How the oracle wins: what it searches for, which product it buys and which option values it picks."""

    query: str
    target: str
    choices: tuple[tuple[str, str], ...]  # (option name, value) to select on the target's page


@dataclass(slots=True)
class WebShopEpisode:
    task: TaskInfo
    goal: Goal
    plan: OraclePlan
    products: Mapping[str, Product]
    index: SearchIndex
    page: str = "search"  # search | results | item | item_sub | done
    query: str = ""
    results: tuple[str, ...] = ()
    page_num: int = 1
    asin: str = ""
    sub_page: str = ""
    selected: dict[str, str] = field(default_factory=dict)
    _done_obs: Observation | None = None

    # ---- observation -------------------------------------------------------------------------------------------
    def observe(self) -> Observation:
        instruction = self.goal.instruction_text
        if self.page == "search":
            return pages.search_page(instruction)
        if self.page == "results":
            found = [self.products[a] for a in self.results]
            return pages.results_page(instruction, self.query, found, self.page_num)
        if self.page == "item":
            return pages.item_page(instruction, self.query, self.products[self.asin], self.selected)
        if self.page == "item_sub":
            return pages.item_sub_page(instruction, self.query, self.products[self.asin], self.sub_page, self.selected)
        assert self._done_obs is not None
        return self._done_obs

    # ---- stepping ----------------------------------------------------------------------------------------------
    def step(self, action: str) -> StepResult:
        if self.page == "done":
            raise EpisodeFinished("the purchase is made and the episode is over; reset to shop again")
        match = _ACTION.match(action.strip())
        if match is None:
            return self._invalid(f"{action!r} is not an action: use search[<query>] or click[<button>]")
        verb, arg = match.group(1), match.group(2).strip()
        if verb == "search":
            if self.page != "search":
                return self._invalid("there is no search bar on this page; click[Back to Search] first")
            if not arg:
                return self._invalid("search for something: search[<query>] with words inside the brackets")
            self.query, self.results, self.page_num, self.page = arg, self.index.search(arg), 1, "results"
            return self._ok()
        return self._click(arg)

    def _click(self, label: str) -> StepResult:
        wanted = label.lower()
        buttons = {a[len("click[") : -1].lower(): a[len("click[") : -1] for a in self.observe().valid_actions
                   if a.startswith("click[")}
        if wanted not in buttons:
            return self._invalid(f"there is no {label!r} button on this page")
        button = buttons[wanted]
        if button == pages.BACK:
            self.page, self.query, self.results, self.asin, self.selected = "search", "", (), "", {}
        elif button == pages.NEXT:
            self.page_num += 1
        elif button == pages.PREV:
            if self.page == "results":
                self.page_num -= 1
            elif self.page == "item":
                self.page, self.asin, self.selected = "results", "", {}
            else:
                self.page = "item"
        elif self.page == "results":
            self.page, self.asin, self.selected = "item", button, {}
        elif button in pages.SUB_PAGES:
            self.page, self.sub_page = "item_sub", button
        elif button == pages.BUY:
            return self._buy()
        else:
            name = next(n for n, values in self.products[self.asin].options if button in values)
            self.selected[name] = button
        return self._ok()

    def _buy(self) -> StepResult:
        product = self.products[self.asin]
        info = compute_reward(product.reward_input(), self.goal.target(), self.goal.attributes, self.goal.options,
                              self.goal.price_upper, product.price, list(self.selected.values()))
        self.page = "done"
        self._done_obs = pages.done_page(self.goal.instruction_text, product, self.selected, product.price,
                                         info.reward, asdict(info))
        success = abs(info.reward - 1.0) < 1e-9
        return StepResult(self._done_obs, reward=info.reward, done=True, truncated=False, action_valid=True,
                          outcome=Outcome(success=success, score=info.reward))

    def _ok(self) -> StepResult:
        return StepResult(self.observe(), reward=0.0, done=False, truncated=False, action_valid=True)

    def _invalid(self, why: str) -> StepResult:
        # WebShop answers an invalid action with the same page; the reason rides along in the fields.
        obs = self.observe()
        obs = Observation(obs.text, obs.valid_actions, {**obs.fields, "message": f"Invalid action: {why}."})
        return StepResult(obs, reward=0.0, done=False, truncated=False, action_valid=False)

    # ---- oracle ------------------------------------------------------------------------------------------------
    def oracle_action(self) -> str:
        target = self.plan.target
        if self.page == "done":
            raise EpisodeFinished("the purchase is made; the oracle has nothing left to do")
        if self.page == "search":
            return f"search[{self.plan.query}]"
        if self.page == "results":
            if target not in self.results:
                return pages.click(pages.BACK)
            wanted_page = self.results.index(target) // pages.RESULTS_PER_PAGE + 1
            if wanted_page == self.page_num:
                return pages.click(target)
            return pages.click(pages.NEXT if wanted_page > self.page_num else pages.PREV)
        if self.asin != target:
            return pages.click(pages.PREV if target in self.results else pages.BACK)
        if self.page == "item_sub":
            return pages.click(pages.PREV)
        for name, value in self.plan.choices:
            if self.selected.get(name) != value:
                return pages.click(value)
        return pages.click(pages.BUY)

    def close(self) -> None:
        self.results = ()
