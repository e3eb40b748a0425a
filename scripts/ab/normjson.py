#!/usr/bin/env python3
"""Print a JSON document (file or the last line of a text file) with every key
containing 'seconds' or 'wall' removed, sorted, one key per line (for diff)."""
import json, sys
DROP = ('seconds', 'wall')
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if not any(d in k for d in DROP)}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
txt = open(sys.argv[1]).read()
try:
    doc = json.loads(txt)
except Exception:
    doc = json.loads([l for l in txt.splitlines() if l.strip()][-1])
print(json.dumps(strip(doc), indent=1, sort_keys=True))
