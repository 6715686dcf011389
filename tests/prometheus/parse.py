"""Parses an exposition from stdin with prometheus_client's own parsers and prints its
samples as JSON: [[family, type, sample name, labels, value], ...].

    python parse.py prometheus < text      # text format 0.0.4
    python parse.py openmetrics < text     # OpenMetrics 1.0 (strict: # EOF, naming)

Any parse error is an exception and a non-zero exit.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus

parse = {"prometheus": prometheus, "openmetrics": openmetrics}[sys.argv[1]]
rows = []
for family in parse(sys.stdin.read()):
    for sample in family.samples:
        rows.append([family.name, family.type, sample.name, sample.labels, sample.value])
json.dump(rows, sys.stdout)
