"""A campaign's results as one self-contained HTML page: inline CSS and inline SVG, nothing fetched.

The page can be opened from a file, mailed or stored next to the campaign and still render, and it
loads nothing that could track who reads it. Campaign, variant and metric names come from users:
every string is escaped (`html.escape`, quotes included) before it reaches the page.

Per metric: each variant's mean with its interval as an SVG error bar (class `error-bar`, one per
variant that has an interval), the test and its verdict, and a table with the sample sizes.
"""

from __future__ import annotations

import html
import math

from handler.experiments.results import (
    TEST_LABELS,
    Bounds,
    CampaignResults,
    ComparisonResult,
    MetricResult,
    PreferenceResult,
    VariantResult,
)

_CSS = """
:root { color-scheme: light; --fg: #1d232b; --muted: #5b6673; --line: #d5dbe2; --bg: #ffffff;
  --panel: #f5f7fa; --control: #6b7785; --variant: #1f6feb; --win: #1a7f37; --lose: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Liberation Sans", Arial, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
code { font: 12px ui-monospace, "Liberation Mono", monospace; background: var(--panel); padding: 1px 4px;
  border-radius: 3px; }
.meta, .note { color: var(--muted); margin: 0 0 8px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.status-active { background: #ddf4ff; color: #0969da; }
.status-completed { background: #dafbe1; color: var(--win); }
.winner { font-size: 16px; margin: 8px 0; }
.stop { background: var(--panel); border-left: 4px solid var(--line); padding: 8px 12px; margin: 8px 0 16px; }
section { border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.verdict { font-weight: 600; margin: 8px 0; }
.verdict.better { color: var(--win); }
.verdict.worse { color: var(--lose); }
.legend { color: var(--muted); font-size: 12px; margin: 2px 0 0; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line);
  font-variant-numeric: tabular-nums; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 12px system-ui, "Liberation Sans", Arial, sans-serif; fill: var(--fg); }
svg .axis line, svg .grid { stroke: var(--line); }
svg .tick text { fill: var(--muted); font-size: 11px; }
svg .error-bar line { stroke: var(--variant); stroke-width: 2; }
svg .error-bar circle, svg .no-interval circle { fill: var(--variant); }
svg .control line { stroke: var(--control); }
svg .control circle { fill: var(--control); }
svg .winner line { stroke: var(--win); }
svg .winner circle { fill: var(--win); }
svg .reference { stroke: var(--control); stroke-dasharray: 4 3; }
svg .win-rate-bar line { stroke: var(--variant); stroke-width: 2; }
svg .win-rate-bar circle { fill: var(--variant); }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""

_WIDTH = 760
_LABEL_W = 200
_RIGHT = 30
_ROW = 34
_TOP = 12
_AXIS_H = 34


def _e(value: object) -> str:
    """Escape for text and for quoted attribute values."""
    return html.escape(str(value), quote=True)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _num(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.4g}"


def _signed(x: float | None) -> str:
    s = _num(x)
    return "+" + s if x is not None and x > 0 else s


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _ci(ci: Bounds | None) -> str:
    return "n/a" if ci is None else f"[{_num(ci.low)}, {_num(ci.high)}]"


def _pct(level: float) -> str:
    return f"{100 * level:.4g}%"


def _nice_step(span: float) -> float:
    raw = span / 5.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * magnitude:
            return m * magnitude
    return 10.0 * magnitude


def _domain(values: list[float]) -> tuple[float, float, list[float]]:
    """An axis range covering the values, widened to round ticks."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    ticks = [lo + i * step for i in range(round((hi - lo) / step) + 1)]
    return lo, hi, ticks


