"""The hardening properties of tests/test_fuzz.py with many more examples.

Runs :func:`test_fuzz.run_case` on hypothesis-generated data and settings for every
estimator: finite data with random valid settings (and a second input, good or bad), bad
input, and one invalid setting at a time. A broken rule is counted as a failure (its first
messages kept) and the run goes on. Writes benchmarks/results/fuzz.json: per estimator and
entry point, cases, correct results ('ok'), clean errors and failures.

    PYTHONPATH=src python benchmarks/fuzz.py [--examples 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from _common import machine_info, write_result  # noqa: E402
import test_fuzz as F  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=300, help="examples per property and estimator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    tally = collections.defaultdict(lambda: collections.Counter())
    messages = collections.defaultdict(list)
    cfg = settings(max_examples=args.examples, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))
    tmp = tempfile.mkdtemp(prefix="aekit-fuzz-")
    t0 = time.perf_counter()

    def one(name, prop, X, params, bad=None, X_new=None, tmpdir=None):
        record = []
        try:
            F.run_case(name, X, params, bad_setting=bad, X_new=X_new, tmpdir=tmpdir, record=record)
        except Exception as exc:  # noqa: BLE001 - a broken rule (Failure) or a bug in the harness
            tally[name]["failures"] += 1
            tally[name]["cases"] += 1
            if len(messages[name]) < 5:
                messages[name].append(f"[{prop}] {type(exc).__name__}: {str(exc)[:500]}")
        for entry, outcome in record:
            tally[name][f"{entry}:{outcome}"] += 1
            tally[name]["cases"] += 1

    for name in F.NAMES:
        t = time.perf_counter()

        @seed(args.seed)
        @cfg
        @given(data=st.data())
        def finite(data):
            X = data.draw(F.finite_arrays())
            params, _ = data.draw(F.parameters(name))
            X_new = data.draw(st.one_of(F.finite_arrays(), F.bad_inputs()))
            one(name, "finite", X, params, X_new=X_new, tmpdir=tmp)

        @seed(args.seed)
        @cfg
        @given(data=st.data())
        def bad_input(data):
            one(name, "bad-input", data.draw(F.bad_inputs()), {})

        @seed(args.seed)
        @cfg
        @given(data=st.data())
        def bad_setting(data):
            X = data.draw(F.finite_arrays())
            params, bad = data.draw(F.parameters(name, invalid=True))
            one(name, "bad-setting", X, params, bad=bad)

        for prop in (finite, bad_input, bad_setting):
            prop()
        print(f"{name:24s} {dict(tally[name])['cases']:6d} calls, {tally[name]['failures']} failures, "
              f"{time.perf_counter() - t:.0f} s", flush=True)

    per = {}
    for name, c in tally.items():
        entries = collections.defaultdict(lambda: {"cases": 0, "ok": 0, "clean_errors": 0})
        for key, v in c.items():
            if ":" in key:
                entry, outcome = key.split(":")
                entries[entry]["cases"] += v
                entries[entry]["ok" if outcome == "ok" else "clean_errors"] += v
        per[name] = {"cases": c["cases"], "ok": sum(e["ok"] for e in entries.values()),
                     "clean_errors": sum(e["clean_errors"] for e in entries.values()),
                     "failures": c["failures"], "entry_points": dict(entries),
                     "failure_messages": messages.get(name, [])}
    totals = {k: sum(p[k] for p in per.values()) for k in ("cases", "ok", "clean_errors", "failures")}
    result = {"benchmark": "fuzz", "examples_per_property": args.examples, "seed": args.seed,
              "properties": ["finite data + random valid settings (+ a second input)", "bad input",
                             "one invalid setting"],
              "seconds": round(time.perf_counter() - t0, 1), "totals": totals, "estimators": per,
              "machine": machine_info()}
    path = write_result(args.out, result)
    print(totals, "->", path)
    return 1 if totals["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
