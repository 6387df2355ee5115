"""Choosing an A/B test's winner: the pure rule exhaustively, then from seeded outcomes."""

from __future__ import annotations

import random
from datetime import timedelta
from itertools import permutations, product
from typing import Any

import pytest

from campaigns import results, selectors
from campaigns.results import VariantStats, winner_choose
from tests.campaigns.test_results import (
    T0,
    campaign_make,
    clicked,
    occurrence_make,
    opened,
    ordered,
    recipient_make,
)

METRICS = ("opens", "clicks", "conversions")


def beats(a: tuple[str, VariantStats], b: tuple[str, VariantStats], metric: str) -> bool:
    """The rule, said independently: a higher rate (cross-multiplied, no division; no
    recipients is a rate of 0), then more recipients, then the earlier key."""
    (ka, sa), (kb, sb) = a, b
    na, da = (getattr(sa, metric), sa.recipients) if sa.recipients else (0, 1)
    nb, db = (getattr(sb, metric), sb.recipients) if sb.recipients else (0, 1)
    if na * db != nb * da:
        return na * db > nb * da
    if sa.recipients != sb.recipients:
        return sa.recipients > sb.recipients
    return ka < kb


def oracle(stats: dict[str, VariantStats], metric: str) -> str:
    [best] = [
        k
        for k in stats
        if all(beats((k, stats[k]), (o, stats[o]), metric) for o in stats if o != k)
    ]
    return best


def random_stats(rng: random.Random, keys: str) -> dict[str, VariantStats]:
    stats = {}
    for key in keys:
        n = rng.choice([0, 1, 2, 3, 4, 6, 10, 100])
        opens, clicks, conversions = (rng.randint(0, n) for _ in range(3))
        stats[key] = VariantStats(
            recipients=n, sent=n, opens=opens, clicks=clicks, conversions=conversions
        )
    return stats


@pytest.mark.parametrize("metric", METRICS)
def test_the_winner_agrees_with_the_rule_on_thousands_of_seeded_tests(metric: str) -> None:
    rng = random.Random(f"winner-{metric}")
    for _ in range(3000):
        keys = "ABCDE"[: rng.randint(1, 5)]
        stats = random_stats(rng, keys)

        assert winner_choose(stats, metric) == oracle(stats, metric), stats


def test_every_small_two_variant_test_is_decided_by_the_rule() -> None:
    """Exhaustively: every (recipients, conversions) pair up to 4 for two variants."""
    cells = [(r, c) for r in range(5) for c in range(r + 1)]
    for (ra, ca), (rb, cb) in product(cells, cells):
        stats = {
            "A": VariantStats(recipients=ra, conversions=ca),
            "B": VariantStats(recipients=rb, conversions=cb),
        }
        assert winner_choose(stats, "conversions") == oracle(stats, "conversions"), stats


def test_the_order_of_the_variants_does_not_matter() -> None:
    rng = random.Random(7)
    for _ in range(200):
        stats = random_stats(rng, "ABCD")
        answers = {winner_choose(dict(order), "clicks") for order in permutations(stats.items())}
        assert len(answers) == 1


def test_a_higher_rate_beats_more_recipients() -> None:
    stats = {
        "A": VariantStats(recipients=1000, opens=300),  # 30 %
        "B": VariantStats(recipients=10, opens=4),  # 40 %
    }

    assert winner_choose(stats, "opens") == "B"


def test_a_tie_goes_to_more_recipients_then_to_the_earlier_key() -> None:
    fewer, more = VariantStats(recipients=10, clicks=2), VariantStats(recipients=20, clicks=4)
    same = VariantStats(recipients=10, clicks=2)

    assert winner_choose({"A": fewer, "B": more}, "clicks") == "B"
    assert winner_choose({"C": same, "B": same}, "clicks") == "B"
    assert winner_choose({"B": VariantStats(), "A": VariantStats()}, "opens") == "A"


def test_rates_are_exact_not_floats() -> None:
    # 1/3 and 333333333/999999999 are the same rate; floats would make one of them larger.
    stats = {
        "A": VariantStats(recipients=3, opens=1),
        "B": VariantStats(recipients=999_999_999, opens=333_333_333),
    }

    assert winner_choose(stats, "opens") == "B"  # tie: more recipients


def test_it_refuses_no_variants_and_unknown_metrics() -> None:
    with pytest.raises(ValueError):
        winner_choose({}, "opens")
    with pytest.raises(ValueError):
        winner_choose({"A": VariantStats(recipients=1)}, "revenue")
    assert results.metric_rate(VariantStats(), "opens") == 0


# --- From seeded outcomes -------------------------------------------------------------------


def seeded_test(world: Any) -> Any:
    """Three variants of 10: A opens best, B clicks best, C converts best; the hold-out converts
    most of all, and does not take part."""
    campaign = campaign_make(world.acme, keys="ABC", holdout_percent=10, goal_window_hours=24)
    occ = occurrence_make(campaign)
    group = {key: [recipient_make(occ, key) for _ in range(10)] for key in "ABC"}
    held = [recipient_make(occ, None, holdout=True) for _ in range(10)]
    plan = {"A": (8, 1, 1), "B": (5, 4, 1), "C": (3, 2, 3)}  # opens, clicks, conversions
    for key, (opens, clicks, conversions) in plan.items():
        for r in group[key][:opens]:
            opened(r)
        for r in group[key][:clicks]:
            clicked(r, "https://shop.example/")
            clicked(r, "https://shop.example/")  # total clicks don't make a winner
        for r in group[key][:conversions]:
            ordered(r, T0 + timedelta(hours=2))
    for r in group["A"][1:]:
        ordered(r, T0 + timedelta(days=2))  # past the goal window: no conversions for A
    for r in held:
        ordered(r, T0 + timedelta(hours=1))
    return occ


@pytest.mark.parametrize(
    ("metric", "expected"), [("opens", "A"), ("clicks", "B"), ("conversions", "C")]
)
def test_the_winner_from_seeded_outcomes(world: Any, metric: str, expected: str) -> None:
    occ = seeded_test(world)

    stats = selectors.variant_metric_stats(occurrence=occ)

    assert set(stats) == {"A", "B", "C"}
    assert [stats[k].recipients for k in "ABC"] == [10, 10, 10]
    assert winner_choose(stats, metric) == expected


def test_seeded_stats_count_unique_contacts(world: Any) -> None:
    stats = selectors.variant_metric_stats(occurrence=seeded_test(world))

    assert stats["A"] == VariantStats(recipients=10, sent=10, opens=8, clicks=1, conversions=1)
    assert stats["B"] == VariantStats(recipients=10, sent=10, opens=5, clicks=4, conversions=1)
    assert stats["C"] == VariantStats(recipients=10, sent=10, opens=3, clicks=2, conversions=3)


def test_no_outcomes_yet_picks_the_first_variant(world: Any) -> None:
    campaign = campaign_make(world.acme, keys="AB")
    occ = occurrence_make(campaign)
    for key in "AB":
        recipient_make(occ, key)

    assert winner_choose(selectors.variant_metric_stats(occurrence=occ), "conversions") == "A"
