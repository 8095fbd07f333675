#!/usr/bin/env python3
"""Puts two Chrome traces of the same training epoch side by side, by name: `pmi bench --trace`
against `scripts/bench/bench_ref.py --trace` (PyTorch from Python), or any two traces that
torch's profiler wrote.

  trace-compare.py A.json B.json [--what auto|kernels|ops] [--top 25] [--label-a pmi --label-b python]
  trace-compare.py A.json [--what ...] [--top 25]     (one trace: where its time goes)

kernels: GPU work (events of category kernel, gpu_memcpy, gpu_memset), each event's duration
summed per name: where the GPU time of one side goes that the other's does not.
ops: torch operators on the CPU (category cpu_op, or the legacy profiler's "CPU functions");
their durations include the operators they call, so only a name's own row is meaningful.
auto (the default): kernels when both traces have some, ops otherwise (a CPU-only build).

Prints one row per name, the names with the largest difference first, then one summary line
"trace-compare what=... a_events=... b_events=... a_ms=... b_ms=... b_over_a=...".

With one trace: its names by time (calls, ms, mean us), then "trace-busy span_ms=... busy_ms=...
busy=... gaps_ms=... gaps=... streams=...": span is the first event's start to the last one's end;
busy the union of the compared events' intervals (kernels: the time the GPU ran anything, over all
its streams); gaps the idle time in pauses of 1 ms or more (the GPU waiting on the host), and how
many. Reads the
traces with the standard library only. Exit 2 when a trace cannot be read or has no events of
the kind compared."""
import argparse
import json
import sys

KERNEL_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}


def fail(msg):
    print(f"trace-compare: {msg}", file=sys.stderr)
    sys.exit(2)


def events(path):
    try:
        with open(path) as f:
            t = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    ev = t.get("traceEvents") if isinstance(t, dict) else t
    if not isinstance(ev, list):
        fail(f"{path}: expected a Chrome trace (a list of events or {{\"traceEvents\": [...]}})")
    return [e for e in ev if isinstance(e, dict) and e.get("ph") == "X" and "dur" in e and "name" in e]


def kind(e):
    cat = e.get("cat")
    if cat in KERNEL_CATS:
        return "kernels"
    if cat == "cpu_op" or (cat is None and e.get("pid") == "CPU functions"):
        return "ops"
    return None


def summary(ev, what):
    rows = {}
    for e in ev:
        if kind(e) != what:
            continue
        r = rows.setdefault(e["name"], [0, 0.0])
        r[0] += 1
        r[1] += float(e["dur"]) / 1000.0   # microseconds -> ms
    return rows


def busy(ev, what):
    """(span, busy, gaps, n_gaps, streams) in ms over the events of kind what."""
    iv = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in ev if kind(e) == what)
    span = (max(b for _, b in iv) - iv[0][0]) / 1000.0
    total = gaps = 0.0
    n_gaps = 0
    a0, b0 = iv[0]
    for a, b in iv[1:]:
        if a > b0:
            total += b0 - a0
            if a - b0 >= 1000.0:
                gaps += a - b0; n_gaps += 1
            a0, b0 = a, b
        elif b > b0:
            b0 = b
    total += b0 - a0
    streams = len({(e.get("pid"), e.get("tid")) for e in ev if kind(e) == what})
    return span, total / 1000.0, gaps / 1000.0, n_gaps, streams


def one(o):
    ev = events(o.a)
    what = o.what
    if what == "auto":
        what = "kernels" if any(kind(e) == "kernels" for e in ev) else "ops"
    r = summary(ev, what)
    if not r:
        fail(f"{o.a}: no {what} events")
    w = 70
    print(f"{'name':<{w}} {'calls':>8} {'ms':>10} {'mean us':>9}")
    for n in sorted(r, key=lambda n: -r[n][1])[:o.top]:
        c, t = r[n]
        short = n if len(n) <= w else n[:w - 3] + "..."
        print(f"{short:<{w}} {c:>8} {t:>10.3f} {1000.0 * t / c:>9.1f}")
    span, b, gaps, n_gaps, streams = busy(ev, what)
    note = "" if what == "kernels" else " (ops: nested operators overlap; busy is their union)"
    print(f"trace-busy what={what} events={sum(c for c, _ in r.values())} span_ms={span:.3f} busy_ms={b:.3f} "
          f"busy={b / span if span > 0 else float('nan'):.3f} gaps_ms={gaps:.3f} gaps={n_gaps} streams={streams}{note}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a"); ap.add_argument("b", nargs="?")
    ap.add_argument("--what", choices=["auto", "kernels", "ops"], default="auto")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--label-a", default="A"); ap.add_argument("--label-b", default="B")
    o = ap.parse_args()
    if o.b is None:
        return one(o)
    ea, eb = events(o.a), events(o.b)
    what = o.what
    if what == "auto":
        what = "kernels" if any(kind(e) == "kernels" for e in ea) and any(kind(e) == "kernels" for e in eb) else "ops"
    ra, rb = summary(ea, what), summary(eb, what)
    for path, r in ((o.a, ra), (o.b, rb)):
        if not r:
            fail(f"{path}: no {what} events")
    names = sorted(set(ra) | set(rb), key=lambda n: -abs(rb.get(n, [0, 0.0])[1] - ra.get(n, [0, 0.0])[1]))
    w = 70
    print(f"{'name':<{w}} {o.label_a + ' calls':>10} {o.label_a + ' ms':>10} {o.label_b + ' calls':>10} {o.label_b + ' ms':>10} {'diff ms':>9}")
    for n in names[:o.top]:
        ca, ta = ra.get(n, [0, 0.0]); cb, tb = rb.get(n, [0, 0.0])
        short = n if len(n) <= w else n[:w - 3] + "..."
        print(f"{short:<{w}} {ca:>10} {ta:>10.3f} {cb:>10} {tb:>10.3f} {tb - ta:>+9.3f}")
    only_a = [n for n in ra if n not in rb]; only_b = [n for n in rb if n not in ra]
    print(f"# names only in {o.label_a}: {len(only_a)} ({sum(ra[n][1] for n in only_a):.3f} ms); "
          f"only in {o.label_b}: {len(only_b)} ({sum(rb[n][1] for n in only_b):.3f} ms)")
    ta = sum(r[1] for r in ra.values()); tb = sum(r[1] for r in rb.values())
    note = "" if what == "kernels" else " (ops: inclusive times, nested ops counted in each)"
    print(f"trace-compare what={what} a_events={sum(r[0] for r in ra.values())} b_events={sum(r[0] for r in rb.values())} "
          f"a_ms={ta:.3f} b_ms={tb:.3f} b_over_a={tb / ta if ta > 0 else float('nan'):.3f}{note}")


if __name__ == "__main__":
    main()
