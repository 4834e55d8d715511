# scanflash-report on a real run: a tiny CPU sweep (three tiny models, two
# contexts, two batch sizes) run by `scanflash run`, with one item made to
# fail (SCANFLASH_FAIL_ITEM) and the largest predicted out of memory
# (--device-mem just below its estimate). The report's CSV aggregates are
# checked against aggregates recomputed here, by a python3 script with no
# third-party packages, from h5dump's text of the same file; failed and OOM
# items must be in the tables; the PNGs must have the expected size (IHDR);
# without gnuplot on PATH the report still has every table and says which
# plots it skipped.
source "$(dirname "$0")/lib.sh"

[ -n "${SF_REPORT_BIN:-}" ] || { echo "SKIPPED: SF_REPORT_BIN is not set (run through ctest)"; exit 77; }
if ! "$SF_BIN" run --help >/dev/null 2>&1; then echo "SKIPPED: this scanflash has no run command"; exit 77; fi
for f in "${SF_TEST_DATA:-}" "${SF_TEST_TOKENIZER:-}"; do
  [ -f "$f" ] || { echo "SKIPPED: data file '$f' is missing"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIPPED: python3 is not installed"; exit 77; }
command -v h5dump >/dev/null || { echo "SKIPPED: h5dump is not installed (hdf5-tools)"; exit 77; }

sweep=(--model tiny-mamba1,tiny-mamba2,tiny-transformer --context 192,384 --batch 1,2 --gen 6
       --problems 0-1 --repeats 3 --warmup 0 --seed 3)
"$SF_BIN" plan "${sweep[@]}" --format csv >"$tmp/plan.csv" 2>"$tmp/plan.err" || { cat "$tmp/plan.err"; exit 1; }
# the largest estimate, less one byte: that item (or those) is predicted OOM
mem=$(awk -F, '!/^#/ && NR > 1 && $12 > m { m = $12 } END { print m - 1 }' "$tmp/plan.csv")
# mamba2 at the larger context, batch 1, problem 1 fails on purpose
fail_key=$(awk -F, '$4 == "mamba2" && $6 == 384 && $7 == 1 && $10 == "1" { print $2 }' "$tmp/plan.csv")
[ -n "$fail_key" ] || { echo "FAIL: no item to fail in the plan"; cat "$tmp/plan.csv"; exit 1; }

# (The run only makes the fixture: LeakSanitizer is off for it, since it
# dies inside Open MPI's threads in the sanitizer build; the report itself
# runs with every check.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
SCANFLASH_FAIL_ITEM=$fail_key OMP_NUM_THREADS=1 "$SF_BIN" run "${sweep[@]}" --device-mem "$mem" --backend cpu \
  --threads 1 --quiet --data "$SF_TEST_DATA" --tokenizer "$SF_TEST_TOKENIZER" -o "$tmp/run.h5" \
  >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: scanflash run exited $rc"; cat "$tmp/run.err"; exit 1; fi
echo "ok: scanflash run (tiny CPU sweep, fail $fail_key, device memory $mem B)"

expect_ok "$SF_REPORT_BIN" "$tmp/run.h5" -o "$tmp/rep"
cp "$tmp/out" "$tmp/summary.txt"
echo "--- summary ---"; cat "$tmp/summary.txt"; echo "---"
grep -q "crossover context" "$tmp/summary.txt" || { echo "FAIL: no crossover line in the summary"; fails=$((fails+1)); }
grep -q "prefill time ∝ context^k" "$tmp/summary.txt" || { echo "FAIL: no exponents in the summary"; fails=$((fails+1)); }
for f in report.md report.html throughput.csv latency.csv memory.csv failures.csv speedup.csv crossover.csv \
         scaling.csv max_batch.csv decode_latency.csv; do
  [ -s "$tmp/rep/$f" ] || { echo "FAIL: $f is missing"; fails=$((fails+1)); }
done

for t in items repeats decode_steps; do
  h5dump -m '%.17g' -d "/$t" "$tmp/run.h5" >"$tmp/$t.txt" || { echo "FAIL: h5dump /$t"; fails=$((fails+1)); }
done

python3 - "$tmp" "$fail_key" <<'EOF'
import csv, math, os, re, struct, sys
tmp, fail_key = sys.argv[1], sys.argv[2]
out = os.path.join(tmp, "rep")
fails = 0
def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)

