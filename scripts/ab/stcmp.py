#!/usr/bin/env python3
"""Compare two .safetensors files without the safetensors package.
Prints the JSON-header differences and, per tensor, whether its bytes are equal
(and, if not, how many elements differ and the max abs difference)."""
import json, struct, sys, array

def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:], n

def flat(d, pre=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, pre + k + '.'))
        else:
            out[pre + k] = v
    return out

a, b = sys.argv[1], sys.argv[2]
ha, da, na = load(a)
hb, db, nb = load(b)
print(f'    header length {na} vs {nb}; data bytes {len(da)} vs {len(db)}; data [8+N:] identical: {da == db}')
ma, mb = ha.pop('__metadata__', {}), hb.pop('__metadata__', {})
# metadata values are strings, often JSON themselves
def meta(m):
    r = {}
    for k, v in m.items():
        try:
            j = json.loads(v)
            r.update(flat(j, k + '.') if isinstance(j, dict) else {k: j})
        except Exception:
            r[k] = v
    return r
fa, fb = meta(ma), meta(mb)
for k in sorted(set(fa) | set(fb)):
    if fa.get(k, '<absent>') != fb.get(k, '<absent>'):
        print(f'    metadata {k}: {fa.get(k, "<absent>")!r} vs {fb.get(k, "<absent>")!r}')
for k in sorted(set(ha) | set(hb)):
    ta, tb = ha.get(k), hb.get(k)
    if ta is None or tb is None:
        print(f'    tensor {k}: only in {"old" if tb is None else "new"}'); continue
    if ta['dtype'] != tb['dtype'] or ta['shape'] != tb['shape']:
        print(f'    tensor {k}: dtype/shape {ta["dtype"]}{ta["shape"]} vs {tb["dtype"]}{tb["shape"]}'); continue
    xa = da[ta['data_offsets'][0]:ta['data_offsets'][1]]
    xb = db[tb['data_offsets'][0]:tb['data_offsets'][1]]
    if xa == xb:
        print(f'    tensor {k} {ta["dtype"]}{ta["shape"]}: identical'); continue
    code = {'F32': 'f', 'F64': 'd'}.get(ta['dtype'])
    if code:
        va, vb = array.array(code, xa), array.array(code, xb)
        diffs = [abs(x - y) for x, y in zip(va, vb) if x != y]
        print(f'    tensor {k} {ta["dtype"]}{ta["shape"]}: DIFFERENT, {len(diffs)}/{len(va)} elements, max |diff| {max(diffs):.3e}')
    else:
        print(f'    tensor {k} {ta["dtype"]}{ta["shape"]}: DIFFERENT bytes')
