#!/usr/bin/env python3
"""Medians of a benches/ws/run.sh results file as markdown: python3 summarize.py FILE.jsonl"""
import json
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    if x >= 10_000:
        return f"{x / 1000:,.1f}k{unit}"
    return f"{x:,.0f}{unit}"


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    cells = {}
    for r in runs:
        cells.setdefault((r["scenario"], r["server"]), []).append(r["report"])
    failed = [r for r in runs if r["report"].get("failure") or r["report"].get("mismatches")]
    scen_names = {
        "echo": "echo msg/s",
        "fanout": "fan-out deliveries/s",
    }
    print("| scenario | server | runs | median rate (ratio) | min-max | p99 latency | "
          "server CPU | per server CPU-second (ratio) | client CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for scenario in ("echo", "fanout"):
        base = {}
        for server in ("node_ws", "oneloop"):
            reps = [x for x in cells.get((scenario, server), []) if not x.get("failure")]
            rate = med([x.get("deliveries_per_s") for x in reps])
            per_cpu = med([x.get("deliveries_per_server_cpu_s") for x in reps])
            base[server] = (rate, per_cpu)
        for server in ("oneloop", "node_ws"):
            reps = [x for x in cells.get((scenario, server), []) if not x.get("failure")]
            if not reps:
                print(f"| {scen_names[scenario]} | {server} | 0 | failed | | | | | |")
                continue
            rates = [x["deliveries_per_s"] for x in reps]
            rate, per_cpu = base[server]
            nrate, ncpu = base["node_ws"]
            ratio = f" ({rate / nrate:.2f}x)" if rate and nrate else ""
            cratio = f" ({per_cpu / ncpu:.2f}x)" if per_cpu and ncpu else ""
            key = "complete_latency_us" if scenario == "fanout" else "latency_us"
            p99 = med([x.get(key, {}).get("p99") for x in reps])
            scpu = med([100 * x["server_cpu_s"] / x["seconds"] for x in reps
                        if x.get("server_cpu_s") is not None and x.get("seconds")])
            ccpu = med([100 * x["client_cpu_s"] / x["seconds"] for x in reps
                        if x.get("client_cpu_s") is not None and x.get("seconds")])
            p99s = "n/a" if p99 is None else (f"{p99 / 1000:.1f} ms" if p99 >= 1000 else f"{p99:.0f} us")
            print(f"| {scen_names[scenario]} | {server} | {len(reps)} | {fmt(rate)}{ratio} | "
                  f"{fmt(min(rates))}-{fmt(max(rates))} | {p99s} | "
                  f"{'n/a' if scpu is None else f'{scpu:.0f}%'} | {fmt(per_cpu)}{cratio} | "
                  f"{'n/a' if ccpu is None else f'{ccpu:.0f}%'} |")
    if failed:
        print(f"\n{len(failed)} run(s) failed or had mismatches:")
        for r in failed:
            rep = r["report"]
            print(f"- round {r['round']} {r['server']} {r['scenario']}: "
                  f"{rep.get('failure')} mismatches={rep.get('mismatches')}")


if __name__ == "__main__":
    main(sys.argv[1])