def h5table(name):
    """Rows of a compound dataset from h5dump's text: the member names from
    DATATYPE, then one value per line in each record."""
    text = open(os.path.join(tmp, name + ".txt")).read()
    dt = text[text.index("DATATYPE"):text.index("DATASPACE")]
    names, depth = [], 0
    for line in dt.splitlines()[1:]:
        s = line.strip()
        if s.endswith("{"):
            depth += 1
        m = re.match(r'^(?:\}\s*|H5T_\w+\s+)"(\w+)";$', s)
        if m and depth <= 1:
            names.append(m.group(1))
        if s.startswith("}"):
            depth -= 1
    rows, cur = [], None
    for line in text[text.index("DATA {") + 6:].splitlines():
        s = line.strip()
        if re.match(r"^\(\d+\): \{$", s):
            cur = []
        elif s.startswith("}") and cur is not None:
            rows.append(dict(zip(names, cur)))
            cur = None
        elif cur is not None:
            v = s[:-1] if s.endswith(",") else s
            if v.startswith('"'):
                v = v[1:-1].replace('\\"', '"')
            cur.append(v)
    for r in rows:
        if len(r) != len(names):
            fail("h5dump parse: %d fields, %d names" % (len(r), len(names)))
    return rows

def num(v):
    return float(v) if v not in ("", "nan", "-nan") else float("nan")

def median(xs):
    xs = sorted(x for x in xs if math.isfinite(x))
    if not xs:
        return float("nan")
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

def quantile(xs, q):
    xs = sorted(xs)
    h = q * (len(xs) - 1)
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])

items, repeats, steps = h5table("items"), h5table("repeats"), h5table("decode_steps")
if not items:
    fail("no items parsed from h5dump")
cellkey = lambda it: (it["arch"], it["model"], it["dtype"], it["context"], it["batch"], it["gen"])
cells = {}
for it in items:
    cells.setdefault(cellkey(it), []).append(it)
reps = {}
for r in repeats:
    reps.setdefault(r["key"], []).append(r)
stp = {}
for s in steps:
    stp.setdefault((s["key"], s["repeat"]), []).append(num(s["latency_s"]))

def load(name):
    with open(os.path.join(out, name + ".csv"), newline="") as f:
        return {(r["arch"], r["model"], r["dtype"], r["context"], r["batch"], r["gen"]): r for r in csv.DictReader(f)}
tp, lat, mem = load("throughput"), load("latency"), load("memory")

def same(got, want, what):
    g = num(got)
    if math.isnan(want):
        if not math.isnan(g):
            fail("%s: %s, recomputed nothing" % (what, got))
        return
    if not (abs(g - want) <= 1e-9 * abs(want)):
        fail("%s: report %s, recomputed %.17g" % (what, got, want))

