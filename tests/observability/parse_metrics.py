"""Parses an OpenMetrics scrape (stdin) with Python's prometheus_client parser (the strict one
Prometheus's own client library ships) and prints its samples as JSON:
[{"family": .., "type": .., "name": .., "labels": {..}, "value": ..}, ...].
A scrape the parser rejects makes it exit non-zero with the parser's error."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
json.dump(out, sys.stdout)
