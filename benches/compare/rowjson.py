#!/usr/bin/env python3
"""Builds one JSON line for run.sh's extra rows (idle, slowloris, heavy).

usage: rowjson.py key=value ... key=@FILE ...

A value that parses as int or float becomes a number, true/false a boolean; `key=@FILE` reads
FILE as JSON (an oneloop-load --json report) and stores it under key (null if the file is
missing or not JSON, with the file's tail under key_error). Prints the record on stdout and a
one-line summary on stderr.
"""
import json
import sys


def number(v):
    if v in ("true", "false"):
        return v == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def main():
    rec = {}
    for kv in sys.argv[1:]:
        k, _, v = kv.partition("=")
        if v.startswith("@"):
            try:
                with open(v[1:], errors="replace") as f:
                    text = f.read()
            except OSError as e:
                rec[k], rec[k + "_error"] = None, str(e)
                continue
            try:
                rec[k] = json.loads(text)
            except ValueError:
                rec[k], rec[k + "_error"] = None, text[-1500:]
        else:
            rec[k] = number(v)
    print(json.dumps(rec))
    brief = {k: v for k, v in rec.items() if not isinstance(v, (dict, list))}
    for k, v in rec.items():
        if isinstance(v, dict) and "requests_per_sec" in v:
            lat = v.get("latency_us") or {}
            brief[k] = f"{v['requests_per_sec']:.0f} req/s p99 {lat.get('p99', '?')} us"
    sys.stderr.write(" ".join(f"{k}={v}" for k, v in brief.items() if k != "type") + "\n")


if __name__ == "__main__":
    main()
