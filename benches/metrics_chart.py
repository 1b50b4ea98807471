#!/usr/bin/env python3
"""Scrapes /metrics during a load run and draws what the loop did: requests/s, loop delay and
event-loop utilisation over time, as an SVG (no dependencies beyond Python 3).

    python3 benches/metrics_chart.py [--out docs/img/metrics-during-load.svg] [--phase-seconds 4]

Starts examples/rest_api (release, `--metrics-period-ms 250`; not pinned, so its thread pool
can use a second core), then runs oneloop-load (CPU 1) through five phases: idle; 20,000 req/s
(open loop, 32 connections) on GET /api/products; the same plus 20 req/s
of a ~10 ms hash computed *on the loop* (`/digest?inline=1`: every other request waits behind
it); the same hash *on the thread pool* (`/digest`: the loop stays free); idle. /metrics is
scraped every 250 ms (parsed here with a minimal OpenMetrics reader; tests/observability.rs
checks the format with prometheus_client's parser). docs/app.md ("Metrics") shows the chart.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from html import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """OpenMetrics text -> [(name, {label: value}, float)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if m:
            out.append((m.group(1), dict(LABEL.findall(m.group(3) or '')), float(m.group(4))))
    return out


def pick(samples, name, **labels):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == w for k, w in labels.items()))


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scraper(port, stop, rows, t0):
    while not stop.is_set():
        try:
            text = urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=2).read().decode()
        except OSError:
            time.sleep(0.25)
            continue
        s = parse(text)
        rows.append({
            't': time.monotonic() - t0,
            'requests': pick(s, 'http_request_duration_seconds_count', route='/api/products'),
            'elu': pick(s, 'oneloop_eventloop_utilization'),
            'lag_p50_ms': pick(s, 'oneloop_eventloop_lag_p50_seconds') * 1e3,
            'lag_p99_ms': pick(s, 'oneloop_eventloop_lag_p99_seconds') * 1e3,
            'lag_max_ms': pick(s, 'oneloop_eventloop_lag_max_seconds') * 1e3,
        })
        time.sleep(0.25)


