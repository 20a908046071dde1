"""Server-rendered SVG charts for the dashboards (as campaigns/surveys/charts.py draws them): no script,
readable by a screen reader — role="img", a title, and every bar, point and square titled with its figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

INK, MUTED, GRID = "#1f2933", "#52606d", "#e4e7eb"
PALETTE = ("#1d4ed8", "#2f9e44", "#e6a23c", "#d64545", "#7c3aed", "#0891b2", "#a16207", "#db2777", "#4b5563")
CELL_COLOURS = {"champions": "#166534", "loyal": "#2f9e44", "potential_loyalists": "#65a30d", "new": "#0891b2",
                "promising": "#38bdf8", "need_attention": "#e6a23c", "about_to_sleep": "#facc15",
                "at_risk": "#ea580c", "cant_lose": "#b91c1c", "hibernating": "#94a3b8", "lost": "#64748b"}
Series = tuple[str, Sequence[float | None]]


def _open(width: int, height: int, title: str, css: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" class="chart {css}"><title>{escape(title)}</title>']


def _legend(parts: list[str], names: Sequence[str], left: int) -> None:
    x = left
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="13" font-size="11" fill="{INK}">{escape(name)}</text>')
        x += 22 + 7 * len(name)


def _x_labels(parts: list[str], labels: Sequence[str], xs: Sequence[float], y: float) -> None:
    every = max(1, len(labels) // 8)
    for i, (label, x) in enumerate(zip(labels, xs, strict=True)):
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle" font-size="10" fill="{MUTED}">'
                         f'{escape(label)}</text>')


def bars_svg(labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Callable[[float], str] = str,
             width: int = 640, height: int = 220) -> Markup:
    """Stacked bars, one per label, one colour per series (a legend on top)."""
    left, right, top, bottom = 44, 8, 24, 24
    totals = [sum((s[1][i] or 0) for s in series) for i in range(len(labels))]
    peak = max([*totals, 1])
    slot = (width - left - right) / max(len(labels), 1)
    plot_h = height - top - bottom
    parts = _open(width, height, title, "chart-bars")
    _legend(parts, [s[0] for s in series], left)
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="{MUTED}">'
                     f'{escape(fmt(peak * frac))}</text>')
    xs = []
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.15
        xs.append(x + slot * 0.35)
        base = top + plot_h
        for k, (name, values) in enumerate(series):
            v = values[i] or 0
            h = plot_h * v / peak
            if h > 0:
                base -= h
                parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} · {escape(name)}: '
                             f'{escape(fmt(v))}</title></rect>')
    _x_labels(parts, labels, xs, height - 6)
    parts.append("</svg>")
    return Markup("".join(parts))


def lines_svg(labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Callable[[float], str] = str,
              low: float | None = None, high: float | None = None, width: int = 640, height: int = 220) -> Markup:
    """One line per series over the labels; gaps where a value is None."""
    left, right, top, bottom = 48, 12, 24, 24
    values = [v for _, vs in series for v in vs if v is not None]
    lo = min([*values, 0]) if low is None else low
    hi = max([*values, 1]) if high is None else high
    hi = hi if hi > lo else lo + 1
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    parts = _open(width, height, title, "chart-lines")
    _legend(parts, [s[0] for s in series], left)
    for frac in (0, 0.5, 1):
        mark = lo + (hi - lo) * frac
        parts.append(f'<line x1="{left}" y1="{y(mark):.1f}" x2="{width - right}" y2="{y(mark):.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 4}" y="{y(mark) + 4:.1f}" text-anchor="end" font-size="10" fill="{MUTED}">'
                     f'{escape(fmt(mark))}</text>')
    for k, (name, vs) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        points = [(left + i * step, v, labels[i]) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                         + " ".join(f"{x:.1f},{y(v):.1f}" for x, v, _ in points) + '"/>')
        for x, v, label in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{escape(label)} · '
                         f'{escape(name)}: {escape(fmt(v))}</title></circle>')
    _x_labels(parts, labels, [left + i * step for i in range(len(labels))], height - 6)
    parts.append("</svg>")
    return Markup("".join(parts))


def rfm_grid_svg(squares: dict[tuple[int, int], int], cells: dict[int, dict[int, str]], names: dict[str, str], *,
                 title: str, axis: tuple[str, str], width: int = 520, height: int = 440) -> Markup:
    """The 5 × 5 grid, recency up, frequency-and-money across; each square coloured by its cell, with
    its customers; the cell's name in the square where the cell starts."""
    left, top, bottom = 40, 8, 50
    side_w, side_h = (width - left - 8) / 5, (height - top - bottom) / 5
    parts = _open(width, height, title, "chart-grid")
    named: set[str] = set()
    for row, r in enumerate(range(5, 0, -1)):
        parts.append(f'<text x="{left - 8}" y="{top + side_h * (row + 0.5) + 4:.1f}" text-anchor="end" font-size="12" '
                     f'fill="{MUTED}">R{r}</text>')
        for fm in range(1, 6):
            cell = cells[r][fm]
            x, y = left + (fm - 1) * side_w, top + row * side_h
            n = squares.get((r, fm), 0)
            parts.append(f'<g><title>{escape(names[cell])} (R{r}, FM{fm}): {n}</title>'
                         f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{side_w - 2:.1f}" height="{side_h - 2:.1f}" '
                         f'rx="3" fill="{CELL_COLOURS[cell]}"/>'
                         f'<text x="{x + side_w / 2:.1f}" y="{y + side_h / 2 + 5:.1f}" text-anchor="middle" '
                         f'font-size="15" font-weight="600" fill="#fff">{n}</text>')
            if cell not in named:
                named.add(cell)
                parts.append(f'<text x="{x + 5:.1f}" y="{y + 14:.1f}" font-size="10" fill="#fff">'
                             f'{escape(names[cell][:18])}</text>')
            parts.append("</g>")
    for fm in range(1, 6):
        parts.append(f'<text x="{left + (fm - 0.5) * side_w:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                     f'font-size="12" fill="{MUTED}">FM{fm}</text>')
    parts.append(f'<text x="{left}" y="{height - 18}" font-size="11" fill="{MUTED}">{escape(axis[0])}</text>'
                 f'<text x="{left}" y="{height - 4}" font-size="11" fill="{MUTED}">{escape(axis[1])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
