#!/usr/bin/env python3
"""h5keys.py RESULTS.h5 [FIELD...]: one line "KEY STATUS [FIELD...]" per row
of /items, from h5dump's text output (standard library only; h5dump from
hdf5-tools).
h5keys.py --journal-items RESULTS.h5.journal: the number of item records in
a results journal so far (whole frames of type 5; a torn tail is not
counted), to watch a run's progress while the .h5 is open for writing.

Reads the member names of the /items compound type from the DATATYPE block,
then each element of DATA, whose members h5dump prints one per line (-w 0:
no wrapping; /items has only scalar and string members; floating-point
values with 17 digits). Exits 1 with one
line on stderr when h5dump fails or the output is not what it expects."""
import re
import subprocess
import sys


def fail(msg):
    print(f"h5keys.py: {msg}", file=sys.stderr)
    sys.exit(1)


def journal_items(path):
    import struct
    try:
        data = open(path, "rb").read()
    except OSError:
        return 0
    n, off = 0, 0
    while off + 24 <= len(data):
        magic, ftype, length = struct.unpack_from("<4sIQ", data, off)
        if magic != b"SFRJ" or off + 24 + length > len(data):
            break
        n += ftype == 5
        off += 24 + length
    return n


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--journal-items":
        print(journal_items(sys.argv[2]))
        return
    if len(sys.argv) < 2:
        fail("usage: h5keys.py RESULTS.h5 [FIELD...]")
    path, extra = sys.argv[1], sys.argv[2:]
    try:
        p = subprocess.run(["h5dump", "-w", "0", "-m", "%.17g", "-d", "/items", path], capture_output=True, text=True)
    except FileNotFoundError:
        fail("h5dump not found (Debian package hdf5-tools)")
    if p.returncode != 0:
        fail(f"h5dump -d /items {path} failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    lines = p.stdout.splitlines()

    # --- member names: lines at depth 1 inside "DATATYPE  H5T_COMPOUND {"
    names, i, depth = [], 0, 0
    while i < len(lines) and "H5T_COMPOUND {" not in lines[i]:
        i += 1
    if i == len(lines):
        fail(f"{path}: /items is not a compound dataset")
    depth, i = 1, i + 1
    while i < len(lines) and depth > 0:
        s = lines[i].strip()
        m = re.search(r'"([^"]+)";$', s)
        if depth == 1 and m:              # 'H5T_STD_I32LE "index";'
            names.append(m.group(1))
        elif s.startswith("}") and m and depth == 2:   # '} "key";' closes a member type
            names.append(m.group(1))
        depth += s.count("{") - s.count("}")
        i += 1
    for want in ["key", "status"] + extra:
        if want not in names:
            fail(f"{path}: /items has no member '{want}' (members: {names})")
    cols = [names.index(n) for n in ["key", "status"] + extra]
    ik, need = cols[0], max(cols)

    # --- data: elements open with "(N): {" (or "}, {" after the first one
    # when lines are not wrapped), then one member per line
    while i < len(lines) and not lines[i].strip().startswith("DATA {"):
        i += 1
    start = re.compile(r"^\s*(\(\d+\): |\}, )\{\s*$")
    out = []
    while i < len(lines) and not lines[i].strip().startswith("ATTRIBUTE"):
        if start.match(lines[i]):
            if i + need + 1 >= len(lines):
                fail(f"{path}: h5dump output ends inside row {len(out)}")
            vals = [lines[i + 1 + j].strip().rstrip(",") for j in range(need + 1)]
            key = vals[ik].strip('"')
            if not re.fullmatch(r"[0-9a-f]{16}", key):
                fail(f"{path}: row {len(out)}: '{key}' is not a key")
            out.append(" ".join(vals[c].strip('"') for c in cols))
            i += need + 2
        else:
            i += 1
    try:
        if out:
            sys.stdout.write("\n".join(out) + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()


if __name__ == "__main__":
    main()
