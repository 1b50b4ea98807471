#!/usr/bin/env python3
"""Medians and per-round ratios of benches/tls/run.sh output (stdin).

    benches/tls/run.sh 5 | tee /tmp/tls.txt; python3 benches/tls/summarize.py < /tmp/tls.txt

Ratios are taken inside each round (the servers of one round ran back to back), then the
median over rounds is printed: on a shared machine that is steadier than a ratio of medians.
"""
import re
import statistics
import sys
from collections import defaultdict

rows = defaultdict(dict)  # round -> {(server, metric): value}
for line in sys.stdin:
    m = re.match(r"round (\d+) (\S+) (.*)", line.strip())
    if not m:
        continue
    rnd, server, rest = int(m.group(1)), m.group(2), m.group(3).split()
    pairs = dict(zip(rest[0::2], rest[1::2]))
    if rest[0] in ("full_handshakes_per_s", "resumed_handshakes_per_s"):
        mode = rest[0].split("_")[0]
        pairs = {(k if k == rest[0] else f"{mode}.{k}"): v for k, v in pairs.items()}
    for k, v in pairs.items():
        try:
            rows[rnd][(server, k)] = float(v)
        except ValueError:
            pass

def med(server, metric):
    vals = [r[(server, metric)] for r in rows.values() if (server, metric) in r]
    return (statistics.median(vals), vals) if vals else (None, [])

def ratio(a, b):
    vals = [r[a] / r[b] for r in rows.values() if a in r and b in r and r[b]]
    return (statistics.median(vals), vals) if vals else (None, [])

metrics = [
    ("keepalive_rps", "keep-alive req/s"),
    ("server_cpu_ns_per_req", "server CPU ns per keep-alive request"),
    ("full_handshakes_per_s", "full handshakes/s"),
    ("resumed_handshakes_per_s", "resumed handshakes/s (mode)"),
    ("full.server_cpu_us_per_handshake", "server CPU us per full handshake"),
    ("resumed.server_cpu_us_per_handshake", "server CPU us per handshake, resumed mode"),
    ("resumed.full", "resumed mode: handshakes that were full"),
    ("resumed.resumed", "resumed mode: handshakes resumed"),
    ("bytes_per_conn", "RSS bytes per idle TLS connection"),
]
for server in ("oneloop-tls", "node-https", "oneloop-plain"):
    for metric, label in metrics:
        m, vals = med(server, metric)
        if m is not None:
            print(f"{server:14} {label:58} median {m:10.0f}  rounds {[round(v) for v in vals]}")
print()
for a, b, label in [
    (("oneloop-tls", "keepalive_rps"), ("node-https", "keepalive_rps"), "TLS keep-alive req/s, oneloop / node"),
    (("node-https", "server_cpu_ns_per_req"), ("oneloop-tls", "server_cpu_ns_per_req"), "server CPU per TLS request, node / oneloop"),
    (("oneloop-tls", "keepalive_rps"), ("oneloop-plain", "keepalive_rps"), "oneloop TLS / plaintext req/s"),
    (("oneloop-plain", "server_cpu_ns_per_req"), ("oneloop-tls", "server_cpu_ns_per_req"), "oneloop plaintext / TLS server CPU per request"),
    (("oneloop-tls", "full_handshakes_per_s"), ("node-https", "full_handshakes_per_s"), "full handshakes/s, oneloop / node"),
    (("node-https", "full.server_cpu_us_per_handshake"), ("oneloop-tls", "full.server_cpu_us_per_handshake"), "server CPU per full handshake, node / oneloop"),
    (("oneloop-tls", "resumed_handshakes_per_s"), ("node-https", "resumed_handshakes_per_s"), "resumed-mode handshakes/s, oneloop / node"),
    (("node-https", "bytes_per_conn"), ("oneloop-tls", "bytes_per_conn"), "RSS per idle TLS connection, node / oneloop"),
]:
    m, vals = ratio(a, b)
    if m is not None:
        print(f"{label:52} median {m:6.2f}  rounds {[round(v, 2) for v in vals]}")
