"""Server-rendered SVG charts for the results page: no script, no external library, readable by a
screen reader (role="img", a title, and each bar or point titled with its figure)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from campaigns.surveys.results import Score, TrendPoint

INK, MUTED, GRID = "#1f2933", "#52606d", "#e4e7eb"
BAD, WARN, OK, ACCENT = "#d64545", "#e6a23c", "#2f9e44", "#1d4ed8"


def _colour(score: Score, value: int) -> str:
    if score.kind == "nps":
        return BAD if value <= 6 else WARN if value <= 8 else OK
    return BAD if value <= 2 else WARN if value == 3 else OK


def distribution_svg(score: Score, *, title: str, width: int = 440, height: int = 160) -> Markup:
    """Bars of how many answers each score got, detractors red, passives amber, promoters green."""
    values = sorted(score.counts)
    peak = max(score.peak, 1)
    left, bottom, top = 8, 22, 16
    slot = (width - 2 * left) / max(len(values), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" class="chart chart-bars"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - left}" y2="{height - bottom}" stroke="{GRID}"/>']
    for i, value in enumerate(values):
        n = score.counts[value]
        h = (height - bottom - top) * n / peak
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        parts.append(f'<g><title>{value}: {n}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" rx="2" '
                     f'fill="{_colour(score, value)}"/>'
                     f'<text x="{x + slot * 0.35:.1f}" y="{height - 6}" text-anchor="middle" font-size="11" '
                     f'fill="{MUTED}">{value}</text>'
                     + (f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10" '
                        f'fill="{INK}">{n}</text>' if n else '') + '</g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_svg(points: Sequence[TrendPoint], *, title: str, fmt: Any, labels: tuple[str, str],
              width: int = 640, height: int = 200) -> Markup:
    """NPS (−100…100) and CSAT share (0…100 %) per week, two lines on one −100…100 scale."""
    left, right, top, bottom = 36, 12, 30, 28
    inner_w, inner_h = width - left - right, height - top - bottom

    def y(value: float) -> float:
        return top + inner_h * (100 - value) / 200

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" class="chart chart-trend"><title>{escape(title)}</title>']
    for mark in (-100, -50, 0, 50, 100):
        parts.append(f'<line x1="{left}" y1="{y(mark):.1f}" x2="{width - right}" y2="{y(mark):.1f}" '
                     f'stroke="{GRID if mark else "#9aa5b1"}"/>'
                     f'<text x="{left - 4}" y="{y(mark) + 4:.1f}" text-anchor="end" font-size="10" fill="{MUTED}">'
                     f'{mark}</text>')
    step = inner_w / max(len(points) - 1, 1)
    for series, colour, label in (("nps", ACCENT, labels[0]), ("csat", OK, labels[1])):
        coords = [(left + i * step, getattr(p, series), p) for i, p in enumerate(points) if getattr(p, series) is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y(v):.1f}" for x, v, _ in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, v, p in coords:
            when = escape(fmt.date(p.start))
            parts.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                         f'<title>{escape(label)}, {when}: {v:g} ({p.responses})</title></circle>')
    for i, p in enumerate(points):
        if len(points) <= 8 or i % max(len(points) // 6, 1) == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - 8}" text-anchor="middle" font-size="10" '
                         f'fill="{MUTED}">{escape(fmt.date(p.start, "short"))}</text>')
    parts.append(f'<g font-size="11"><rect x="{left}" y="6" width="12" height="3" fill="{ACCENT}"/>'
                 f'<text x="{left + 16}" y="11" fill="{INK}">{escape(labels[0])}</text>'
                 f'<rect x="{left + 90}" y="6" width="12" height="3" fill="{OK}"/>'
                 f'<text x="{left + 106}" y="11" fill="{INK}">{escape(labels[1])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))