def _axis(lo: float, hi: float, ticks: list[float], y_top: float, y_axis: float) -> tuple[str, float, float]:
    x0, x1 = float(_LABEL_W), float(_WIDTH - _RIGHT)
    parts = [f'<g class="axis"><line x1="{x0}" y1="{y_axis}" x2="{x1}" y2="{y_axis}"/></g>']
    for t in ticks:
        x = x0 + (t - lo) / (hi - lo) * (x1 - x0)
        label = _num(0.0 if abs(t) < 1e-12 * (hi - lo) else t)
        parts.append(
            f'<g class="tick"><line class="grid" x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_axis}"/>'
            f'<text x="{x:.1f}" y="{y_axis + 16}" text-anchor="middle">{_e(label)}</text></g>'
        )
    return "".join(parts), x0, x1


def _mark(
    cls: str,
    label: str,
    title: str,
    y: float,
    x_mean: float,
    x_lo: float | None,
    x_hi: float | None,
    data: str,
) -> str:
    text = f'<text x="{_LABEL_W - 10}" y="{y + 4}" text-anchor="end">{_e(label)}</text>'
    if x_lo is None or x_hi is None:
        return (
            f'<g class="{cls} no-interval" {data}><title>{_e(title)}</title>{text}'
            f'<circle cx="{x_mean:.1f}" cy="{y}" r="5"/></g>'
        )
    return (
        f'<g class="{cls}" {data}><title>{_e(title)}</title>{text}'
        f'<line class="ci" x1="{x_lo:.1f}" y1="{y}" x2="{x_hi:.1f}" y2="{y}"/>'
        f'<line class="cap" x1="{x_lo:.1f}" y1="{y - 7}" x2="{x_lo:.1f}" y2="{y + 7}"/>'
        f'<line class="cap" x1="{x_hi:.1f}" y1="{y - 7}" x2="{x_hi:.1f}" y2="{y + 7}"/>'
        f'<circle class="mean" cx="{x_mean:.1f}" cy="{y}" r="5"/></g>'
    )


