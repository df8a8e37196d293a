"""WebShop: text pages, actions, the reward formula, the original file formats, splits and the oracle."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from env_server.envs.webshop import WebShopEnv
from env_server.envs.webshop.catalog import DataFiles, parse_pricing
from env_server.envs.webshop.generator import generate
from env_server.envs.webshop.reward import RewardInput, compute_reward, fuzzy_match, normalize_color
from env_server.envs.webshop.vocab import FILLER, OPTION_VALUES, SUBCATEGORIES
from env_server.errors import EpisodeFinished, UnknownTask
from tests.formats import formats_path

SPLITS, LEVELS = ("train", "test"), ("easy", "medium", "hard")



@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv()  # the default: 10,000 generated products


def _play_oracle(env: WebShopEnv, task_id: str, seed: int = 0, limit: int = 10):
    episode = env.reset(task_id, seed)
    transcript = [episode.observe()]
    for _ in range(limit):
        result = episode.step(episode.oracle_action())
        transcript.append(result)
        if result.done:
            return result, transcript
    raise AssertionError(f"{task_id}: the oracle did not buy within {limit} turns")


# ---- tasks, splits, ids -----------------------------------------------------------------------------------------

def test_default_catalog_has_20_tasks_per_split_and_difficulty_and_the_oracle_wins_them(env):
    for split, level in itertools.product(SPLITS, LEVELS):
        tasks = env.tasks(split, level)
        assert len(tasks) >= 20, (split, level, len(tasks))
        assert env.spec.split(split).task_counts[level] == len(tasks)
        for task in tasks[:20]:
            result, _ = _play_oracle(env, task.task_id)
            assert result.reward == 1.0 and result.outcome.success and result.outcome.score == 1.0, task


def test_hard_tasks_need_the_next_page_or_many_requirements(env):
    task = next(t for t in env.tasks("test", "hard") if int(t.metadata["target_rank"]) > 10)
    _, transcript = _play_oracle(env, task.task_id)
    assert any("Page 2 (Total results:" in step.observation.text for step in transcript[1:])


def test_splits_are_disjoint_and_ids_stable(env):
    pattern = re.compile(r"^webshop/(train|test)/(easy|medium|hard)/B0[0-9A-Z]{8}-\d+$")
    ids = {s: {t.task_id for lvl in LEVELS for t in env.tasks(s, lvl)} for s in SPLITS}
    assert not ids["train"] & ids["test"]
    goals = {s: {i.rsplit("/", 1)[1] for i in ids[s]} for s in SPLITS}
    assert not goals["train"] & goals["test"]
    assert all(pattern.match(i) for s in SPLITS for i in ids[s])
    assert env.tasks("test", "easy") == env.tasks("test", "easy")


def test_same_arguments_give_the_same_tasks_and_files_round_trip(tmp_path):
    in_memory = WebShopEnv(num_products=400)
    generate(400, 20220427).write(tmp_path, "400")
    from_files = WebShopEnv(tmp_path)
    for split, level in itertools.product(SPLITS, LEVELS):
        assert in_memory.tasks(split, level) == from_files.tasks(split, level)
        assert in_memory.tasks(split, level) == WebShopEnv(num_products=400).tasks(split, level)


def test_same_id_and_seed_give_the_same_episode(env):
    task_id = env.tasks("train", "medium")[3].task_id
    _, first = _play_oracle(env, task_id, seed=7)
    _, second = _play_oracle(env, task_id, seed=7)
    assert first == second


def test_unknown_task_ids_and_names_are_rejected_with_help(env):
    with pytest.raises(UnknownTask, match=r"expected webshop/<train\|test>/<easy\|medium\|hard>/<ASIN>"):
        env.reset("webshop/test/easy/NOPE-0", 0)
    with pytest.raises(UnknownTask, match="known: train, test"):
        env.tasks("dev", "easy")


def test_the_index_is_built_once_and_shared_by_episodes(env):
    a = env.reset(env.tasks("test", "easy")[0].task_id, 0)
    b = env.reset(env.tasks("train", "hard")[0].task_id, 1)
    assert a.index is b.index is env.index


# ---- pages and actions ------------------------------------------------------------------------------------------

def test_pages_render_like_webshop_text_mode(env):
    task = env.tasks("test", "hard")[0]
    episode = env.reset(task.task_id, 0)
    first = episode.observe()
    instruction = task.metadata["instruction"]
    assert first.text == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert first.valid_actions == ("search[<query>]",) and first.fields["page"] == "search"
    results = episode.step("search[" + episode.goal.search_text + "]").observation
    head = f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] Page 1 (Total results: "
    assert results.text.startswith(head)
    assert "click[Next >]" in results.valid_actions and "click[< Prev]" not in results.valid_actions
    assert len(results.fields["results"]) == 10
    first_hit = results.fields["results"][0]
    assert f"[SEP] {first_hit['asin']} [SEP] {first_hit['title']} [SEP] {first_hit['price']}" in results.text
    item = episode.step(f"click[{first_hit['asin'].lower()}]").observation  # buttons match case-insensitively
    assert item.fields["page"] == "item" and item.fields["item"]["asin"] == first_hit["asin"]
    assert item.text.endswith("[SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
    for name, values in item.fields["item"]["options"].items():
        assert f"[SEP] {name} [SEP] {' [SEP] '.join(values)} [SEP]" in item.text
    value = next(iter(item.fields["item"]["options"].values()))[0]
    assert episode.step(f"click[{value}]").observation.fields["selected_options"]
    features = episode.step("click[Features]").observation
    assert features.valid_actions == ("click[Back to Search]", "click[< Prev]")
    assert features.fields["sub_page_text"] == list(episode.products[first_hit["asin"]].bullet_points)
    assert episode.step("click[< Prev]").observation.fields["page"] == "item"
    assert episode.step("click[< Prev]").observation.fields["page"] == "results"


def test_invalid_actions_keep_the_page_and_say_why(env):
    episode = env.reset(env.tasks("test", "easy")[0].task_id, 0)
    before = episode.observe()
    for action in ("buy it", "click[Buy Now]", "search[]"):
        result = episode.step(action)
        assert not result.action_valid and not result.done and result.reward == 0.0
        assert result.observation.text == before.text and result.observation.fields["message"].startswith("Invalid")
    episode.step("search[anything at all]")
    result = episode.step("search[again]")
    assert not result.action_valid and "Back to Search" in result.observation.fields["message"]


def test_the_oracle_recovers_from_any_state(env):
    task = next(t for t in env.tasks("test", "hard") if int(t.metadata["target_rank"]) > 10)
    episode = env.reset(task.task_id, 0)
    episode.step("search[completely unrelated words like garden hose]")
    wrong = episode.observe().fields["results"]
    if wrong:
        episode.step(f"click[{wrong[0]['asin']}]")
        episode.step("click[Description]")
    for _ in range(14):
        result = episode.step(episode.oracle_action())
        if result.done:
            break
    assert result.outcome.success
    episode = env.reset(task.task_id, 0)
    episode.step(episode.oracle_action())  # search
    episode.step("click[Next >]")
    episode.step("click[Next >]")  # past the target's page (or an invalid click): the oracle walks back
    while episode.page != "item":
        episode.step(episode.oracle_action())
    product = episode.products[episode.plan.target]
    wrong = next(v for name, values in product.options for v in values if (name, v) not in episode.plan.choices)
    episode.step(f"click[{wrong}]")
    episode.step("click[Features]")
    for _ in range(14):
        result = episode.step(episode.oracle_action())
        if result.done:
            break
    assert result.outcome.success


def test_buying_the_wrong_thing_scores_below_one_and_ends(env):
    task = env.tasks("test", "medium")[0]
    episode = env.reset(task.task_id, 0)
    episode.step(episode.oracle_action())
    other = next(r["asin"] for r in episode.observe().fields["results"] if r["asin"] != episode.plan.target)
    episode.step(f"click[{other}]")
    result = episode.step("click[Buy Now]")
    assert result.done and not result.outcome.success and 0.0 <= result.reward < 1.0
    assert result.observation.fields["page"] == "done"
    with pytest.raises(EpisodeFinished):
        episode.step("click[Back to Search]")


# ---- reward: worked examples ------------------------------------------------------------------------------------

def _reward(bought, target, attrs, options, upper, price, selected):
    return compute_reward(bought, target, attrs, options, upper, price, selected)


def test_reward_worked_example_attributes_options_price():
    target = RewardInput("Velora Nova Night Cream", "face care", "Beauty & Personal Care › Skin Care › Face")
    bought = RewardInput("Velora Nova Night Cream", "face care", "Beauty & Personal Care › Skin Care › Face",
                         attributes=("paraben free formula",), description="rich in vitamin c")
    # attributes: "paraben free" fuzzy-matches an Attribute (token subset: 100), "vitamin c" is in the description,
    # "long lasting" is nowhere; options: lavender matches, "8 oz" vs "4 oz" scores 75 (<= 85); price 12 <= 20.
    info = _reward(bought, target, ("paraben free", "vitamin c", "long lasting"), ("lavender", "8 oz"), 20.0, 12.0,
                   ["lavender", "4 oz"])
    assert info.reward == pytest.approx((2 + 1 + 1) / (3 + 2 + 1))
    assert (info.r_type, info.r_att, info.r_option, info.r_price) == (1.0, pytest.approx(2 / 3), 0.5, True)
    over = _reward(bought, target, ("paraben free",), (), 20.0, 20.01, [])
    assert over.reward == pytest.approx(1 / 2) and not over.r_price


def test_reward_worked_example_type_factor():
    target = RewardInput("Velora Nova Night Cream Jar Lid", "face care", "Beauty › Skin Care › Face")
    # 1 of 6 title nouns shared (0.167), other query, 1 shared crumb: no match -> r_type 0.5
    half = RewardInput("Night Lamp Shade", "lamps", "Home › Lighting")
    assert _reward(half, target, ("x",), (), 50, 10, []).r_type == 0.5
    assert _reward(half, target, ("x",), (), 50, 10, []).reward == pytest.approx(0.5 * 1 / 2)
    # same query rescues the type even at 0.167
    assert _reward(RewardInput("Night Lamp Shade", "face care", "Home"), target, ("x",), (), 50, 10, []).r_type == 1.0
    # no shared noun -> 0; below 0.1 -> 0.1 whatever else matches
    hose = RewardInput("Garden Hose", "face care", "Beauty › Skin Care")
    assert _reward(hose, target, ("x",), (), 50, 10, []).reward == 0.0
    long_target = RewardInput("Bag Bin Cream Jar Lid Box Pot Tub Cap Pack Kit", "face care", "Beauty › Skin Care")
    low = _reward(RewardInput("Cream Soda", "face care", "Beauty › Skin Care"), long_target, ("x",), (), 50, 10, [])
    assert low.title_score == pytest.approx(1 / 11) and low.r_type == 0.1


def test_option_matching_normalizes_colors_like_webshop():
    assert normalize_color("z2-pink") == "pink" and normalize_color("rl56 | 60 silver mist") == "silver"
    assert fuzzy_match(normalize_color("navy blue"), normalize_color("dark navy blue"))
    assert not fuzzy_match("pack of two", "pack of six")


@pytest.mark.parametrize("log", ["webshop_human_trajectory_20220427_1_15.jsonl",
                                 "webshop_human_trajectory_20220427_1_18.jsonl"])
def test_reward_reproduces_the_logged_human_sessions(log):
    lines = [json.loads(line) for line in formats_path(log).read_text().splitlines() if line.strip()]
    goal, done = lines[0]["goal"], lines[-1]
    logged = done["reward_info"]
    target = RewardInput(goal["name"], goal["query"], goal["product_category"])
    # The bought product's record is not in the sample: stand in one that matches what the log says of it.
    crumbs = goal["product_category"] if logged["category_match"] else "Other › Things"
    title = goal["name"]
    if logged["r_att"] == 0:
        for attribute in goal["attributes"]:
            title = re.sub(re.escape(attribute), "", title, flags=re.IGNORECASE)
    bought = RewardInput(title, goal["query"] if logged["query_match"] else "something else", crumbs)
    info = compute_reward(bought, target, goal["attributes"], goal["goal_options"], goal["price_upper"],
                          done["content"]["price"], list(done["content"]["options"].values()))
    assert info.reward == pytest.approx(done["reward"])
    assert info.r_option == logged.get("r_option") and info.r_price == logged["r_price"]


# ---- the original file formats ----------------------------------------------------------------------------------

def _product(asin, name, query, crumbs, category, options, pricing, bullets):
    return {"asin": asin, "name": name, "full_description": f"about {name}", "small_description": bullets,
            "pricing": pricing, "images": [f"https://img.invalid/{asin}.jpg"], "product_category": crumbs,
            "category": category, "query": query, "customization_options": options, "brand": "Brand: Test",
            "product_information": None}


def test_real_samples_load_and_serve(tmp_path):
    goals = json.loads(formats_path("webshop_human_goals_sample.json").read_text())
    ins_path = formats_path("webshop_items_ins_v2_1000_sample.json")
    ins = json.loads(ins_path.read_text())
    raw = []
    for i, g in enumerate(goals):  # products for the real goals, with the asked options as raw ScraperAPI values
        options = {f"opt{k}": [{"value": v.upper().replace(" | ", "/"), "image": None}, {"value": "other"}]
                   for k, v in enumerate(g["goal_options"])}
        upper = g["price_upper"]
        pricing = f"${upper - 4:.2f}" if i % 2 else f"${upper - 9:.2f} - ${upper - 1:.2f}"  # a range on even rows
        raw.append(_product(g["asin"], g["name"], g["query"], g["product_category"], g["category"], options or None,
                            pricing, [", ".join(g["attributes"])]))
    for asin, record in ins.items():  # and for the real attribute entries
        raw.append(_product(asin, f"Item {asin} " + " ".join(record["attributes"]), "beauty things",
                            "Beauty & Personal Care › Skin Care", "beauty",
                            {"size": [{"value": "Small"}, {"value": "Large"}]},
                            "$12.50", "one line"))
    products = tmp_path / "items_shuffle_test.json"
    products.write_text(json.dumps(raw))
    goals_path = formats_path("webshop_human_goals_sample.json")
    served = WebShopEnv(DataFiles(products, attributes=ins_path, goals=goals_path))
    tasks = [t for s in SPLITS for lvl in LEVELS for t in served.tasks(s, lvl)]
    assert len(tasks) == len(goals)
    assert served.catalog.products["B07DJJXGB5"].attributes == tuple(ins["B07DJJXGB5"]["attributes"])
    assert served.catalog.products["B08GFNJN5R"].attributes == ()
    wig = next(g for g in served.catalog.goals if g.asin == "B07NDLGGS1")
    assert wig.options == ("rl56 | 60 silver mist",)  # a raw "RL56/60 SILVER MIST" is cleaned to the goal's form
    assert "rl56 | 60 silver mist" in served.catalog.products[wig.asin].options[0][1]
    for task in tasks:
        result, _ = _play_oracle(served, task.task_id)
        assert result.outcome.success, task
    # synthetic goals from the real items_ins_v2 instructions: one per option combination
    synthetic = WebShopEnv(DataFiles(products, attributes=ins_path))
    tasks = [t for s in SPLITS for lvl in LEVELS for t in synthetic.tasks(s, lvl)]
    assert len(tasks) == 2 * sum(1 for r in ins.values() if "instruction" in r)
    assert all(_play_oracle(synthetic, t.task_id)[0].outcome.success for t in tasks)


def test_a_hand_written_sample_in_the_original_format_is_served(tmp_path, monkeypatch):
    crumbs = "Clothing, Shoes & Jewelry › Women › Shoes › Loafers & Slip-Ons"
    raw = [
        _product("B000000001", "Sunny Canvas Loafers for Women", "women's loafers & slip-ons", crumbs, "fashion",
                 {"Color": [{"value": "Pink", "image": None}, {"value": "Navy/White", "image": None}],
                  "Size": [{"value": "8"}, {"value": "9"}], "Width": None}, "$1,299.00", "rubber sole and memory foam"),
        _product("B000000002", "Sunny Canvas Loafers Wide", "women's loafers & slip-ons", crumbs, "fashion", {},
                 "$10.00 - $20.00", ["rubber sole"]),
        _product("B000000003", "Tea Tree Body Scrub", "body scrubs", "Beauty & Personal Care › Bath", "beauty", "",
                 "", ["tea tree oil"]),
        _product("nan", "skipped", "x", "a › b", "beauty", None, "$1", ["x"]),
        _product("B000000001", "a later duplicate, skipped", "x", "a › b", "beauty", None, "$1", ["x"]),
    ]
    human = {
        "B000000001": [{"instruction": "i need pink canvas loafers with rubber sole in size 8.",
                        "instruction_attributes": ["rubber sole"], "instruction_options": ["pink", "8"]},
                       {"instruction": "no attributes: skipped", "instruction_attributes": [],
                        "instruction_options": []}],
        "B000000002": [{"instruction": "wide loafers with a rubber sole", "instruction_attributes": ["rubber sole"],
                        "instruction_options": []}],
        "B000000003": [{"instruction": "a tea tree body scrub", "instruction_attributes": ["tea tree"],
                        "instruction_options": []}],
    }
    (tmp_path / "items_shuffle_small.json").write_text(json.dumps(raw))
    (tmp_path / "items_human_ins_small.json").write_text(json.dumps(human))
    (tmp_path / "items_ins_v2_small.json").write_text(json.dumps({"B000000001": {"attributes": ["rubber sole"]}}))
    monkeypatch.setenv("SHIFTGYM_WEBSHOP_DATA", str(tmp_path))
    served = WebShopEnv()
    products = served.catalog.products
    assert list(products) == ["B000000001", "B000000002", "B000000003"]
    assert products["B000000001"].options == (("color", ("pink", "navy | white")), ("size", ("8", "9")))
    assert products["B000000001"].price_text == "$1299.0" and products["B000000003"].price_text == "$100.0"
    assert products["B000000002"].price_text == "$10.0 to $20.0" and 10 <= products["B000000002"].price <= 20
    assert products["B000000003"].attributes == ("DUMMY_ATTR",)
    assert parse_pricing("$19.99") == (19.99,)
    tasks = [t for s in SPLITS for lvl in LEVELS for t in served.tasks(s, lvl)]
    assert sorted(t.task_id.rsplit("/", 1)[1] for t in tasks) == ["B000000001-0", "B000000002-0", "B000000003-0"]
    for task in tasks:
        assert _play_oracle(served, task.task_id)[0].outcome.success
    big = next(t for t in tasks if t.metadata["asin"] == "B000000001")
    assert big.metadata["instruction"] == "i need pink canvas loafers with rubber sole in size 8"  # no bound above $980


# ---- generator vocabulary ---------------------------------------------------------------------------------------

def test_generator_vocabulary_keeps_wrong_choices_wrong():
    for values in OPTION_VALUES.values():
        for a, b in itertools.combinations(values, 2):
            assert not fuzzy_match(normalize_color(a), normalize_color(b)), (a, b)
    for sub in SUBCATEGORIES:
        for a, b in itertools.combinations(sub.attributes, 2):
            assert not fuzzy_match(a, b) and a not in b and b not in a, (sub.query, a, b)
        for attr in sub.attributes:
            assert not any(attr in text.lower() for text in FILLER + sub.types), (sub.query, attr)
