"""What GRPO sees before and after calibration and difficulty tiers: the share of zero-variance groups.

    python benchmarks/zero_variance.py DATASET --model PATH [--k 8] [--keep 0.125..0.875] [--out DIR]

A GRPO group is k answers sampled for one prompt; when all k rewards are equal its advantages are zero
and it teaches nothing. On a built DATASET (with its `difficulty` column) this measures, with the model:
  1. all rows: k answers per row at temperature 1 (`ssl4rl-data calibrate`'s sampling and reward), the
     share of rows whose k rewards are all equal, overall and per difficulty tier (the thirds
     `build --difficulty` keeps);
  2. the rows whose pass rate lies in the --keep band (what `calibrate --keep` writes), sampled again
     with another seed: the share GRPO would meet on them. (On the first draw it is zero by
     construction when the band excludes 0 and 1; a fresh draw shows how much of the selection holds.)
Writes results.json to --out and prints a table.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ssl4rl_data.audit.calibrate import keep_band, parse_band, pass_rates
from ssl4rl_data.audit.run import shard_files
from ssl4rl_data.difficulty import TIERS, difficulty_tiers


def share(flags) -> float | None:
    return round(float(np.mean(flags)), 4) if len(flags) else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--keep", default="0.125..0.875", help="Pass-rate band kept (default: neither 0 nor k of k).")
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/zero_variance"))
    args = parser.parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()[0]
    band = parse_band(args.keep)
    rates = pass_rates(args.dataset, args.model, k=args.k, max_new_tokens=args.max_new_tokens, seed=args.seed)
    scores = [s for f in shard_files(args.dataset) for s in pq.read_table(f, columns=["difficulty"])[0].to_pylist()]
    _, tiers = difficulty_tiers(scores)
    zero = np.array([r["zero_variance"] for r in rates])
    passed = np.array([r["pass_rate"] for r in rates])
    result = {
        "dataset": str(args.dataset),
        "model": Path(str(args.model).rstrip("/")).name,
        "k": args.k,
        "rows": len(rates),
        "mean_pass_rate": share(passed),
        "zero_variance": share(zero),
        "all_wrong": share(passed == 0),
        "all_right": share(passed == 1),
        "tiers": {
            tier: {
                "rows": int(sum(t == tier for t in tiers)),
                "mean_pass_rate": share(passed[[t == tier for t in tiers]]),
                "zero_variance": share(zero[[t == tier for t in tiers]]),
            }
            for tier in TIERS
        },
    }
    in_band = (passed >= band[0]) & (passed <= band[1])
    result["band"] = {"band": list(band), "rows": int(in_band.sum()), "zero_variance_same_draw": share(zero[in_band])}
    if in_band.any():
        with tempfile.TemporaryDirectory() as work:
            kept = Path(work) / "kept"
            keep_band(args.dataset, kept, rates, band, args.model, args.k)
            again = pass_rates(kept, args.model, k=args.k, max_new_tokens=args.max_new_tokens, seed=args.seed + 1)
        result["band"].update(
            zero_variance_fresh_draw=share([r["zero_variance"] for r in again]),
            mean_pass_rate_fresh_draw=share([r["pass_rate"] for r in again]),
        )
    result.update(seconds=round(time.perf_counter() - started, 1), load_average=[load, os.getloadavg()[0]])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['model']}, k={args.k}, {result['rows']} rows of {args.dataset}")
    print(f"{'rows':<28} {'n':>5} {'pass rate':>10} {'zero-variance':>14}")
    print(f"{'all':<28} {result['rows']:>5} {result['mean_pass_rate']:>10.3f} {result['zero_variance']:>14.1%}")
    for tier, entry in result["tiers"].items():
        if entry["rows"]:
            print(
                f"{'difficulty ' + tier:<28} {entry['rows']:>5} {entry['mean_pass_rate']:>10.3f} {entry['zero_variance']:>14.1%}"
            )
    kept = result["band"]
    if kept["rows"]:
        name = f"--keep {args.keep}, fresh draw"
        print(
            f"{name:<28} {kept['rows']:>5} {kept['mean_pass_rate_fresh_draw']:>10.3f} {kept['zero_variance_fresh_draw']:>14.1%}"
        )
    print(
        f"{result['seconds']} s; load average {load:.1f} -> {os.getloadavg()[0]:.1f}; wrote {args.out / 'results.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
