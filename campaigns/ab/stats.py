"""The winner rule: Pearson's chi-square test of independence on the variants' k × 2 table.

For two variants it is the two-proportion z-test (chi² = z², the same p-value); for three or four
it asks whether the rates differ at all, and the winner is the variant with the highest rate. The
p-value of a chi-square with 1–3 degrees of freedom has a closed form (no SciPy needed):

    df = 1: p = erfc(√(x/2))
    df = 2: p = exp(−x/2)
    df = 3: p = erfc(√(x/2)) + √(2x/π)·exp(−x/2)

The test is trusted only with enough data: every variant must have at least `min_sent` messages
sent, and every expected cell count (sent × pooled rate, and sent × (1 − pooled rate)) must be at
least 5 — the textbook condition for the chi-square approximation. Otherwise the verdict is
"too_few", and nothing is picked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class Arm:
    """One variant's trial: messages sent and how many recipients did the thing measured."""

    label: str
    sent: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "winner", "no_difference" or "too_few"
    winner: str | None = None
    p_value: float | None = None
    chi2: float | None = None
    leader: str | None = None  # the variant ahead, significant or not
    short: str | None = None  # with too_few: the variant that fell short, and why ("sent" or "events")
    short_reason: str | None = None


def chi_square_p(statistic: float, df: int) -> float:
    """The upper tail probability of a chi-square distribution with df = 1, 2 or 3."""
    x = max(statistic, 0.0)
    if df == 1:
        return math.erfc(math.sqrt(x / 2))
    if df == 2:
        return math.exp(-x / 2)
    if df == 3:
        return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    raise ValueError("two to four variants make one to three degrees of freedom")


def chi_square(arms: Sequence[Arm]) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom of the arms' successes/failures table."""
    total = sum(a.sent for a in arms)
    pooled = sum(a.successes for a in arms) / total
    statistic = 0.0
    for arm in arms:
        for observed, share in ((arm.successes, pooled), (arm.sent - arm.successes, 1 - pooled)):
            expected = arm.sent * share
            statistic += (observed - expected) ** 2 / expected
    return statistic, len(arms) - 1


def verdict(arms: Sequence[Arm], *, alpha: float = 0.05, min_sent: int = 30) -> Verdict:
    """Which variant won, if the data can say: see the module's docstring for the rule."""
    if not 2 <= len(arms) <= 4:
        raise ValueError("an A/B test has two to four variants")
    ranked = sorted(arms, key=lambda a: a.rate, reverse=True)
    leader = ranked[0].label if ranked[0].rate > ranked[1].rate else None
    small = min(arms, key=lambda a: a.sent)
    if small.sent < min_sent:
        return Verdict("too_few", leader=leader, short=small.label, short_reason="sent")
    total = sum(a.sent for a in arms)
    pooled = sum(a.successes for a in arms) / total
    for arm in arms:
        if min(arm.sent * pooled, arm.sent * (1 - pooled)) < MIN_EXPECTED:
            return Verdict("too_few", leader=leader, short=arm.label, short_reason="events")
    statistic, df = chi_square(arms)
    p = chi_square_p(statistic, df)
    if leader is not None and p < alpha:
        return Verdict("winner", winner=leader, p_value=p, chi2=statistic, leader=leader)
    return Verdict("no_difference", p_value=p, chi2=statistic, leader=leader)


__all__ = ["Arm", "Verdict", "chi_square", "chi_square_p", "verdict"]
