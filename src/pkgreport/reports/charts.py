"""Charts for the HTML report as deterministic inline SVG made with matplotlib."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from pkgreport.reports.filters import format_money
from pkgreport.reports.model import CHART_TITLES, ChartData, RollRow

# Figures are drawn through `Figure` (no pyplot, no GUI); everything that could vary between runs
# (hash salt for generated ids, dates, creator string, font embedding) is pinned here.
# A chart is drawn as wide as a phone shows it (about 330 CSS px), so its text keeps its size
# there: at least 11 px. Wider screens scale it up.
FIGURE_WIDTH_IN = 4.6
FIGURE_HEIGHT_IN = 2.9
LABEL_SIZE = 11.5
_RC: Any = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, no embedded glyphs
    "font.family": "sans-serif",
    "font.size": 12,
    "xtick.labelsize": LABEL_SIZE,
    "ytick.labelsize": LABEL_SIZE,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_METADATA = {"Date": None, "Creator": None}
_PALETTE = {
    "bar": "#4472c4",
    "created": "#70ad47",
    "applied": "#4472c4",
    "refunded": "#ed7d31",
    "closing": "#262626",
    "apart": "#a5a5a5",
}


def _dollars(cents: int) -> float:
    # Plot positions only; every number a person reads is formatted from the exact cents.
    return cents / 100


def _money_axis(symbol: str) -> FuncFormatter:
    return FuncFormatter(lambda value, _pos: format_money(round(value * 100), symbol)[:-3])


def _to_svg(fig: Figure, name: str, title: str) -> str:
    """Render `fig` as an SVG element ready to inline: no prolog, ids prefixed, titled."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"pkgreport-{name}"}):
        fig.savefig(buffer, format="svg", metadata=_METADATA, bbox_inches=None)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    # Several charts share one page: make every id (and reference to it) unique per chart.
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Inline SVG in HTML needs no namespace declarations; dropping them keeps the page free of
    # any URL at all, which makes "no external reference" simple to check.
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    title_id = f"{name}-title"
    svg = re.sub(
        r"<svg\b",
        f'<svg role="img" aria-labelledby="{title_id}"',
        svg,
        count=1,
    )
    head_end = svg.index(">") + 1
    svg = (
        svg[:head_end] + f'\n <title id="{title_id}">{html.escape(title)}</title>' + svg[head_end:]
    )
    return svg.strip()


def _fit_labels(ax: Any, labels: Sequence[str]) -> None:
    # Slant the category labels once they would run into each other.
    if len(labels) > 4 or sum(len(label) for label in labels) > 28:
        for tick in ax.get_xticklabels():
            tick.set_rotation(35)
            tick.set_horizontalalignment("right")
            tick.set_rotation_mode("anchor")


def _figure(height: float = FIGURE_HEIGHT_IN) -> Figure:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(FIGURE_WIDTH_IN, height), dpi=72, layout="constrained")
    return fig


def _labelled_bars(
    ax: Any,
    labels: Sequence[str],
    values: Sequence[float],
    texts: Sequence[str],
    colors: Sequence[str],
) -> None:
    """Horizontal bars, first label on top, each with its exact figure at its end (no x axis):
    category names and figures stay level and legible however narrow the screen."""
    rows = list(range(len(labels)))
    bars = ax.barh(rows, values, color=list(colors))
    ax.bar_label(bars, labels=list(texts), padding=3, fontsize=LABEL_SIZE)
    ax.set_yticks(rows, list(labels))
    ax.invert_yaxis()
    ax.xaxis.set_visible(False)
    ax.spines["bottom"].set_visible(False)
    # Room at the right for the longest figure.
    ax.set_xlim(0, max([*values, 0]) * 1.7 or 1)


def ageing_chart(ageing: Sequence[tuple[str, int]], title: str, symbol: str = "$") -> str:
    """Bars of unapplied credit by age bucket, each labelled with its exact amount."""
    with matplotlib.rc_context(_RC):
        fig = _figure()
        ax = fig.add_subplot()
        _labelled_bars(
            ax,
            [f"{label} days" for label, _ in ageing],
            [_dollars(cents) for _, cents in ageing],
            [format_money(c, symbol) for _, c in ageing],
            [_PALETTE["bar"]] * len(ageing),
        )
        ax.set_xlabel("Credit held")
        return _to_svg(fig, "chart-ageing", title)


