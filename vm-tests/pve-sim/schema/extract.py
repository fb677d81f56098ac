#!/usr/bin/env python3
"""Extract the PVE API subset the simulator serves from the full apidoc tree.

Usage: extract.py FULL_SCHEMA.json.gz > pve-api-subset.json

The input is the pve-docs API viewer data (apidoc.js's tree as JSON, gzip-compressed;
431 API paths, PVE 9, taken 2026-04-30). The output keeps, for each endpoint listed in
ENDPOINTS below, exactly the method objects the simulator implements, with every
`description`/`verbose_description` text removed (they are long and not needed to
validate). Everything else (parameters, types, formats, patterns, enums, limits, returns)
is copied unchanged. Output is sorted and stable, so re-running it gives the same file.

A Rust test (tests/schema_subset.rs) checks that the vendored file and the simulator's
router list the same endpoints and methods, so neither can drift alone.
"""

import gzip
import json
import sys

SOURCE = "pve-api-schema.json.gz (pve-docs API viewer data, PVE 9, 2026-04-30)"

ENDPOINTS = {
    "/access/ticket": ["POST"],
    "/access/password": ["PUT"],
    "/access/users/{userid}/token/{tokenid}": ["POST", "DELETE"],
    "/version": ["GET"],
    "/nodes": ["GET"],
    "/nodes/{node}/status": ["GET"],
    "/nodes/{node}/network": ["GET"],
    "/nodes/{node}/tasks": ["GET"],
    "/nodes/{node}/tasks/{upid}/status": ["GET"],
    "/nodes/{node}/tasks/{upid}/log": ["GET"],
    "/nodes/{node}/certificates/custom": ["POST"],
    "/cluster/status": ["GET"],
    "/cluster/config": ["POST"],
    "/cluster/config/nodes": ["GET"],
    "/cluster/config/nodes/{node}": ["DELETE"],
    "/cluster/config/join": ["GET", "POST"],
    "/storage": ["GET", "POST"],
    "/storage/{storage}": ["GET", "PUT", "DELETE"],
    "/cluster/backup": ["GET", "POST"],
    "/cluster/replication": ["GET", "POST"],
    "/cluster/replication/{id}": ["DELETE"],
}


def strip(value):
    if isinstance(value, dict):
        return {
            k: strip(v)
            for k, v in sorted(value.items())
            if k not in ("description", "verbose_description")
        }
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def main():
    with gzip.open(sys.argv[1], "rt", encoding="utf-8") as f:
        tree = json.load(f)
    index = {}

    def walk(node):
        index[node["path"]] = node
        for child in node.get("children") or []:
            walk(child)

    for root in tree:
        walk(root)
    endpoints = []
    for path, methods in sorted(ENDPOINTS.items()):
        info = index[path]["info"]
        endpoints.append(
            {"path": path, "methods": {m: strip(info[m]) for m in sorted(methods)}}
        )
    out = {
        "provenance": {
            "source": SOURCE,
            "extracted_by": "schema/extract.py",
            "rule": "listed endpoints and methods only; description texts removed",
        },
        "endpoints": endpoints,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
