#!/usr/bin/env python3
"""Turns one wrk run's output into one JSON line (used by run.sh).

usage: wrk2json.py WRK_OUTPUT_FILE key=value ...   (the key=values are copied into the record;
values that parse as int or float become numbers, true/false booleans). Prints the record
on stdout and a one-line summary on stderr.

Reads the `WRKJSON {...}` line that report.lua / pipeline.lua print from done(), and from wrk's
own text: `Requests/sec`, the `--latency` distribution (p50/p75/p90/p99, in ms), `Non-2xx or 3xx
responses` and `Socket errors`. p99_ms in the record is the one from the --latency text.
"""
import json
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return round(float(m.group(1)) * UNITS[m.group(2)], 3) if m else None


def number(v):
    if v in ("true", "false"):
        return v == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_load(report):
    """The same fields from an `oneloop-load --json` report (run.sh --client oneloop-load)."""
    lat = report["latency_us"]
    errors = report["errors"]
    return {
        "client": "oneloop-load",
        "requests": report["requests"],
        "duration_s": round(report["duration_s"], 3),
        # oneloop-load also counts parse errors and early closes; wrk would see them as read errors.
        "errors": {
            "connect": errors["connect"],
            "read": errors["read"] + errors["parse"] + errors["closed"],
            "write": errors["write"],
            "timeout": errors["timeout"],
        },
        "non2xx": report["non_2xx"],
        "max_ms": round(lat["max"] / 1000, 3),
        "rps": report["requests_per_sec"],
        **{f"p{p}_ms": round(lat[f"p{p}"] / 1000, 3) for p in ("50", "75", "90", "99")},
    }


def parse(text):
    if text.lstrip().startswith("{"):
        return parse_load(json.loads(text))
    rec = {}
    m = re.search(r"^WRKJSON (\{.*\})$", text, re.M)
    if m:
        lua = json.loads(m.group(1))
        rec["requests"] = lua["requests"]
        rec["duration_s"] = round(lua["duration_us"] / 1e6, 3)
        rec["errors"] = {k: lua[k] for k in ("connect", "read", "write", "timeout")}
        rec["non2xx"] = lua["status"]
        rec["lua_p99_ms"] = round(lua["lat_p99_us"] / 1000, 3)
        rec["max_ms"] = round(lua["lat_max_us"] / 1000, 3)
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    rec["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        rec["p%s_ms" % pct] = to_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        rec["non2xx"] = int(m.group(1))
    rec.setdefault("non2xx", 0)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        rec["errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    rec.setdefault("errors", {"connect": 0, "read": 0, "write": 0, "timeout": 0})
    return rec


def main():
    path = sys.argv[1]
    with open(path, errors="replace") as f:
        text = f.read()
    rec = {}
    for kv in sys.argv[2:]:
        k, _, v = kv.partition("=")
        rec[k] = number(v)
    rec.update(parse(text))
    # server CPU seconds during the run and the wall time of the wrk run, from run.sh's raw
    # clock-tick and $EPOCHREALTIME readings
    if "server_cpu_ticks" in rec and rec.get("clk_tck"):
        rec["server_cpu_s"] = round(rec.pop("server_cpu_ticks") / rec.pop("clk_tck"), 2)
    if "t0" in rec and "t1" in rec:
        rec["wall_s"] = round(rec.pop("t1") - rec.pop("t0"), 2)
    if rec.get("server_cpu_s") and rec.get("requests"):
        # requests per CPU-second of the server (its whole process tree)
        rec["req_per_cpu_s"] = round(rec["requests"] / rec["server_cpu_s"])
    if rec.get("wall_s") and rec.get("server_cpu_s") is not None:
        rec["server_cpu_pct"] = round(100 * rec["server_cpu_s"] / rec["wall_s"])
    if rec.get("depth", 1) > 1 and rec.get("client") != "oneloop-load":
        # With pipelining wrk records one latency per batch and its coordinated-omission
        # correction adds samples below the recorded minimum, which the percentile scan never
        # visits: p90/p99 print as 0.00us. Keep the raw values, report no p99.
        rec["p99_ms_wrk_raw"] = rec.get("p99_ms")
        rec["p99_ms"] = None
    if rec.get("rps") is None:
        rec["wrk_output"] = text[-2000:]
    print(json.dumps(rec, sort_keys=False))
    e = rec["errors"]
    sys.stderr.write(
        f"{rec.get('server')} {rec.get('scenario')}: {rec.get('rps')} req/s, p99 {rec.get('p99_ms')} ms, "
        f"non-2xx {rec['non2xx']}, errors {sum(e.values())}, server cpu {rec.get('server_cpu_pct')}%, "
        f"rss {rec.get('rss_kb')} kB"
        f"{'' if rec.get('alive', True) else ', SERVER DIED'}\n"
    )


if __name__ == "__main__":
    main()