statuses = ["ok", "oom", "oom_predicted", "error", "timeout", "skipped", "interrupted"]
checked = 0
for key, its in cells.items():
    row = tp.get(key)
    if row is None:
        fail("throughput.csv has no row for %s" % (key,))
        continue
    if int(row["n_items"]) != len(its):
        fail("%s: n_items %s, file has %d" % (key, row["n_items"], len(its)))
    for s in statuses:
        want = sum(1 for it in its if it["status"] == s)
        if int(row["n_" + s]) != want:
            fail("%s: n_%s %s, file has %d" % (key, s, row["n_" + s], want))
    ttft, pre, dec, e2e, t50, t90, t99, peak = [], [], [], [], [], [], [], []
    for it in its:
        if it["status"] != "ok":
            continue
        b = int(it["batch"])
        for r in reps.get(it["key"], []):
            p, d, t = num(r["prefill_s"]), num(r["decode_s"]), num(r["total_s"])
            pt, gt = int(r["prompt_tokens"]), int(r["generated_tokens"])
            ttft.append(p)
            pre.append(pt / p)
            dec.append((gt - b) / d if gt - b > 0 and d > 0 else float("nan"))
            e2e.append(gt / t)
            lats = stp.get((it["key"], r["repeat"]), [])
            if lats:
                t50.append(quantile(lats, 0.5)); t90.append(quantile(lats, 0.9)); t99.append(quantile(lats, 0.99))
        if int(it["peak_bytes"]) > 0:
            peak.append(float(it["peak_bytes"]))
    same(row["ttft_s_median"], median(ttft), "%s ttft" % (key,))
    same(row["prefill_tok_s_median"], median(pre), "%s prefill tok/s" % (key,))
    same(row["decode_tok_s_median"], median(dec), "%s decode tok/s" % (key,))
    same(row["e2e_tok_s_median"], median(e2e), "%s e2e tok/s" % (key,))
    if row["ttft_s_n"] != str(sum(1 for x in ttft if math.isfinite(x))):
        fail("%s: ttft_s_n %s, recomputed %d" % (key, row["ttft_s_n"], len(ttft)))
    for name, xs in (("tpot_p50_s", t50), ("tpot_p90_s", t90), ("tpot_p99_s", t99)):
        same(lat[key][name + "_median"], median(xs), "%s %s" % (key, name))
    same(mem[key]["peak_bytes_median"], median(peak), "%s peak" % (key,))
    for m in ("ttft_s", "prefill_tok_s", "e2e_tok_s"):
        if row[m + "_median"]:
            lo, med, hi = num(row[m + "_lo"]), num(row[m + "_median"]), num(row[m + "_hi"])
            if not lo <= med <= hi:
                fail("%s %s: interval [%g, %g] misses %g" % (key, m, lo, hi, med))
    checked += 1
print("ok: %d cells recomputed from h5dump match the report's CSVs" % checked)

# every item that is not ok is listed, with its status and message
with open(os.path.join(out, "failures.csv"), newline="") as f:
    failures = {r["key"]: r for r in csv.DictReader(f)}
bad = [it for it in items if it["status"] != "ok"]
for it in bad:
    r = failures.get(it["key"])
    if r is None or r["status"] != it["status"]:
        fail("failures.csv: %s (%s) missing or wrong" % (it["key"], it["status"]))
if len(failures) != len(bad):
    fail("failures.csv has %d rows, the file %d items that are not ok" % (len(failures), len(bad)))
kinds = {it["status"] for it in bad}
if "error" not in kinds or "oom_predicted" not in kinds:
    fail("the sweep should have an error and a predicted OOM, has %s" % sorted(kinds))
if failures.get(fail_key, {}).get("message", "").find("injected failure") < 0:
    fail("the injected failure's message is not in failures.csv")
# marks in the tables
md = open(os.path.join(out, "report.md")).read()
for mark in ("OOM (predicted)", "FAILED"):
    if mark not in md:
        fail("report.md lacks the mark %r" % mark)
print("ok: failed and OOM items are in the tables (%d)" % len(bad))

# plots: PNGs of 1000x650 (IHDR), SVGs
plots = os.path.join(out, "plots")
pngs = [f for f in os.listdir(plots) if f.endswith(".png")] if os.path.isdir(plots) else []
if len(pngs) < 6:
    fail("only %d PNG plots" % len(pngs))