def clinic_liability_chart(
    clinics: Sequence[tuple[str, int]], title: str, symbol: str = "$"
) -> str:
    """Bars of credit liability by clinic (a clinic group), each labelled with its exact amount;
    a clinic whose patients owe more than it holds shows no bar, only its (negative) figure."""
    with matplotlib.rc_context(_RC):
        height = max(FIGURE_HEIGHT_IN, 0.9 + 0.32 * len(clinics))
        fig = _figure(height)
        ax = fig.add_subplot()
        _labelled_bars(
            ax,
            [name for name, _ in clinics],
            [max(_dollars(cents), 0.0) for _, cents in clinics],
            [format_money(c, symbol) for _, c in clinics],
            [_PALETTE["bar"]] * len(clinics),
        )
        return _to_svg(fig, "chart-clinic-liability", title)


def utilisation_chart(bands: Sequence[tuple[str, int]], title: str, unlimited: int = 0) -> str:
    """Bars of how many cases have used how much of their package; cases with no maximum
    (unlimited) have no share used, so they get a grey bar of their own, below the rest."""
    with matplotlib.rc_context(_RC):
        labels = [label for label, _ in bands]
        counts = [count for _, count in bands]
        colors = [_PALETTE["bar"]] * len(bands)
        if unlimited:
            labels.append("no maximum")
            counts.append(unlimited)
            colors.append(_PALETTE["apart"])
        fig = _figure(FIGURE_HEIGHT_IN + 0.3)
        ax = fig.add_subplot()
        _labelled_bars(ax, labels, counts, [f"{c:,}" for c in counts], colors)
        return _to_svg(fig, "chart-utilisation", title)


def rollforward_chart(rows: Sequence[RollRow], title: str, symbol: str = "$") -> str:
    """Monthly credit created, applied and refunded (bars) with the closing liability (line)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(FIGURE_HEIGHT_IN + 0.4)
        ax = fig.add_subplot()
        labels = [r.label for r in rows]
        xs = list(range(len(rows)))
        width = 0.27
        ax.bar(
            [x - width for x in xs],
            [_dollars(r.created) for r in rows],
            width,
            label="Created",
            color=_PALETTE["created"],
        )
        ax.bar(
            xs,
            [-_dollars(abs(r.applied)) for r in rows],
            width,
            label="Applied",
            color=_PALETTE["applied"],
        )
        ax.bar(
            [x + width for x in xs],
            [-_dollars(abs(r.refunded)) for r in rows],
            width,
            label="Refunded",
            color=_PALETTE["refunded"],
        )
        ax.plot(
            xs,
            [_dollars(r.closing) for r in rows],
            marker="o",
            color=_PALETTE["closing"],
            label="Closing liability",
        )
        ax.axhline(0, color="#999999", linewidth=0.8)
        ax.set_xticks(xs, labels)
        _fit_labels(ax, labels)
        ax.yaxis.set_major_formatter(_money_axis(symbol))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        # Above the plot, so it never hides a bar or the line.
        ax.legend(
            loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=LABEL_SIZE, frameon=False, ncols=2
        )
        ax.margins(y=0.15)
        return _to_svg(fig, "chart-rollforward", title)


def draw_charts(data: ChartData, symbol: str) -> dict[str, str]:
    """Every chart the series call for, as SVG by name (an empty series draws no chart)."""
    drawn = {}
    if data.ageing:
        drawn["ageing"] = ageing_chart(data.ageing, CHART_TITLES["ageing"], symbol)
    if data.utilisation:
        title = CHART_TITLES["utilisation"]
        drawn["utilisation"] = utilisation_chart(data.utilisation, title, data.unlimited)
    if data.rollforward:
        title = CHART_TITLES["rollforward"]
        drawn["rollforward"] = rollforward_chart(data.rollforward, title, symbol)
    return drawn
