"""What the `difficulty` column costs a build: the task's checker run on each row, against the task's own work.

    python benchmarks/difficulty_cost.py --images 500

On the same distinct 640x480 photos as build_throughput.py (cached), for each task with its default
parameters: the task's own work per row (decode, `make`, encode the views: build_throughput's
`task_work_seconds` loop, none of the builder) and, on those very samples, the scorer the builder
calls per row (ssl4rl_data.difficulty.RowScorer). CPU seconds of this process (the fastest of
--repeat runs), so other tenants of a shared machine count as little as possible. The overhead is
scorer / own work.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_measures import default_task, task_samples  # noqa: E402
from photo_set import make_photos  # noqa: E402

from ssl4rl_data import registry  # noqa: E402
from ssl4rl_data.difficulty import RowScorer  # noqa: E402
from ssl4rl_data.images import encode  # noqa: E402
from ssl4rl_data.workers import keep_freed_memory  # noqa: E402


def measure(task_name: str, files: list[Path], max_side: int, repeat: int) -> dict:
    task = default_task(task_name)
    scorer = RowScorer(task)
    own, scoring, rows = [], [], 0
    for _ in range(repeat):
        started, made = time.process_time(), []
        for sample in task_samples(task, files, max_side):
            made.append((sample, [encode(view, "jpeg") for view in sample.images]))
        own.append(time.process_time() - started)
        started = time.process_time()
        for sample, encoded in made:
            scorer(sample.answer, sample.images, encoded, ["id", *sample.extra_source_ids])
        scoring.append(time.process_time() - started)
        rows = len(made)
    return {
        "task": task_name,
        "rows": rows,
        "own_ms": 1000 * min(own) / rows,
        "score_ms": 1000 * min(scoring) / rows,
        "overhead": min(scoring) / min(own),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--tasks", nargs="+", default=list(registry.tasks()))
    parser.add_argument("--max-side", type=int, default=448)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ssl4rl-bench-photos-v2")
    args = parser.parse_args()
    keep_freed_memory()
    files = sorted(make_photos(args.cache, args.images).glob("*.jpg"))
    print(f"{args.images} photos 640x480, --max-side {args.max_side}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'task':<12} {'rows':>5} {'own ms/row':>11} {'score ms/row':>13} {'overhead':>9}")
    for name in args.tasks:
        r = measure(name, files, args.max_side, args.repeat)
        print(f"{name:<12} {r['rows']:>5} {r['own_ms']:>11.2f} {r['score_ms']:>13.2f} {r['overhead']:>8.1%}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
