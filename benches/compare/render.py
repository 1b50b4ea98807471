#!/usr/bin/env python3
"""Renders benches/compare results (JSON lines from run.sh) as Markdown.

usage: render.py RESULTS.jsonl

One table of median req/s per server x scenario with the median p99 latency (from wrk's
--latency output) and the ratio to node_http, then RSS, then every run that had errors, non-2xx
answers or a dead server, then the issue targets checked against the medians.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

BASE = "node_http"


def load(path):
    meta, runs = None, []
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
    return meta, runs


def fmt_rps(v):
    if v is None:
        return "-"
    return f"{v / 1000:,.1f}k" if v >= 10000 else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    meta, runs = load(sys.argv[1])
    servers = list(OrderedDict.fromkeys(r["server"] for r in runs))
    scenarios = list(OrderedDict.fromkeys(r["scenario"] for r in runs))
    by = defaultdict(list)
    for r in runs:
        by[(r["server"], r["scenario"])].append(r)
    rps = {k: med([r.get("rps") for r in v]) for k, v in by.items()}
    p99 = {k: med([r.get("p99_ms") for r in v]) for k, v in by.items()}
    out = []
    if meta:
        out.append(
            f"Mode `{meta['mode']}`: {meta['duration_s']} s per run, {meta['runs']} runs per cell "
            f"(median shown), interleaved; server on CPU {meta['server_cpu']}, wrk "
            f"(1 thread) on CPU {meta['wrk_cpu']}. {meta.get('machine', '')}. "
            f"Tree {meta.get('git', '?')}, hello built {meta.get('hello_built', '?')}"
            + (" (--skip-build)" if meta.get("skip_build") else "") + "."
        )
        out.append("")
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
    if any(r.get("depth", 1) > 1 for r in runs):
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
    print("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
