"""Charts for the HTML report as deterministic inline SVG made with pygal."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from pygal import Bar, HorizontalBar
from pygal.etree import etree
from pygal.style import Style

from pkgreport.reports.filters import format_money, plural
from pkgreport.reports.model import CHART_TITLES, ChartData, RollRow

# The standard library's ElementTree writes the SVG whether or not lxml is installed, so the
# bytes are the same everywhere (pygal would otherwise pick lxml when it finds it).
etree.to_etree()

# A chart's drawing is WIDTH units wide and shown as wide as its box; on a phone (about 330 CSS
# px) its text is then FONT_SIZE * 330 / WIDTH px: at least 11 px.
WIDTH = 400
HEIGHT = 250
FONT_SIZE = 14
_PALETTE = {
    "bar": "#4472c4",
    "created": "#70ad47",
    "applied": "#4472c4",
    "refunded": "#ed7d31",
    "closing": "#262626",
    "apart": "#a5a5a5",
}
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#262626",
    foreground_strong="#262626",
    foreground_subtle="#d9d9d9",
    opacity="1",
    opacity_hover="1",
    transition="none",
    font_family="sans-serif",
    guide_stroke_color="#d9d9d9",
    guide_stroke_dasharray="none",
    major_guide_stroke_color="#d9d9d9",
    major_guide_stroke_dasharray="none",
    label_font_size=FONT_SIZE,
    major_label_font_size=FONT_SIZE,
    value_font_size=FONT_SIZE,
    value_label_font_size=FONT_SIZE,
    tooltip_font_size=FONT_SIZE,
    legend_font_size=FONT_SIZE,
    title_font_size=FONT_SIZE,
    no_data_font_size=FONT_SIZE,
    colors=(_PALETTE["bar"],),
)
_CSS = ("file://style.css", "file://graph.css")  # pygal's own, filled in with the style
# No script (the page runs only its own), no tooltips, no XML prolog, a viewBox to scale by.
_CONFIG: dict[str, Any] = {
    "style": _STYLE,
    "width": WIDTH,
    "js": [],
    "tooltip_border_radius": 0,
    "disable_xml_declaration": True,
    "explicit_size": False,
    "margin": 4,
    "spacing": 8,
    "truncate_label": -1,
    "truncate_legend": -1,
}


def _dollars(cents: int) -> float:
    # Plot positions only; every number a person reads is formatted from the exact cents.
    return cents / 100


def _to_svg(chart: Bar, name: str, title: str, description: str) -> str:
    """Render `chart` as an SVG element ready to inline: ids of its own, no comments, named by
    its title and described by its figures in words."""
    chart.uuid = name.removeprefix("chart-")  # pygal names the drawing "chart-<uuid>"
    svg = chart.render(is_unicode=True)
    # pygal's comments hold the day it drew and its web addresses; its script, titles and
    # descriptions are the settings and texts of tooltips that only its script would show. The
    # page holds none of them (it runs only its own script).
    svg = re.sub(
        r"<!--.*?-->|<script\b.*?</script>|<title>[^<]*</title>|<desc\b[^>]*>[^<]*</desc>",
        "",
        svg,
        flags=re.DOTALL,
    )
    # Inline SVG in HTML needs no namespace declarations; dropping them keeps the page free of
    # any URL at all, which makes "no external reference" simple to check.
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    title_id, desc_id = f"{name}-title", f"{name}-desc"
    svg = re.sub(
        r"<svg\b",
        f'<svg role="img" aria-labelledby="{title_id}" aria-describedby="{desc_id}"',
        svg,
        count=1,
    )
    head_end = svg.index(">") + 1
    named = (
        f'<title id="{title_id}">{html.escape(title)}</title>'
        f'<desc id="{desc_id}">{html.escape(description)}</desc>'
    )
    return (svg[:head_end] + named + svg[head_end:]).strip()


def _listed(labels: Sequence[str], texts: Sequence[str]) -> str:
    return "; ".join(f"{label}: {text}" for label, text in zip(labels, texts, strict=True)) + "."


def _labelled_bars(
    labels: Sequence[str],
    values: Sequence[float],
    texts: Sequence[str],
    colors: Sequence[str],
    height: int = HEIGHT,
) -> HorizontalBar:
    """Horizontal bars, first label on top, each with its exact figure at its end (no value
    axis): category names and figures stay level and legible however narrow the screen."""
    chart = HorizontalBar(
        **_CONFIG,
        height=height,
        show_legend=False,
        # Horizontal: the categories stand on the left; no value axis along the bottom, which
        # the figures at the bars' ends make unneeded.
        show_x_labels=False,
        show_y_labels=True,
        show_x_guides=False,
        show_y_guides=False,
        print_values=True,
        # Each figure starts just past its bar's end (pygal centres it on the end).
        css=[*_CSS, "inline:.horizontalbar-graph .text-overlay text.value{text-anchor:start}"],
        print_values_position="top",
        # Room at the right for the longest figure.
        range=(0, max([*values, 0]) * 1.7 or 1),
    )
    # pygal stacks horizontal bars from the bottom up: the first label goes last.
    chart.x_labels = list(reversed(labels))
    chart.add(
        "",
        [
            {"value": value, "color": color, "formatter": _fixed(text)}
            for value, text, color in reversed(list(zip(values, texts, colors, strict=True)))
        ],
    )
    return chart


def _fixed(text: str) -> Callable[[float], str]:
    return lambda _value: text


def ageing_chart(ageing: Sequence[tuple[str, int]], title: str, symbol: str = "$") -> str:
    """Bars of unapplied credit by age bucket, each labelled with its exact amount."""
    labels = [f"{label} days" for label, _ in ageing]
    texts = [format_money(c, symbol) for _, c in ageing]
    chart = _labelled_bars(
        labels, [_dollars(cents) for _, cents in ageing], texts, [_PALETTE["bar"]] * len(ageing)
    )
    return _to_svg(chart, "chart-ageing", title, _listed(labels, texts))


def clinic_liability_chart(
    clinics: Sequence[tuple[str, int]], title: str, symbol: str = "$"
) -> str:
    """Bars of credit liability by clinic (a clinic group), each labelled with its exact amount;
    a clinic whose patients owe more than it holds shows no bar, only its (negative) figure."""
    labels = [name for name, _ in clinics]
    texts = [format_money(c, symbol) for _, c in clinics]
    chart = _labelled_bars(
        labels,
        [max(_dollars(cents), 0.0) for _, cents in clinics],
        texts,
        [_PALETTE["bar"]] * len(clinics),
        height=max(130, 40 + 44 * len(clinics)),
    )
    return _to_svg(chart, "chart-clinic-liability", title, _listed(labels, texts))


def utilisation_chart(bands: Sequence[tuple[str, int]], title: str, unlimited: int = 0) -> str:
    """Bars of how many cases have used how much of their package; cases with no maximum
    (unlimited) have no share used, so they get a grey bar of their own, below the rest."""
    labels = [label for label, _ in bands]
    counts = [count for _, count in bands]
    colors = [_PALETTE["bar"]] * len(bands)
    if unlimited:
        labels.append("no maximum")
        counts.append(unlimited)
        colors.append(_PALETTE["apart"])
    chart = _labelled_bars(labels, counts, [f"{c:,}" for c in counts], colors, HEIGHT + 20)
    cases = [plural(count, "case") for count in counts]
    return _to_svg(chart, "chart-utilisation", title, _listed(labels, cases))


def rollforward_chart(rows: Sequence[RollRow], title: str, symbol: str = "$") -> str:
    """Monthly credit created (up), applied and refunded (down) and the liability left at each
    month end, as bars side by side per month, with a money axis and the legend below."""
    labels = [r.label for r in rows]
    series = {
        "Created": [_dollars(r.created) for r in rows],
        "Applied": [-_dollars(abs(r.applied)) for r in rows],
        "Refunded": [-_dollars(abs(r.refunded)) for r in rows],
        "Closing liability": [_dollars(r.closing) for r in rows],
    }
    colors = ("created", "applied", "refunded", "closing")
    chart = Bar(
        **{**_CONFIG, "style": _STYLE.__class__(**{**_style_fields(), "colors": _colors(colors)})},
        height=HEIGHT + 70,
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        show_x_guides=False,
        value_formatter=lambda value: format_money(round(value * 100), symbol)[:-3],
        x_label_rotation=_slant(labels),
    )
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    months = [
        f"created {format_money(r.created, symbol)}, applied {format_money(abs(r.applied), symbol)}"
        f", refunded {format_money(abs(r.refunded), symbol)}, liability at the end "
        f"{format_money(r.closing, symbol)}"
        for r in rows
    ]
    return _to_svg(chart, "chart-rollforward", title, _listed(labels, months))


def _slant(labels: Sequence[str]) -> int:
    """The month names' rotation (degrees clockwise): slanted once they would run into each
    other, steeper for a year of months; each ends at its month (pygal anchors names turned
    180 degrees or more at their end)."""
    if len(labels) > 6:
        return 300
    return 325 if len(labels) > 4 or sum(map(len, labels)) > 28 else 0


def _style_fields() -> dict[str, Any]:
    return {key: value for key, value in vars(_STYLE).items() if not key.startswith("_")}


def _colors(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(_PALETTE[name] for name in names)


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