def panel(x0, y0, w, h, t_max, series, y_label, y_max, phases, title):
    """One chart panel: phase bands, axes, one polyline per (label, color, [(t, v)])."""
    p = [f'<g transform="translate({x0},{y0})">',
         f'<text x="0" y="-8" font-size="13" font-weight="600">{escape(title)}</text>']
    for i, (start, end, _) in enumerate(phases):
        if i % 2 == 1:
            p.append(f'<rect x="{start / t_max * w:.1f}" y="0" width="{(end - start) / t_max * w:.1f}" '
                     f'height="{h}" fill="#f2f2f2"/>')
    for k in range(5):
        v = y_max * k / 4
        y = h - v / y_max * h
        p.append(f'<line x1="0" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        p.append(f'<text x="-6" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>')
    p.append(f'<text x="-42" y="{h / 2}" font-size="11" transform="rotate(-90 -42 {h / 2})" '
             f'text-anchor="middle">{escape(y_label)}</text>')
    for n, (label, color, pts) in enumerate(series):
        path = ' '.join(f'{t / t_max * w:.1f},{h - min(v, y_max) / y_max * h:.1f}' for t, v in pts)
        p.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        p.append(f'<rect x="{w - 150}" y="{6 + n * 16}" width="10" height="10" fill="{color}"/>')
        p.append(f'<text x="{w - 135}" y="{15 + n * 16}" font-size="11">{escape(label)}</text>')
    p.append(f'<line x1="0" x2="{w}" y1="{h}" y2="{h}" stroke="#444"/>')
    p.append('</g>')
    return '\n'.join(p)


def render(rows, phases, out):
    t_max = max(r['t'] for r in rows)
    rps = []
    for a, b in zip(rows, rows[1:]):
        dt = b['t'] - a['t']
        if dt > 0:
            rps.append((b['t'], max(0.0, (b['requests'] - a['requests']) / dt / 1000)))
    lag = [('p99', '#d62728', [(r['t'], r['lag_p99_ms']) for r in rows]),
           ('max', '#ff7f0e', [(r['t'], r['lag_max_ms']) for r in rows]),
           ('p50', '#1f77b4', [(r['t'], r['lag_p50_ms']) for r in rows])]
    elu = [('utilisation', '#2ca02c', [(r['t'], r['elu']) for r in rows])]
    nice = lambda v: next(m for m in [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000] if m >= v)
    w, h, left = 760, 150, 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + left + 30}" height="{3 * h + 215}" '
             'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts.append(panel(left, 40, w, h, t_max, [('req/s (thousands)', '#9467bd', rps)], 'k req/s',
                       nice(max(v for _, v in rps) if rps else 1), phases,
                       'GET /api/products: requests per second (from http_request_duration_seconds_count)'))
    parts.append(panel(left, 40 + h + 50, w, h, t_max, lag, 'ms',
                       nice(max(max(v for _, v in s[2]) for s in lag) or 1), phases,
                       'Loop delay per 250 ms window (oneloop_eventloop_lag_*_seconds)'))
    parts.append(panel(left, 40 + 2 * (h + 50), w, h, t_max, elu, '0..1', 1, phases,
                       'Event-loop utilisation (oneloop_eventloop_utilization)'))
    y = 40 + 3 * (h + 50) - 10
    for start, end, name in phases:
        x = left + (start + end) / 2 / t_max * w
        parts.append(f'<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="middle">{escape(name)}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{y + 20}" font-size="11" text-anchor="middle">'
                 'seconds since start; shaded: every other phase</text>')
    parts.append('</svg>')
    with open(out, 'w') as f:
        f.write('\n'.join(parts) + '\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(ROOT, 'docs/img/metrics-during-load.svg'))
    ap.add_argument('--phase-seconds', type=float, default=4)
    args = ap.parse_args()
    target = os.environ.get('CARGO_TARGET_DIR', os.path.join(ROOT, 'target'))
    subprocess.run(['cargo', 'build', '-q', '--release', '--example', 'rest_api', '--bin', 'oneloop-load'],
                   cwd=ROOT, check=True)
    port = free_port()
    env = dict(os.environ, LOG_LEVEL='warn')
    server = subprocess.Popen([f'{target}/release/examples/rest_api', '--port', str(port),
                               '--metrics-period-ms', '250'], env=env, stdout=subprocess.DEVNULL)
    load_bin = f'{target}/release/oneloop-load'
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + '/readyz', timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        req = urllib.request.Request(base + '/api/products', data=json.dumps({'name': 'lamp', 'price': 1}).encode(),
                                     headers={'content-type': 'application/json'})
        urllib.request.urlopen(req, timeout=2)
        ps = args.phase_seconds
        digest = '/api/products/1/digest?rounds=300000'
        products = ['/api/products', '-c', '32', '-R', '20000']
        plan = [('idle', []),
                ('20k req/s', [products]),
                ('+ 20/s hash on the loop', [products, [digest + '&inline=1', '-c', '4', '-R', '20']]),
                ('+ 20/s hash on the pool', [products, [digest, '-c', '4', '-R', '20']]),
                ('idle', [])]
        rows, stop = [], threading.Event()
        t0 = time.monotonic()
        th = threading.Thread(target=scraper, args=(port, stop, rows, t0))
        th.start()
        phases = []
        for name, loads in plan:
            start = time.monotonic() - t0
            procs = [subprocess.Popen(['taskset', '-c', '1', load_bin, base + path, '-d', f'{ps}s', *opts],
                                      stdout=subprocess.DEVNULL) for path, *opts in loads]
            if procs:
                for p in procs:
                    p.wait()
            else:
                time.sleep(ps)
            phases.append((start, time.monotonic() - t0, name))
        stop.set()
        th.join()
    finally:
        server.terminate()
        server.wait()
    render(rows, phases, args.out)
    print(f'wrote {args.out} ({len(rows)} scrapes)')


if __name__ == '__main__':
    sys.exit(main())
