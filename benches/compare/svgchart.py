"""Hand-written SVG charts for render.py: no matplotlib, no dependencies.

line_chart(): one line per series over categorical x positions (e.g. connection counts), linear
or log y. bar_chart(): horizontal bars, optionally stacked (two segments per bar). Both return
the SVG document as a string.
"""
import math
from html import escape

PALETTE = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#1f77b4", "#2ca02c", "#17becf",
           "#bcbd22", "#e377c2", "#7f7f7f", "#393b79", "#637939"]
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'


def _nice_ticks(lo, hi, log):
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        if a == b:
            b += 1
        return [10.0 ** e for e in range(a, b + 1)]
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt_num(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _frame(width, height, title, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {FONT} font-size="12">\n'
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{escape(title)}</text>\n' + body + "</svg>\n")


def line_chart(title, xlabels, series, ylabel, xlabel="", log=False, width=760, height=420):
    """series: list of (name, [value or None per x label])."""
    left, right, top, bottom = 70, 170, 34, 52
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, ys in series for v in ys if v is not None and (v > 0 or not log)]
    if not vals:
        return _frame(width, height, title, "")
    lo, hi = (min(vals), max(vals)) if log else (0.0, max(vals) * 1.05)
    ticks = _nice_ticks(lo, hi, log)
    lo, hi = ticks[0], ticks[-1]

    def y(v):
        if log:
            f = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            f = (v - lo) / (hi - lo)
        return top + ph * (1 - f)

    def x(i):
        return left + (pw * (i + 0.5) / len(xlabels))

    b = []
    for t in ticks:
        b.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                 f'stroke="#e0e0e0"/>')
        b.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{fmt_num(t)}</text>')
    for i, lab in enumerate(xlabels):
        b.append(f'<text x="{x(i):.1f}" y="{top + ph + 18}" text-anchor="middle">'
                 f'{escape(str(lab))}</text>')
    b.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    b.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">'
             f'{escape(xlabel)}</text>')
    b.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" '
             f'text-anchor="middle">{escape(ylabel)}{" (log scale)" if log else ""}</text>')
    for k, (name, ys) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = [(x(i), y(v)) for i, v in enumerate(ys) if v is not None and (v > 0 or not log)]
        if len(pts) > 1:
            d = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            b.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py in pts:
            b.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"/>')
        ly = top + 8 + 18 * k
        b.append(f'<line x1="{left + pw + 12}" x2="{left + pw + 32}" y1="{ly}" y2="{ly}" '
                 f'stroke="{color}" stroke-width="3"/>')
        b.append(f'<text x="{left + pw + 38}" y="{ly + 4}">{escape(name)}</text>')
    return _frame(width, height, title, "\n".join(b) + "\n")


def bar_chart(title, rows, unit, log=False, width=760, seg_names=None, target=None):
    """rows: list of (label, value) or (label, (segment1, segment2)) for stacked bars.
    target: (value, label) drawn as a dashed vertical line."""
    left, right, top, bar_h, gap = 210, 90, 40, 22, 10
    height = top + len(rows) * (bar_h + gap) + (60 if seg_names else 40)
    pw = width - left - right
    totals = [sum(x for x in v if x is not None) if isinstance(v, tuple) else v
              for _, v in rows]
    vals = [t for t in totals if t is not None and t > 0]
    if target:
        vals.append(target[0])
    if not vals:
        return _frame(width, height, title, "")
    if log:
        ticks = _nice_ticks(min(vals), max(vals), True)
    else:
        ticks = _nice_ticks(0, max(vals) * 1.05, False)
    lo, hi = ticks[0], ticks[-1]

    def xv(v):
        if log:
            v = max(v, lo)
            return left + pw * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return left + pw * (v - lo) / (hi - lo)

    b = []
    bottom = top + len(rows) * (bar_h + gap)
    for t in ticks:
        b.append(f'<line x1="{xv(t):.1f}" x2="{xv(t):.1f}" y1="{top - 4}" y2="{bottom}" '
                 f'stroke="#e0e0e0"/>')
        b.append(f'<text x="{xv(t):.1f}" y="{bottom + 16}" text-anchor="middle">{fmt_num(t)}</text>')
    b.append(f'<text x="{left + pw / 2}" y="{bottom + 34}" text-anchor="middle">'
             f'{escape(unit)}{" (log scale)" if log else ""}</text>')
    colors = ["#1f77b4", "#aec7e8"]
    for i, ((label, v), total) in enumerate(zip(rows, totals)):
        yy = top + i * (bar_h + gap)
        b.append(f'<text x="{left - 8}" y="{yy + bar_h / 2 + 4}" text-anchor="end">'
                 f'{escape(label)}</text>')
        if total is None:
            b.append(f'<text x="{left + 4}" y="{yy + bar_h / 2 + 4}" fill="#999">n/a</text>')
            continue
        segs = v if isinstance(v, tuple) else (v,)
        x0 = xv(lo) if log else left
        acc = 0.0
        for j, sv in enumerate(segs):
            if sv is None or sv <= 0:
                continue
            acc += sv
            x1 = xv(acc)
            b.append(f'<rect x="{x0:.1f}" y="{yy}" width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                     f'fill="{colors[j % 2]}"/>')
            x0 = x1
        b.append(f'<text x="{x0 + 6:.1f}" y="{yy + bar_h / 2 + 4}">{fmt_num(round(total, 2))}</text>')
    if target:
        tx = xv(target[0])
        b.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top - 8}" y2="{bottom}" stroke="#d62728" '
                 f'stroke-dasharray="5,4" stroke-width="1.5"/>')
        b.append(f'<text x="{tx + 4:.1f}" y="{top - 10}" fill="#d62728">{escape(target[1])}</text>')
    if seg_names:
        ly = bottom + 48
        for j, name in enumerate(seg_names):
            lx = left + j * 220
            b.append(f'<rect x="{lx}" y="{ly - 10}" width="14" height="12" fill="{colors[j % 2]}"/>')
            b.append(f'<text x="{lx + 20}" y="{ly}">{escape(name)}</text>')
    return _frame(width, height, title, "\n".join(b) + "\n")
