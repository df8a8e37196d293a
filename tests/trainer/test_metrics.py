"""The report's metrics and failure tags against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from trainer.report.failures import Episode, primary, tags
from trainer.report.metrics import (
    avg_at_k, bootstrap_ci, pass_at_k, pass_at_k_task, sequence_summary, transfer_deltas, unseen_mean_gain,
)
from trainer.report.stats import cell_stats


def test_avg_at_k_is_the_mean_over_every_sample():
    assert avg_at_k([[True, False], [True, True], [False, False]]) == pytest.approx(3 / 6)
    assert avg_at_k([]) == 0.0


def test_pass_at_k_matches_the_unbiased_estimator_by_hand():
    # n=5 samples, c=2 correct, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k_task(5, 2, 2) == pytest.approx(0.7)
    # n=4, c=1, k=1 is the plain success rate
    assert pass_at_k_task(4, 1, 1) == pytest.approx(0.25)
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252
    assert pass_at_k_task(10, 3, 5) == pytest.approx(1 - 21 / 252)
    # fewer failures than k: certain
    assert pass_at_k_task(4, 3, 2) == 1.0
    assert pass_at_k_task(3, 0, 3) == 0.0
    # with exactly k samples per task: the share of tasks solved at least once
    groups = [[True, False], [False, False], [False, True], [True, True]]
    assert pass_at_k(groups, 2) == pytest.approx(3 / 4)
    assert pass_at_k(groups, 1) == pytest.approx(avg_at_k(groups))
    with pytest.raises(ValueError):
        pass_at_k_task(2, 1, 3)


def test_bootstrap_interval_by_hand():
    # Every resample of identical tasks gives the same value: a zero-width interval.
    same = [[1.0, 0.0]] * 5
    ci = bootstrap_ci(same, avg_at_k)
    assert (ci.value, ci.low, ci.high) == (0.5, 0.5, 0.5)
    # Two tasks, one always solved, one never: a resample of 2 tasks has mean 0, 0.5 or 1 with probabilities
    # 1/4, 1/2, 1/4, so the 95% percentile interval is [0, 1] around 0.5.
    ci = bootstrap_ci([[1.0, 1.0], [0.0, 0.0]], avg_at_k)
    assert (ci.value, ci.low, ci.high) == (0.5, 0.0, 1.0)
    # 20 tasks at 50%: the interval is about +-2.2 standard errors of sqrt(.25/20) = 0.112 wide, i.e. ~0.28..0.72.
    ci = bootstrap_ci([[1.0]] * 10 + [[0.0]] * 10, avg_at_k)
    assert ci.value == 0.5 and 0.25 <= ci.low <= 0.32 and 0.68 <= ci.high <= 0.75
    # Seeded: the same numbers every time the report is rebuilt.
    assert bootstrap_ci([[1.0]] * 10 + [[0.0]] * 10, avg_at_k) == ci


def test_transfer_deltas_and_unseen_gain_by_hand():
    matrix = {"babyai": {"babyai": 0.9, "webshop": 0.1}, "webshop": {"babyai": 0.5, "webshop": 0.8}}
    base = {"babyai": 0.4, "webshop": 0.3}
    deltas = transfer_deltas(matrix, base)
    assert deltas["babyai"] == pytest.approx({"babyai": 0.5, "webshop": -0.2})
    assert deltas["webshop"] == pytest.approx({"babyai": 0.1, "webshop": 0.5})
    assert unseen_mean_gain(deltas) == pytest.approx((-0.2 + 0.1) / 2)


def test_forgetting_and_forward_transfer_by_hand():
    # Order A -> B -> C. Rows: after stage 1, 2, 3; columns: A, B, C.
    results = [[0.8, 0.3, 0.1],
               [0.6, 0.7, 0.2],
               [0.5, 0.4, 0.9]]
    base = [0.2, 0.25, 0.05]
    summary = sequence_summary(results, base)
    # BWT = mean(R[3][A] - R[1][A], R[3][B] - R[2][B]) = mean(0.5 - 0.8, 0.4 - 0.7) = -0.3
    assert summary.backward_transfer == pytest.approx(-0.3)
    # FWT = mean(R[1][B] - base[B], R[2][C] - base[C]) = mean(0.3 - 0.25, 0.2 - 0.05) = 0.1
    assert summary.forward_transfer == pytest.approx(0.1)
    # forgetting A = max(0.8, 0.6) - 0.5 = 0.3; B = max(0.7) - 0.4 = 0.3; C (last) = 0
    assert summary.forgetting == pytest.approx((0.3, 0.3, 0.0))
    with pytest.raises(ValueError):
        sequence_summary([[0.5]], [0.1])


def _episode(env="babyai", status="completed", success=False, actions=(), valid=None):
    return Episode(env, status, success, list(actions), list(valid if valid is not None else [True] * len(actions)))


def test_failure_tags_follow_their_documented_rules():
    assert tags(_episode(success=True, actions=["a"])) == ()
    assert primary(_episode(status="failed")) == "env_error"
    loop = _episode(status="truncated", actions=["x", "y", "z", "w"], valid=[True, False, False, False])
    assert tags(loop) == ("invalid_loop", "truncation")
    assert primary(_episode(actions=["go", "go", "go"])) == "repeated_action"
    cycle = _episode(status="truncated", actions=["a", "b", "c", "d", "c", "d", "c", "d"])
    assert tags(cycle) == ("repeated_action", "truncation")
    assert primary(_episode("searchqa", actions=["<answer>paris</answer>"])) == "unverified_commit"
    assert primary(_episode("searchqa", actions=["<search>x</search>", "<answer>paris</answer>"])) == "wrong_outcome"
    assert primary(_episode("webshop", actions=["search[red dress]", "click[b01]", "click[buy now]"])) \
        == "unverified_commit"
    assert primary(_episode("webshop", actions=["search[red dress]", "click[b01]", "click[description]",
                                                "click[< prev]", "click[buy now]"])) == "wrong_outcome"
    # the JSON function-call interface names the verb too
    assert primary(_episode("searchqa", actions=['{"name": "answer", "arguments": {"text": "x"}}'])) \
        == "unverified_commit"
    # environments without a committing action never get the tag
    assert primary(_episode("textcraft", actions=["craft 1 stick using 2 bamboo"])) == "wrong_outcome"
    assert primary(_episode(status="truncated", actions=["a", "b", "c"])) == "truncation"


def test_cell_stats_from_stored_records():
    def rec(task, sample, success, turns=2, invalid=0, status="completed", tokens=10):
        return {"task_id": task, "sample": sample, "success": success, "score": float(success), "turns": turns,
                "invalid": invalid, "status": status, "policy_tokens": tokens, "actions": ["a"] * turns,
                "valid": [True] * turns}

    records = [rec("t1", 0, True), rec("t1", 1, False, turns=4, invalid=2, status="truncated"),
               rec("t2", 0, False, turns=6), rec("t2", 1, False, turns=4)]
    s = cell_stats("babyai", records)
    assert (s.tasks, s.k, s.episodes) == (2, 2, 4)
    assert s.avg.value == pytest.approx(0.25)
    assert s.pass_k.value == pytest.approx(0.5)
    assert s.turns == pytest.approx(4.0)
    assert s.invalid_rate == pytest.approx(2 / 16)
    assert s.truncation_rate == pytest.approx(0.25)
    assert sum(s.failure_modes.values()) == 3
    assert math.isclose(s.score, 0.25)
