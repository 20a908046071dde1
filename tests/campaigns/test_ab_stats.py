"""The A/B winner rule on fixtures computed by hand: the chi-square p-value's closed forms, a clear
winner, no significant difference, too few recipients, too few events, and the seeded split."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from campaigns.ab.split import assign, draws
from campaigns.ab.stats import Arm, chi_square, chi_square_p, verdict


@pytest.mark.parametrize(("statistic", "df", "expected"), [
    (3.841459, 1, 0.05), (6.634897, 1, 0.01), (5.991465, 2, 0.05), (9.210340, 2, 0.01),
    (7.814728, 3, 0.05), (11.344867, 3, 0.01), (0.0, 1, 1.0), (0.0, 3, 1.0),
])
def test_the_p_value_matches_the_chi_square_tables(statistic, df, expected):
    assert chi_square_p(statistic, df) == pytest.approx(expected, abs=2e-6)


def test_two_variants_give_the_two_proportion_z_test():
    a, b = Arm("A", 1000, 100), Arm("B", 1000, 150)
    statistic, df = chi_square([a, b])
    # By hand: pooled p = 0.125, se = sqrt(p(1-p)(1/1000 + 1/1000)) = 0.0147902, z = 0.05 / se = 3.38062
    z = 0.05 / math.sqrt(0.125 * 0.875 * (2 / 1000))
    assert df == 1 and statistic == pytest.approx(z**2) and statistic == pytest.approx(11.4286, abs=1e-4)
    result = verdict([a, b])
    assert result.outcome == "winner" and result.winner == "B"
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert result.p_value == pytest.approx(0.000723, abs=2e-6)


def test_three_variants_hand_computed():
    # Rates 10 %, 10 %, 20 % of 200 each: pooled 40/600; expected 13.33 / 186.67 per variant.
    arms = [Arm("A", 200, 20), Arm("B", 200, 20), Arm("C", 200, 40)]
    e1, e0 = 200 * 80 / 600, 200 * 520 / 600
    by_hand = 2 * ((20 - e1) ** 2 / e1 + (180 - e0) ** 2 / e0) + (40 - e1) ** 2 / e1 + (160 - e0) ** 2 / e0
    statistic, df = chi_square(arms)
    assert df == 2 and statistic == pytest.approx(by_hand)
    result = verdict(arms)
    assert result.outcome == "winner" and result.winner == "C" and result.p_value == pytest.approx(math.exp(-by_hand / 2))


def test_no_significant_difference_picks_nothing():
    result = verdict([Arm("A", 1000, 100), Arm("B", 1000, 110)])
    assert result.outcome == "no_difference" and result.winner is None
    assert result.leader == "B" and 0.4 < result.p_value < 0.5  # z = 0.73, p = 0.46


def test_a_tie_picks_nothing_even_with_many_recipients():
    result = verdict([Arm("A", 5000, 500), Arm("B", 5000, 500)])
    assert result.outcome == "no_difference" and result.winner is None and result.leader is None


def test_too_few_recipients_says_so_instead_of_picking():
    # B's rate is ten times A's, but 20 messages per variant are not enough to trust it.
    result = verdict([Arm("A", 20, 1), Arm("B", 20, 10)], min_sent=30)
    assert result.outcome == "too_few" and result.winner is None
    assert result.short_reason == "sent" and result.leader == "B" and result.p_value is None


def test_too_few_events_says_so_instead_of_picking():
    # 500 messages each but 3 clicks in all: the expected clicks per variant (1.5) are below 5.
    result = verdict([Arm("A", 500, 0), Arm("B", 500, 3)])
    assert result.outcome == "too_few" and result.short_reason == "events" and result.winner is None


def test_the_split_is_seeded_and_holds_its_proportions():
    contacts = range(1, 20_001)
    first = [assign(7, c, share_percent=20, labels="ABC") for c in contacts]
    assert first == [assign(7, c, share_percent=20, labels="ABC") for c in contacts]  # the same seed, the same split
    other = [assign(8, c, share_percent=20, labels="ABC") for c in contacts]
    assert sum(x != y for x, y in zip(first, other)) > 5000  # another seed, another split
    counts = Counter(first)
    n, share = len(first), 0.2
    tested = n - counts[None]
    # Within four standard deviations of a binomial(20 000, 0.2), and of a third of the tested each.
    assert abs(tested - n * share) < 4 * math.sqrt(n * share * (1 - share))
    for label in "ABC":
        assert abs(counts[label] - tested / 3) < 4 * math.sqrt(tested * (1 / 3) * (2 / 3))
    assert all(0 <= u < 1 for c in range(100) for u in draws(3, c))
