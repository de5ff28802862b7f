"""Peak memory of scanning a table source (issue 22.2): it must not grow with the table.

    python benchmarks/scan_memory.py --rows 30000 300000

Writes an MMBench-style parquet (index, question, options, answer, category, split, and an Image
struct column) of `rows` rows with small distinct JPEGs (about 1 KB: 24x24 noise pictures, each with
its row number after the end-of-image marker, so every row is a distinct image), in row groups of
--row-group rows (default: one group per file as pandas writes up to a million rows, the worst
case), then scans it (`ssl4rl_data.scan.scan` on `mmbench:FILE`, and `imagenet:FILE` for a
content-hash source) in a fresh process each and reports the process's peak resident memory.
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SCAN = """
import sys, time
from ssl4rl_data.source import parse_source
from ssl4rl_data.scan import scan
source = parse_source(sys.argv[1])
started = time.process_time()
items, scans = scan([source], progress=False)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would count the parent's memory at fork.
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(len(items), scans[0].images, scans[0].fingerprint, time.process_time() - started, peak)
"""


def tiny_jpegs(count: int = 64) -> list[bytes]:
    rng, pictures = np.random.default_rng(0), []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buffer, format="JPEG", quality=75)
        pictures.append(buffer.getvalue())
    return pictures


def write_table(path: Path, rows: int, row_group: int | None, pad: int = 0) -> Path:
    """An MMBench-style parquet of `rows` distinct images (about 1 KB each) in row groups of `row_group`."""
    if path.exists():
        return path
    pictures = tiny_jpegs()
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [
            ("index", pa.int64()),
            ("question", pa.string()),
            ("A", pa.string()),
            ("B", pa.string()),
            ("answer", pa.string()),
            ("category", pa.string()),
            ("image", image_type),
            ("split", pa.string()),
        ]
    )
    group, slices = row_group or rows, []
    for start in range(0, rows, 10_000):
        numbers = range(start, min(start + 10_000, rows))
        noise = np.random.default_rng(start).bytes(pad * len(numbers)) if pad else b""
        images = [
            {
                "bytes": pictures[n % len(pictures)]
                + n.to_bytes(4, "little")
                + noise[(n - start) * pad : (n - start + 1) * pad],
                "path": None,
            }
            for n in numbers
        ]
        slices.append(
            pa.table(
                {
                    "index": pa.array(numbers, pa.int64()),
                    "question": [f"question {n}?" for n in numbers],
                    "A": ["yes"] * len(numbers),
                    "B": ["no"] * len(numbers),
                    "answer": ["A"] * len(numbers),
                    "category": ["c"] * len(numbers),
                    "image": pa.array(images, image_type),
                    "split": ["dev"] * len(numbers),
                },
                schema=schema,
            )
        )
    # One write: the writer cuts row groups of `group` rows across the slices (pandas: one group).
    pq.write_table(pa.concat_tables(slices), path.with_suffix(".tmp"), row_group_size=group)
    path.with_suffix(".tmp").rename(path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 300_000])
    parser.add_argument("--row-group", type=int, default=None, help="Rows per row group (default: one group).")
    parser.add_argument(
        "--pad",
        type=int,
        default=0,
        help="Random bytes added to each image (after its end marker): photo-sized cells.",
    )
    parser.add_argument("--sources", nargs="+", default=["mmbench", "imagenet"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ssl4rl-scan-memory")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"row groups of {args.row_group or 'all the'} rows"
    )
    print(f"{'source':<10}{'rows':>9}{'file MiB':>10}{'images':>9}{'scan CPU s':>12}{'peak MiB':>10}")
    peaks = {}
    for rows in args.rows:
        name = f"mmbench-{rows}-{args.row_group or 'one'}" + (f"-pad{args.pad}" if args.pad else "")
        path = write_table(args.work / f"{name}.parquet", rows, args.row_group, args.pad)
        for kind in args.sources:
            started = time.perf_counter()
            spec = f"{kind}:{path}" + ("?column=image" if kind == "hf" else "")
            done = subprocess.run([sys.executable, "-c", SCAN, spec], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr)
            items, images, _, cpu, peak = done.stdout.split()
            peaks.setdefault(kind, []).append(int(peak))
            print(
                f"{kind:<10}{rows:>9}{path.stat().st_size / 2**20:>10.0f}{int(items):>9}{float(cpu):>12.1f}"
                f"{int(peak) / 2**20:>10.0f}   ({time.perf_counter() - started:.0f} s)"
            )
    for kind, values in peaks.items():
        print(
            f"{kind}: peak grows by {(max(values) - min(values)) / 2**20:.0f} MiB from {min(args.rows)} "
            f"to {max(args.rows)} rows (issue 22: under 50)"
        )


if __name__ == "__main__":
    main()