def _metric_chart(metric: MetricResult, winner: str | None) -> str:
    """Each variant's mean and interval as a horizontal error bar, the control's mean dashed."""
    shown = [v for v in metric.variants if v.mean is not None]
    values = [v.mean for v in shown if v.mean is not None]
    for v in shown:
        if v.ci is not None:
            values += [v.ci.low, v.ci.high]
    lo, hi, ticks = _domain(values)
    height = _TOP + _ROW * max(1, len(shown)) + _AXIS_H
    y_axis = float(_TOP + _ROW * max(1, len(shown)))
    axis, x0, x1 = _axis(lo, hi, ticks, _TOP, y_axis)

    def x(value: float) -> float:
        return x0 + (value - lo) / (hi - lo) * (x1 - x0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{_e(f"Mean of {metric.metric} per variant with {_pct(metric.confidence)} intervals")}">',
        axis,
    ]
    for v in shown:
        if v.is_control and v.mean is not None:
            parts.append(
                f'<line class="reference" x1="{x(v.mean):.1f}" y1="{_TOP}" x2="{x(v.mean):.1f}" y2="{y_axis}"/>'
            )
    for i, v in enumerate(shown):
        assert v.mean is not None
        y = _TOP + _ROW * i + _ROW / 2
        role = " control" if v.is_control else ""
        role += " winner" if v.variant == winner else ""
        title = f"{v.variant}: mean {_num(v.mean)}, {_pct(metric.confidence)} CI {_ci(v.ci)}, n = {v.n}"
        label = f"{_short(v.variant, 20)} (n={v.n})"
        data = f'data-variant="{_e(v.variant)}" data-n="{v.n}"'
        if v.ci is None:
            parts.append(_mark("variant" + role, label, title, y, x(v.mean), None, None, data))
        else:
            parts.append(
                _mark("error-bar" + role, label, title, y, x(v.mean), x(v.ci.low), x(v.ci.high), data)
            )
    if not shown:
        parts.append(f'<text x="{_LABEL_W}" y="{_TOP + _ROW / 2}">no values yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def _comparison_cells(c: ComparisonResult | None) -> str:
    if c is None:
        return '<td class="num">control</td><td class="num">\u2014</td><td class="num">\u2014</td><td>\u2014</td>'
    if c.p_value is None:
        verdict = "not enough data"
    elif c.significant:
        verdict = "significant"
    else:
        verdict = "not significant"
    return (
        f'<td class="num diff">{_e(_signed(c.diff))}</td><td class="num">{_e(_ci(c.ci))}</td>'
        f'<td class="num p">{_e(_p(c.p_value))}</td><td class="significance">{_e(verdict)}</td>'
    )


def _variant_row(v: VariantResult, c: ComparisonResult | None) -> str:
    name = _e(v.variant) + (" <em>(control)</em>" if v.is_control else "")
    return (
        f'<tr data-variant="{_e(v.variant)}"><td>{name}</td><td class="num n">{v.n}</td>'
        f'<td class="num">{_e(_num(v.mean))}</td><td class="num">{_e(_ci(v.ci))}</td>'
        f"{_comparison_cells(c)}</tr>"
    )


def _metric_section(metric: MetricResult, winner: str | None) -> str:
    by_variant = {c.variant: c for c in metric.comparisons}
    level = metric.comparisons[0].confidence if metric.comparisons else metric.confidence
    good = [
        c.significant and c.diff is not None and (c.diff > 0) == metric.higher_is_better
        for c in metric.comparisons
    ]
    tone = " better" if any(good) else " worse" if any(c.significant for c in metric.comparisons) else ""
    adjusted = (
        f", Bonferroni-adjusted across {len(metric.comparisons)} comparisons"
        if len(metric.comparisons) > 1
        else ""
    )
    rows = "".join(_variant_row(v, by_variant.get(v.variant)) for v in metric.variants)
    goal = "higher is better" if metric.higher_is_better else "lower is better"
    return (
        f'<section class="metric" data-metric="{_e(metric.metric)}">'
        f"<h2>{_e(metric.metric)}</h2>"
        f'<p class="meta">{_e(metric.kind)} metric ({_e(goal)}) \u00b7 test: '
        f'<span class="test" data-test="{_e(metric.test)}">{_e(TEST_LABELS[metric.test])}</span> \u00b7 '
        f"means with {_e(_pct(metric.confidence))} intervals"
        f"{' (Wilson)' if metric.kind == 'binary' else ' (Student t)'}</p>"
        f"{_metric_chart(metric, winner)}"
        '<p class="legend">dot: mean \u00b7 bar: interval \u00b7 grey: control (dashed line at its mean) '
        "\u00b7 green: winner</p>"
        f'<p class="verdict{tone}">{_e(metric.verdict)}</p>'
        f"<table><thead><tr><th>variant</th><th class=num>n</th><th class=num>mean</th>"
        f"<th class=num>{_e(_pct(metric.confidence))} CI</th><th class=num>diff vs control</th>"
        f"<th class=num>{_e(_pct(level))} CI of diff</th><th class=num>p</th><th>verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f'<p class="note">Differences are variant minus control, at {_e(_pct(level))}{_e(adjusted)}'
        f"{' (Newcombe hybrid score interval)' if metric.kind == 'binary' else ''}.</p>"
        "</section>"
    )


def _preference_chart(prefs: list[PreferenceResult]) -> str:
    height = _TOP + _ROW * len(prefs) + _AXIS_H
    y_axis = float(_TOP + _ROW * len(prefs))
    axis, x0, x1 = _axis(0.0, 1.0, [i / 10 for i in range(11)], _TOP, y_axis)

    def x(value: float) -> float:
        return x0 + value * (x1 - x0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="Win rates with intervals">',
        axis,
        f'<line class="reference" x1="{x(0.5):.1f}" y1="{_TOP}" x2="{x(0.5):.1f}" y2="{y_axis}"/>',
    ]
    for i, p in enumerate(prefs):
        if p.win_rate is None:
            continue
        y = _TOP + _ROW * i + _ROW / 2
        label = f"{_short(p.variant_a, 12)} vs {_short(p.variant_b, 12)}"
        title = f"{p.variant_a} vs {p.variant_b}: win rate {_num(p.win_rate)}, CI {_ci(p.ci)}, n = {p.n}"
        data = f'data-pair="{_e(p.variant_a)} vs {_e(p.variant_b)}" data-n="{p.n}"'
        lo, hi = (x(p.ci.low), x(p.ci.high)) if p.ci is not None else (None, None)
        parts.append(_mark("win-rate-bar", label, title, y, x(p.win_rate), lo, hi, data))
    parts.append("</svg>")
    return "".join(parts)


def _preferences_section(prefs: list[PreferenceResult], confidence: float) -> str:
    rows = []
    for p in prefs:
        if p.win_rate is None:
            verdict = "no judgements yet"
        elif p.significant:
            better = p.variant_a if p.wins > p.losses else p.variant_b
            verdict = f"{better} preferred"
        else:
            verdict = "no significant preference"
        rows.append(
            f'<tr data-pair="{_e(p.variant_a)} vs {_e(p.variant_b)}"><td>{_e(p.variant_a)} vs {_e(p.variant_b)}'
            f"{_e(f' ({p.metric})' if p.metric else '')}</td>"
            f'<td class="num n">{p.n}</td><td class="num">{p.wins}</td><td class="num">{p.losses}</td>'
            f'<td class="num">{p.ties}</td><td class="num">{_e(_num(p.win_rate))}</td>'
            f'<td class="num">{_e(_ci(p.ci))}</td><td class="num p">{_e(_p(p.p_value))}</td>'
            f'<td class="significance">{_e(verdict)}</td></tr>'
        )
    return (
        '<section class="preferences"><h2>Pairwise preferences</h2>'
        f'<p class="meta">Win rate of the first variant (ties count half), {_e(_pct(confidence))} Wilson '
        f"interval; p-value: {_e(TEST_LABELS['sign_test'])}.</p>"
        f"{_preference_chart(prefs)}"
        "<table><thead><tr><th>pair</th><th class=num>judgements</th><th class=num>wins</th>"
        "<th class=num>losses</th><th class=num>ties</th><th class=num>win rate</th>"
        f"<th class=num>{_e(_pct(confidence))} CI</th><th class=num>p</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def render_report(results: CampaignResults) -> str:
    """The whole page, as a string of HTML."""
    r = results
    if r.winner is not None:
        winner = f'<p class="winner">Winner: <strong data-winner="{_e(r.winner)}">{_e(r.winner)}</strong></p>'
    else:
        winner = '<p class="winner">No winner yet.</p>'
    stop = ""
    if r.stop is not None:
        s = r.stop
        stop = (
            f'<p class="stop">Stop rule: <code>{_e(s.metric)}</code>, at least {s.min_samples} values per '
            f"variant, confidence {_e(_pct(s.confidence))} (per comparison \u03b1 = {_e(f'{s.alpha:.3g}')})"
            f' \u2014 <span class="stop-reason">{_e(s.reason)}</span></p>'
        )
    control = f" \u00b7 control <code>{_e(r.control)}</code>" if r.control is not None else ""
    body = "".join(_metric_section(m, r.winner) for m in r.metrics) or (
        '<p class="note">No metric has values yet.</p>'
    )
    if r.preferences:
        body += _preferences_section(r.preferences, r.confidence)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network at all: not even an image or a font may be fetched by this page.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_e(r.name)} \u2014 campaign results</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_e(r.name)}</h1><p class="meta">campaign <code>{_e(r.key)}</code> \u00b7 id '
        f'<code>{_e(r.campaign_id)}</code>{control} \u00b7 <span class="status status-{_e(r.status)}">'
        f"{_e(r.status)}</span></p>{winner}{stop}</header>"
        f"<main>{body}</main>"
        "<footer>Continuous metrics: Student t intervals, Welch's t-test. 0/1 metrics: Wilson intervals, "
        "pooled two-proportion z-test, Newcombe interval for the difference. A fixed-level test checked "
        "repeatedly while data arrives finds false winners more often than its level says.</footer>"
        "</body></html>\n"
    )