for f in pngs:
    with open(os.path.join(plots, f), "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        fail("%s is not a PNG" % f)
        continue
    w, h = struct.unpack(">II", head[16:24])
    if (w, h) != (1000, 650):
        fail("%s is %dx%d, not 1000x650" % (f, w, h))
    svg = os.path.join(plots, f[:-4] + ".svg")
    if not os.path.isfile(svg) or os.path.getsize(svg) < 1000 or b"<svg" not in open(svg, "rb").read():
        fail("%s has no SVG beside it" % f)
html = open(os.path.join(out, "report.html")).read()
if html.count('<svg class="plot"') != len(pngs):
    fail("report.html embeds %d SVGs, %d plots" % (html.count('<svg class="plot"'), len(pngs)))
if "<script" in html or 'src="http' in html:
    fail("report.html is not self-contained")
print("ok: %d plots, PNG 1000x650 + SVG, embedded in report.html" % len(pngs))
sys.exit(1 if fails else 0)
EOF
[ $? -eq 0 ] || fails=$((fails+1))

# Without gnuplot (PATH without it): every table, the plots named as skipped.
if PATH=/nonexistent "$SF_REPORT_BIN" "$tmp/run.h5" -o "$tmp/nognuplot" >"$tmp/ng.out" 2>"$tmp/ng.err"; then
  if ! grep -q "plots skipped (gnuplot not found on PATH" "$tmp/ng.err"; then
    echo "FAIL: no 'plots skipped' note without gnuplot"; cat "$tmp/ng.err"; fails=$((fails+1))
  elif ! grep -q "was not drawn: gnuplot not found" "$tmp/nognuplot/report.html"; then
    echo "FAIL: report.html does not say the plots were skipped"; fails=$((fails+1))
  elif ! cmp -s "$tmp/rep/throughput.csv" "$tmp/nognuplot/throughput.csv"; then
    echo "FAIL: the tables differ without gnuplot"; fails=$((fails+1))
  elif ls "$tmp/nognuplot/plots/"*.png >/dev/null 2>&1; then
    echo "FAIL: PNGs without gnuplot"; fails=$((fails+1))
  else
    echo "ok: without gnuplot: $(head -c 160 "$tmp/ng.err")..."
  fi
else
  echo "FAIL: the report failed without gnuplot"; cat "$tmp/ng.err"; fails=$((fails+1))
fi

# A gnuplot without the cairo terminals: the png (libgd) terminal, same size.
cat >"$tmp/gp-nocairo" <<'GP'
#!/bin/sh
case "$*" in *pngcairo*) echo "unknown or ambiguous terminal type" >&2; exit 1 ;; esac
exec gnuplot "$@"
GP
chmod +x "$tmp/gp-nocairo"
if command -v gnuplot >/dev/null; then
  expect_ok env SCANFLASH_GNUPLOT="$tmp/gp-nocairo" "$SF_REPORT_BIN" "$tmp/run.h5" -o "$tmp/nocairo" --format md
  if ! grep -q "^set terminal png size 1000,650" "$tmp/nocairo/plots/gnuplot/max_batch.gp"; then
    echo "FAIL: no fallback to the png terminal"; fails=$((fails+1))
  elif ! python3 -c 'import struct,sys; h=open(sys.argv[1],"rb").read(24); sys.exit(struct.unpack(">II",h[16:24])!=(1000,650))' \
         "$tmp/nocairo/plots/max_batch.png"; then
    echo "FAIL: the png terminal's PNG is not 1000x650"; fails=$((fails+1))
  else
    echo "ok: png terminal when pngcairo is missing"
  fi
fi
# A gnuplot that fails on every script: each plot noted, the report made.
printf '#!/bin/sh\ncase "$*" in *"set terminal"*) exit 0 ;; esac\necho "line 3: boom" >&2; exit 1\n' >"$tmp/gp-broken"
chmod +x "$tmp/gp-broken"
expect_ok env SCANFLASH_GNUPLOT="$tmp/gp-broken" "$SF_REPORT_BIN" "$tmp/run.h5" -o "$tmp/broken" --format html
grep -q "plot max_batch: gnuplot failed (exit status 1: line 3: boom)" "$tmp/err" &&
  grep -q "was not drawn: gnuplot failed" "$tmp/broken/report.html" ||
  { echo "FAIL: a failing gnuplot is not reported per plot"; cat "$tmp/err"; fails=$((fails+1)); }

# One-line refusals.
: >"$tmp/empty.h5"
expect_fail "empty.h5: not an HDF5 file" "$SF_REPORT_BIN" "$tmp/empty.h5" -o "$tmp/e1"
expect_fail "nope.h5: cannot open" "$SF_REPORT_BIN" "$tmp/nope.h5" -o "$tmp/e2"
expect_fail "no output folder" "$SF_REPORT_BIN" "$tmp/run.h5"
# A good file and a bad one: a report, the bad one named.
expect_ok "$SF_REPORT_BIN" "$tmp/run.h5" "$tmp/empty.h5" -o "$tmp/mixed" --format csv
grep -q "empty.h5: not an HDF5 file" "$tmp/err" || { echo "FAIL: the bad file is not named"; fails=$((fails+1)); }
finish
