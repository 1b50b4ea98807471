#!/usr/bin/env python3
"""Renders benches/compare results (JSON lines from run.sh) as Markdown.

usage: render.py RESULTS.jsonl [--img-dir DIR] [--img-ref PREFIX]

One table of median req/s per server x scenario with the median p99 latency (from wrk's
--latency output) and the ratio to node_http, then RSS, then every run that had errors, non-2xx
answers or a dead server, then the issue targets checked against the medians. Then the extra
rows run.sh may have recorded (idle connections, slowloris, CPU-heavy route).

With --img-dir, also writes SVG charts (hand-written SVG, no dependencies) into DIR: req/s, p99
and RSS against connections for the plaintext-cN and json-cN scenarios (bench-rps-plaintext.svg,
...), KiB per idle connection (bench-idle.svg) and the cheap request's latency next to the
CPU-heavy route (bench-heavy.svg). The Markdown embeds them as PREFIX/<name> (default: img,
as seen from docs/).
"""
import json
import os
import statistics
import sys
from collections import OrderedDict, defaultdict

import svgchart

BASE = "node_http"


def load(path):
    meta, runs, extra = None, [], defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("type") == "meta":
                meta = rec
            elif rec.get("type") == "run":
                runs.append(rec)
            elif rec.get("type") in ("idle", "slowloris", "heavy"):
                extra[rec["type"]].append(rec)
    return meta, runs, extra


def fmt_rps(v):
    if v is None:
        return "-"
    return f"{v / 1000:,.1f}k" if v >= 10000 else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"


def lowest(values):
    values = [v for v in values if v is not None]
    return min(values) if values else None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    args = sys.argv[1:]
    img_dir, img_ref = None, "img"
    if "--img-dir" in args:
        i = args.index("--img-dir")
        img_dir = args[i + 1]
        del args[i:i + 2]
    if "--img-ref" in args:
        i = args.index("--img-ref")
        img_ref = args[i + 1]
        del args[i:i + 2]
    meta, runs, extra = load(args[0])
    out = main_grid(meta, runs)
    out += charts(runs, img_dir, img_ref, (meta or {}).get("client", "wrk -t1"))
    out += extra_rows(extra, img_dir, img_ref)
    print("\n".join(out).rstrip() + "\n")


