"""Server-rendered SVG charts (bar and stacked-column) with titles and descriptions for screen readers."""

from __future__ import annotations

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe-Ito), one colour per decision, in the order decisions escalate.
DECISION_COLOURS = {
    "proceed": "#009E73",
    "proceed_with_safeguards": "#56B4E9",
    "escalate": "#E69F00",
    "do_not_proceed": "#D55E00",
}
BAR_COLOUR = "#0072B2"


def _nice_max(value: float) -> int:
    if value <= 5:
        return 5
    for step in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return int(value * 1.1)


def bar_chart(chart_id: str, title: str, rows: list[tuple[str, int]], *, width: int = 560,
              colour: str = BAR_COLOUR, unit: str = "") -> Markup:
    """A horizontal bar chart of (label, value) rows, largest values as given, with value labels."""
    row_h, label_w, pad = 26, 170, 8
    height = max(1, len(rows)) * row_h + 2 * pad
    top = _nice_max(max((v for _, v in rows), default=0))
    plot_w = width - label_w - 60
    desc = "; ".join(f"{label}: {value}{unit}" for label, value in rows) or "no data"
    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>']
    if not rows:
        parts.append(f'<text x="{pad}" y="{pad + 16}" class="chart-empty">No data yet</text>')
    for i, (label, value) in enumerate(rows):
        y = pad + i * row_h
        w = 0 if top == 0 else round(plot_w * value / top, 1)
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="chart-label">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row_h - 8}" fill="{colour}" rx="2"/>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 17}" class="chart-value">{value}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_columns(chart_id: str, title: str, periods: list[str], series: dict[str, list[int]],
                    colours: dict[str, str], *, width: int = 640, height: int = 260) -> Markup:
    """Stacked columns per period (e.g. month) with a legend; ``series`` maps a name to one value per period."""
    pad_l, pad_b, pad_t, legend_h = 40, 36, 12, 26
    plot_h = height - pad_b - pad_t - legend_h
    plot_w = width - pad_l - 10
    totals = [sum(values[i] for values in series.values()) for i in range(len(periods))]
    top = _nice_max(max(totals, default=0))
    col_w = plot_w / max(1, len(periods))
    desc = "; ".join(
        f"{p}: " + ", ".join(f"{name.replace('_', ' ')} {values[i]}" for name, values in series.items() if values[i])
        for i, p in enumerate(periods) if totals[i]) or "no data"
    parts = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>']
    base_y = pad_t + legend_h + plot_h
    for frac in (0, 0.5, 1):
        y = base_y - plot_h * frac
        parts.append(f'<line x1="{pad_l}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="chart-grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-axis">'
                     f'{round(top * frac)}</text>')
    for i, period in enumerate(periods):
        x = pad_l + i * col_w + col_w * 0.15
        y = base_y
        for name, values in series.items():
            value = values[i]
            if not value or not top:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{col_w * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{colours.get(name, BAR_COLOUR)}"><title>{escape(period)}: '
                         f'{escape(name.replace("_", " "))} {value}</title></rect>')
        parts.append(f'<text x="{x + col_w * 0.35:.1f}" y="{base_y + 16}" text-anchor="middle" '
                     f'class="chart-axis">{escape(period)}</text>')
    lx = pad_l
    for name in series:
        label = name.replace("_", " ")
        parts.append(f'<rect x="{lx}" y="{pad_t}" width="12" height="12" fill="{colours.get(name, BAR_COLOUR)}"/>')
        parts.append(f'<text x="{lx + 16}" y="{pad_t + 11}" class="chart-legend">{escape(label)}</text>')
        lx += 24 + 7 * len(label)
    parts.append("</svg>")
    return Markup("".join(parts))
