#!/usr/bin/env python3
"""Cross-checks every GUID constant the driver and its model hard-code against the DDK
headers (a mistyped IID makes QueryInterface fail and the endpoint silently not appear).
usage: check-guids.py [MINGW_INCLUDE_DIR]   (default /usr/x86_64-w64-mingw32/include)
Exit 1 on any mismatch or on a name missing from the headers."""
import os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
inc = sys.argv[1] if len(sys.argv) > 1 else "/usr/x86_64-w64-mingw32/include"
headers = [os.path.join(inc, p) for p in ("ks.h", "ksmedia.h", "ddk/portcls.h", "unknwnbase.h")]

def norm(d1, d2, d3, d4):
    return (d1, d2, d3, tuple(d4))

known = {}
for h in headers:
    src = re.sub(r"\\\n", " ", open(h, encoding="latin-1").read())
    for m in re.finditer(r"DEFINE_GUID\s*\(\s*(\w+)\s*,([^;]*?)\)\s*;", src):
        try:
            v = [int(x.strip().rstrip("LlUu"), 0) for x in m.group(2).split(",")]
        except ValueError:
            continue
        if len(v) == 11:
            known.setdefault(m.group(1), norm(v[0], v[1], v[2], v[3:]))
    for m in re.finditer(r'DEFINE_GUIDSTRUCT\s*\(\s*"([0-9A-Fa-f-]{36})"\s*,\s*(\w+)\s*\)', src):
        b = bytes.fromhex(m.group(1).replace("-", ""))
        known.setdefault(m.group(2), norm(int.from_bytes(b[0:4], "big"), int.from_bytes(b[4:6], "big"),
                                          int.from_bytes(b[6:8], "big"), list(b[8:16])))

def rust_guids(path, ctor):
    text = re.sub(r"\s+", " ", open(path).read())
    pat = re.compile(r"pub const (\w+): \w+ = " + ctor + r"\(\s*(0x[0-9a-fA-F_]+),\s*(0x[0-9a-fA-F_]+),\s*(0x[0-9a-fA-F_]+),\s*\[([^\]]*)\]")
    for m in pat.finditer(text):
        n = lambda s: int(s.replace("_", ""), 16)
        d4 = [int(x.replace("_", ""), 0) for x in re.findall(r"0x[0-9a-fA-F_]+|\d+", m.group(5))]
        yield m.group(1), norm(n(m.group(2)), n(m.group(3)), n(m.group(4)), d4)

# Rust names -> header names where they differ.
alias = {"IID_IUNKNOWN": "IID_IUnknown", "IID_IMINIPORT": "IID_IMiniport",
         "IID_IMINIPORT_TOPOLOGY": "IID_IMiniportTopology", "IID_IMINIPORT_WAVERT": "IID_IMiniportWaveRT",
         "IID_IMINIPORT_WAVERT_STREAM": "IID_IMiniportWaveRTStream",
         "IID_IMINIPORT_WAVERT_STREAM_NOTIFICATION": "IID_IMiniportWaveRTStreamNotification",
         "IID_IMINIPORT_WAVERT_INPUT_STREAM": "IID_IMiniportWaveRTInputStream",
         "CLSID_PORT_WAVERT": "CLSID_PortWaveRT", "CLSID_PORT_TOPOLOGY": "CLSID_PortTopology"}
# GUIDs newer than mingw-w64's headers: value from the WDK header named, reported as unchecked
# (not a failure) unless the headers gain the name, when they are checked like the rest.
wdk_only = {"IID_IMINIPORT_WAVERT_INPUT_STREAM": "IID_IMiniportWaveRTInputStream (portcls.h, NTDDI_THRESHOLD)"}
checks = list(rust_guids(os.path.join(HERE, "../../model/src/guid.rs"), r"Guid::new")) + \
         list(rust_guids(os.path.join(HERE, "../src/guids.rs"), r"g"))
bad = 0
unchecked = 0
for name, value in checks:
    hname = alias.get(name, name)
    if name in wdk_only and wdk_only[name].split()[0] not in known:
        print(f"UNCHECKED {name}: not in these headers; WDK {wdk_only[name]}"); unchecked += 1
    elif hname not in known:
        print(f"MISSING {name} ({hname}) in headers"); bad += 1
    elif known[hname] != value:
        print(f"MISMATCH {name}: ours {value} headers {known[hname]}"); bad += 1
    else:
        print(f"ok {name}")
print(f"{len(checks) - bad - unchecked} of {len(checks)} GUIDs match the DDK headers, {unchecked} not in them")
sys.exit(1 if bad or not checks else 0)