def main_grid(meta, runs):
    out = []
    if meta:
        out.append(
            f"Mode `{meta['mode']}`: {meta['duration_s']} s per run, {meta['runs']} runs per cell "
            f"(median shown), interleaved; server on CPU {meta['server_cpu']}, client "
            f"({meta.get('client', 'wrk -t1')}) on CPU {meta['wrk_cpu']}. {meta.get('machine', '')}. "
            f"Tree {meta.get('git', '?')}, hello built {meta.get('hello_built', '?')}"
            + (" (--skip-build)" if meta.get("skip_build") else "") + "."
        )
        out.append("")
    if not runs:
        return out
    servers = list(OrderedDict.fromkeys(r["server"] for r in runs))
    scenarios = list(OrderedDict.fromkeys(r["scenario"] for r in runs))
    by = defaultdict(list)
    for r in runs:
        by[(r["server"], r["scenario"])].append(r)
    rps = {k: med([r.get("rps") for r in v]) for k, v in by.items()}
    p99 = {k: med([r.get("p99_ms") for r in v]) for k, v in by.items()}
    out.append("Median req/s (ratio to node_http) · median p99 latency:")
    out.append("")
    out.append("| server | " + " | ".join(scenarios) + " |")
    out.append("|---|" + "---:|" * len(scenarios))
    for s in servers:
        cells = []
        for sc in scenarios:
            k = (s, sc)
            if k not in rps:
                cells.append("-")
                continue
            base = rps.get((BASE, sc))
            ratio = f" ({rps[k] / base:.2f}x)" if base and rps[k] is not None else ""
            n = len(by[k])
            cells.append(f"{fmt_rps(rps[k])}{ratio} · {fmt_ms(p99[k])}" + ("" if n >= 3 else f" [n={n}]"))
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    if any(r.get("depth", 1) > 1 for r in runs) and (meta or {}).get("client", "wrk -t1") == "wrk -t1":
        out.append("")
        out.append("Pipelined runs show no p99: wrk's percentiles are broken with pipelining "
                   "(one sample per batch, and the coordinated-omission correction adds samples "
                   "below the minimum, so p90/p99 print as 0).")
    out.append("")

    out.append("Spread of req/s over the runs (min-max), and the server's CPU use during the run "
               "(median; 100% = one core busy for the whole run):")
    out.append("")
    out.append("| server | " + " | ".join(scenarios) + " |")
    out.append("|---|" + "---:|" * len(scenarios))
    for s in servers:
        cells = []
        for sc in scenarios:
            v = [r.get("rps") for r in by.get((s, sc), []) if r.get("rps") is not None]
            cpu = med([r.get("server_cpu_pct") for r in by.get((s, sc), [])])
            if not v:
                cells.append("-")
                continue
            cells.append(f"{fmt_rps(min(v))}-{fmt_rps(max(v))} · "
                         + ("cpu ?" if cpu is None else f"cpu {cpu:.0f}%"))
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    out.append("")

    have_cpu = any(r.get("req_per_cpu_s") for r in runs)
    if have_cpu:
        out.append("Requests per server CPU-second (median; total requests / server user+sys time). "
                   "Less sensitive to CPU stolen by other processes than req/s; ratio to node_http:")
        out.append("")
        out.append("| server | " + " | ".join(scenarios) + " |")
        out.append("|---|" + "---:|" * len(scenarios))
        eff = {k: med([r.get("req_per_cpu_s") for r in v]) for k, v in by.items()}
        for s in servers:
            cells = []
            for sc in scenarios:
                v, base = eff.get((s, sc)), eff.get((BASE, sc))
                ratio = f" ({v / base:.2f}x)" if v and base else ""
                cells.append("-" if v is None else f"{fmt_rps(v)}{ratio}")
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")

    out.append("Server RSS after each run (MiB, median over runs; node_cluster = primary + workers):")
    out.append("")
    out.append("| server | " + " | ".join(scenarios) + " | peak (VmHWM) |")
    out.append("|---|" + "---:|" * (len(scenarios) + 1))
    for s in servers:
        cells = []
        for sc in scenarios:
            v = med([r.get("rss_kb") for r in by.get((s, sc), [])])
            cells.append("-" if v is None else f"{v / 1024:.1f}")
        hwm = max([r.get("hwm_kb") or 0 for r in runs if r["server"] == s] or [0])
        out.append(f"| {s} | " + " | ".join(cells) + f" | {hwm / 1024:.1f} |")
    out.append("")

    bad = [
        r for r in runs
        if r.get("non2xx") or any((r.get("errors") or {}).values()) or not r.get("alive", True)
        or r.get("rps") is None
    ]
    out.append("Runs with errors, non-2xx answers or a dead server: " + ("none." if not bad else ""))
    if bad:
        out.append("")
        out.append("| server | scenario | round | req/s | non-2xx | connect | read | write | timeout | alive |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in bad:
            e = r.get("errors") or {}
            out.append(
                f"| {r['server']} | {r['scenario']} | {r.get('round')} | {fmt_rps(r.get('rps'))} | "
                f"{r.get('non2xx', 0)} | {e.get('connect', 0)} | {e.get('read', 0)} | "
                f"{e.get('write', 0)} | {e.get('timeout', 0)} | {r.get('alive', True)} |"
            )
    out.append("")

    checks = []
    one, node = rps.get(("oneloop", "plaintext-c256")), rps.get((BASE, "plaintext-c256"))
    if one and node:
        ok = one >= 3 * node
        checks.append(f"- oneloop >= 3x node_http at 256 connections: {one / node:.2f}x "
                      f"({'met' if ok else 'NOT met'})")
    one, bare = rps.get(("oneloop", "pipeline16-c256")), rps.get(("bare_mio", "pipeline16-c256"))
    if one and bare:
        ok = one >= 0.8 * bare
        checks.append(f"- oneloop pipelining (depth 16) >= 80% of bare_mio: {100 * one / bare:.0f}% "
                      f"({'met' if ok else 'NOT met'})")
    for s in servers:
        hi, lo = rps.get((s, "plaintext-c10000")), rps.get((s, "plaintext-c1000"))
        if hi is not None and lo:
            checks.append(f"- {s}: 10,000 connections give {100 * hi / lo:.0f}% of the req/s at 1,000")
    e1, e2 = None, None
    if have_cpu:
        e1 = eff.get(("oneloop", "plaintext-c256")); e2 = eff.get((BASE, "plaintext-c256"))
        if e1 and e2:
            checks.append(f"- per server CPU-second at 256 connections: oneloop {e1 / e2:.2f}x node_http")
        e1 = eff.get(("oneloop", "pipeline16-c256")); e2 = eff.get(("bare_mio", "pipeline16-c256"))
        if e1 and e2:
            checks.append(f"- per server CPU-second, pipelining depth 16: oneloop {100 * e1 / e2:.0f}% of bare_mio")
    if checks:
        out.append("Targets:")
        out.append("")
        out.extend(checks)
        out.append("")
    return out


def write_svg(img_dir, name, svg):
    os.makedirs(img_dir, exist_ok=True)
    with open(os.path.join(img_dir, name), "w") as f:
        f.write(svg)


def charts(runs, img_dir, img_ref, client="wrk -t1"):
    """req/s, p99 and RSS against connections for each family of <prefix>-c<N> scenarios."""
    if not img_dir or not runs:
        return []
    servers = list(OrderedDict.fromkeys(r["server"] for r in runs))
    fams = OrderedDict()
    for r in runs:
        prefix, _, c = r["scenario"].rpartition("-c")
        if prefix in ("plaintext", "json") and c.isdigit():
            fams.setdefault(prefix, set()).add(int(c))
    out = []
    first = runs[0]["scenario"].rpartition("-c")[0]
    for prefix, conns in fams.items():
        conns = sorted(conns)
        if len(conns) < 2:
            continue

        def series(key, scale=1.0, pick=med):
            res = []
            for s in servers:
                ys = []
                for c in conns:
                    v = pick([r.get(key) for r in runs
                              if r["server"] == s and r["scenario"] == f"{prefix}-c{c}"])
                    ys.append(None if v is None else v * scale)
                if any(v is not None for v in ys):
                    res.append((s, ys))
            return res

        xl = [f"{c:,}" for c in conns]
        made = [
            (f"bench-rps-{prefix}.svg", f"{prefix}: req/s vs connections",
             svgchart.line_chart(f"/{prefix}: median req/s vs connections", xl, series("rps"),
                                 "req/s", f"keep-alive connections ({client})")),
            (f"bench-p99-{prefix}.svg", f"{prefix}: p99 latency vs connections",
             svgchart.line_chart(f"/{prefix}: median p99 latency vs connections", xl,
                                 series("p99_ms"), "p99 latency, ms",
                                 f"keep-alive connections ({client})", log=True)),
        ]
        if prefix == first:
            # Allocators keep freed memory: after the first 10,000-connection run every later
            # run shows that high-water mark. The lowest RSS over the rounds is the one from
            # round 1, where this family runs in increasing connection order.
            made.append(
                (f"bench-rss-{prefix}.svg", f"{prefix}: server RSS vs connections",
                 svgchart.line_chart(f"/{prefix}: server RSS after the run (lowest of the rounds)",
                                     xl, series("rss_kb", 1 / 1024, pick=lowest), "RSS, MiB",
                                     f"keep-alive connections ({client})", log=True)))
        for name, alt, svg in made:
            write_svg(img_dir, name, svg)
            out.append(f"![{alt}]({img_ref}/{name})")
            out.append("")
    return out


def lat(rep, key):
    """A latency percentile of an oneloop-load report, in ms."""
    if not rep:
        return None
    v = (rep.get("latency_us") or {}).get(key)
    return None if v is None else v / 1000


def errors_of(rep):
    return ((rep or {}).get("errors") or {}).get("total", 0) + (rep or {}).get("non_2xx", 0)


def extra_rows(extra, img_dir, img_ref):
    out = []
    if extra.get("idle"):
        out += idle_section(extra["idle"], img_dir, img_ref)
    if extra.get("slowloris"):
        out += slowloris_section(extra["slowloris"])
    if extra.get("heavy"):
        out += heavy_section(extra["heavy"], img_dir, img_ref)
    return out


def idle_section(recs, img_dir, img_ref):
    n = recs[0]["n"]
    servers = list(OrderedDict.fromkeys(r["server"] for r in recs))
    out = [f"**Idle keep-alive connections:** {n:,} connections held by `oneloop-load --idle {n} "
           "--idle-every 3s` (each sends `/plaintext` once, then again 3 s after each answer, so "
           "no server's 5 s keep-alive timeout closes them). RSS per connection = (median of 3 "
           "VmRSS samples with the connections held - VmRSS before) / N, median over rounds. "
           "Kernel memory (socket buffers, and for threads their 16 KiB kernel stacks) is not in "
           "RSS: the thread-stack column counts new threads x 16 KiB per connection. Fresh "
           "request: a new connection sending 200 req/s (open loop) for 3 s while the idle ones "
           "are held.", ""]
    out.append("| server | RSS before (MiB) | RSS with (MiB) | RSS per conn (KiB) | + kernel stacks "
               "(KiB/conn) | threads | all held | closed by server | fresh p50 | fresh p99 | "
               "fresh errors | rounds |")
    out.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    bars = []
    for s in servers:
        rs = [r for r in recs if r["server"] == s]
        per = med([(r["rss_with_kb"] - r["rss_before_kb"]) / r["n"] for r in rs])
        ks = med([max(0, r["threads_with"] - r["threads_before"]) * 16 / r["n"] for r in rs])
        held = all(r.get("all_connected") and r.get("alive", True) for r in rs)
        closed = sum(((r.get("hold") or {}).get("idle") or {}).get("closed_by_server", 0) for r in rs)
        fr = [r.get("fresh") for r in rs]
        out.append(
            f"| {s} | {med([r['rss_before_kb'] for r in rs]) / 1024:.1f} | "
            f"{med([r['rss_with_kb'] for r in rs]) / 1024:.1f} | **{per:.2f}** | "
            f"{ks:.1f} | {med([r['threads_with'] for r in rs]):.0f} | {'yes' if held else 'NO'} | "
            f"{closed} | {fmt_ms(med([lat(f, 'p50') for f in fr]))} | "
            f"{fmt_ms(med([lat(f, 'p99') for f in fr]))} | {sum(errors_of(f) for f in fr)} | "
            f"{len(rs)} |")
        bars.append((s, (per, ks if ks > 0 else None)))
    out.append("")
    one = [r for r in recs if r["server"] == "oneloop"]
    if one:
        per = med([(r["rss_with_kb"] - r["rss_before_kb"]) / r["n"] for r in one])
        out.append(f"Target oneloop <= 2 KiB per idle connection: {per:.2f} KiB "
                   f"({'met' if per <= 2 else 'NOT met'}).")
        out.append("")
    if img_dir:
        write_svg(img_dir, "bench-idle.svg", svgchart.bar_chart(
            f"Memory per idle keep-alive connection ({n:,} held)", bars, "KiB per connection",
            seg_names=["RSS (user space)", "kernel stack (threads x 16 KiB)"],
            target=(2.0, "target 2 KiB")))
        out.append(f"![memory per idle connection]({img_ref}/bench-idle.svg)")
        out.append("")
    return out


def slowloris_section(recs):
    n = max(r["slowloris"] for r in recs)
    servers = list(OrderedDict.fromkeys(r["server"] for r in recs))
    out = [f"**Slowloris:** 64 closed-loop connections on `/plaintext` (oneloop-load, 1 s warm-up), "
           f"alone and next to {n} slowloris connections (`--slowloris {n}`: request line + Host, "
           "then one header byte per second); median over rounds, the two interleaved.", ""]
    out.append("| server | req/s alone | req/s with slowloris | kept | p99 alone | p99 with | "
               "RSS alone (MiB) | RSS with (MiB) | slowloris closed by server | errors | rounds |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        a = [r for r in recs if r["server"] == s and r["mode"] == "without"]
        w = [r for r in recs if r["server"] == s and r["mode"] == "with"]
        ra = med([(r.get("load") or {}).get("requests_per_sec") for r in a])
        rw = med([(r.get("load") or {}).get("requests_per_sec") for r in w])
        kept = f"{100 * rw / ra:.0f}%" if ra and rw is not None else "-"
        closed = sum((((r.get("load") or {}).get("slowloris")) or {}).get("closed_by_server", 0)
                     for r in w)
        errs = sum(errors_of(r.get("load")) for r in a + w)
        out.append(
            f"| {s} | {fmt_rps(ra)} | {fmt_rps(rw)} | {kept} | "
            f"{fmt_ms(med([lat(r.get('load'), 'p99') for r in a]))} | "
            f"{fmt_ms(med([lat(r.get('load'), 'p99') for r in w]))} | "
            f"{med([r['rss_mid_kb'] for r in a]) / 1024:.1f} | "
            f"{med([r['rss_mid_kb'] for r in w]) / 1024:.1f} | {closed} | {errs} | "
            f"{min(len(a), len(w))} |")
    out.append("")
    return out


def heavy_section(recs, img_dir, img_ref):
    variants = list(OrderedDict.fromkeys(r["variant"] for r in recs))
    out = ["**CPU-heavy route:** ~5 ms of hashing per request (examples/heavy.rs: iterated SHA-1; "
           "node_heavy.js: PBKDF2-SHA256; both calibrated at start-up), 64 closed-loop "
           "connections on the heavy route and, at the same time, one connection sending a cheap "
           "`/plaintext` at 50 req/s open loop (latency counted from the intended send time, so "
           "a stalled loop is charged). The server, its thread pool included, is on one core.", ""]
    out.append("| server · route | calibration | heavy req/s | heavy p50 | heavy p99 | cheap req/s "
               "(of 50) | cheap p50 | cheap p99 | cheap max | server CPU | errors | rounds |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    bars = []
    for v in variants:
        rs = [r for r in recs if r["variant"] == v]
        h = [r.get("heavy") for r in rs]
        c = [r.get("cheap") for r in rs]
        wall = med([(x or {}).get("duration_s") for x in h])
        cpu = med([r.get("server_cpu_s") for r in rs])
        cpu_pct = f"{100 * cpu / (wall + 1):.0f}%" if cpu is not None and wall else "?"
        cp99 = med([lat(x, "p99") for x in c])
        out.append(
            f"| {v} | {rs[0].get('calibration', '?').strip('()')} | "
            f"{fmt_rps(med([(x or {}).get('requests_per_sec') for x in h]))} | "
            f"{fmt_ms(med([lat(x, 'p50') for x in h]))} | {fmt_ms(med([lat(x, 'p99') for x in h]))} | "
            f"{med([(x or {}).get('requests_per_sec') for x in c]) or 0:.1f} | "
            f"{fmt_ms(med([lat(x, 'p50') for x in c]))} | **{fmt_ms(cp99)}** | "
            f"{fmt_ms(med([lat(x, 'max') for x in c]))} | {cpu_pct} | "
            f"{sum(errors_of(x) for x in h + c)} | {len(rs)} |")
        bars.append((v, cp99))
    out.append("")
    out.append("Server CPU is the server's user+sys time over the run including its 1 s warm-up.")
    out.append("")
    if img_dir:
        write_svg(img_dir, "bench-heavy.svg", svgchart.bar_chart(
            "p99 of a cheap /plaintext request next to 64 connections of ~5 ms requests", bars,
            "p99 latency of the cheap request, ms", log=True))
        out.append(f"![cheap request latency next to CPU-heavy requests]({img_ref}/bench-heavy.svg)")
        out.append("")
    return out


if __name__ == "__main__":
    main()
