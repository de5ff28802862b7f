#!/usr/bin/env bash
# One prepared check for a borrowed GPU machine (one H200, no network, a few minutes):
#
#   bash benchmarks/gpu_check.sh --prepare   # here, with network: fill benchmarks/.gpu_wheels/ (gitignored)
#   bash benchmarks/gpu_check.sh             # there: install the carried wheels, then run every stage
#   bash benchmarks/gpu_check.sh --cpu       # anywhere: the same stages, reduced, on the CPU, no install
#
# Stages, each time-boxed (`timeout`), so one that fails or overruns still leaves the others' figures:
#   install     the wheels the GPU machine lacks (trl, datasets, pandas, ...) unpacked into a folder
#               put first on PYTHONPATH; only what the machine's own packages do not satisfy
#   data        distinct photos made from the bundled sample photos, then real multi-image rotation
#               and jigsaw datasets built from them with ssl4rl-data
#   model       train/synthetic_qwen.py --size 3b: a bf16 checkpoint of Qwen2.5-VL-3B with random weights
#   train       benchmarks/train_step.py: GRPO steps from that checkpoint (beta 0.01, so with TRL's
#               reference-model pass; from in-memory random weights, beta 0, if the model stage failed):
#               step time, generated tokens/s per GPU, peak memory, MFU
#   eval        train/evaluate.py --benchmark ssl:... on a few hundred rows of that checkpoint: rows/s
# The whole run stays within GPU_CHECK_SECONDS (default 470 s on the GPU, 600 s with --cpu); the log
# and the summary go to stdout and, when $OUT is set, to $OUT/gpu_check.log and $OUT/gpu_check_summary.txt.
#
# Environment: PYTHON (default python3), OUT, GPU_CHECK_SECONDS, GPU_CHECK_WORK (default a new folder
# under /tmp), GPU_CHECK_PYTHONS (--prepare: Python versions to carry compiled wheels for,
# default "3.11 3.12 3.13 3.14").
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/benchmarks/.gpu_wheels"
PYTHON="${PYTHON:-python3}"
MODE=gpu
INSTALL=""
for arg in "$@"; do
  case "$arg" in
    --cpu) MODE=cpu ;;
    --prepare) MODE=prepare ;;
    --install) INSTALL=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
[ -z "$INSTALL" ] && { [ "$MODE" = gpu ] && INSTALL=1 || INSTALL=0; }

# --------------------------------------------------------------------------------------------
# --prepare: download exactly the wheels the GPU machine lacks (its python3 has torch, transformers
# 5.17, accelerate, peft, pyarrow, pillow, opencv, scikit-image). trl 1.16.0 accepts transformers
# >= 4.56.2 and datasets 5.2.0 wants huggingface-hub >= 1.31 while transformers 5.17 wants < 2.0, so
# the hub carried is 1.33.0. Compiled wheels (pandas, xxhash) are carried for each Python version in
# GPU_CHECK_PYTHONS; albumentations is not carried: rotation and jigsaw builds do not import it (and
# it would pull opencv-python-headless, 50 MB).
PURE_WHEELS="trl==1.16.0 datasets==5.2.0 dill==0.4.1 fsspec==2026.9.0 huggingface_hub==1.33.0
  python-dateutil==4.0.0 tzdata==2026.6 httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.16.0 idna==3.20
  certifi==2026.10.19.post1 filelock==4.2.11 tqdm==4.70.1 typing_extensions==4.16.0 packaging==26.3"
COMPILED_WHEELS="pandas==3.1.1 xxhash==4.1.0 multiprocess==0.70.19 PyYAML==6.0.3"
if [ "$MODE" = prepare ]; then
  rm -rf "$WHEELS" && mkdir -p "$WHEELS" || exit 1
  # shellcheck disable=SC2086
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" $PURE_WHEELS || exit 1
  for version in ${GPU_CHECK_PYTHONS:-3.11 3.12 3.13 3.14}; do
    # shellcheck disable=SC2086
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version "$version" \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$WHEELS" $COMPILED_WHEELS || exit 1
  done
  ls -1 "$WHEELS"
  echo "$(du -sh "$WHEELS" | cut -f1) in $WHEELS ($(ls "$WHEELS" | wc -l) wheels); must stay under 64 MiB with the code"
  exit 0
fi

# --------------------------------------------------------------------------------------------
# The check.
if [ "$MODE" = gpu ]; then BUDGET="${GPU_CHECK_SECONDS:-470}"; else BUDGET="${GPU_CHECK_SECONDS:-600}"; fi
START=$(date +%s)
DEADLINE=$((START + BUDGET))
WORK="${GPU_CHECK_WORK:-$(mktemp -d /tmp/ssl4rl-gpu-check.XXXXXX)}"
mkdir -p "$WORK"
STAGES="$WORK/stages.tsv"
: > "$STAGES"
export HF_HOME="$WORK/hf" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export NO_ALBUMENTATIONS_UPDATE=1 TOKENIZERS_PARALLELISM=false PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
# ssl4rl_data and ssl4rl_train as an install lays them out (cards/ becomes ssl4rl_data/cards, train/ becomes
# ssl4rl_train), from this checkout, without pip.
SRC="$WORK/src"
rm -rf "$SRC" && mkdir -p "$SRC" && cp -r "$ROOT/ssl4rl_data" "$SRC/" || exit 1
[ -d "$SRC/ssl4rl_data/cards" ] || cp -r "$ROOT/cards" "$SRC/ssl4rl_data/cards" || exit 1
cp -r "$ROOT/train" "$SRC/ssl4rl_train" || exit 1  # train/ installs as the ssl4rl_train package
export PYTHONUNBUFFERED=1 PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
export ROOT WHEELS PYTHON WORK
cd "$WORK" || exit 1  # not the checkout: python -m and -c put the working directory first on sys.path

# run_stage NAME SECONDS COMMAND...: runs COMMAND with at most SECONDS (less if the run's budget is
# nearly spent), its output shown and kept in $WORK/NAME.log; records NAME, exit status, seconds.
run_stage() {
  local name="$1" box="$2"; shift 2
  local left=$((DEADLINE - $(date +%s)))
  [ "$left" -lt "$box" ] && box="$left"
  if [ "$box" -lt 5 ]; then
    echo "== $name: skipped, the run's $BUDGET s are spent"
    printf '%s\t%s\t%s\n' "$name" skipped 0 >> "$STAGES"
    return 1
  fi
  echo "== $name (at most $box s): $*"
  local began; began=$(date +%s.%N)
  if declare -F "$1" > /dev/null; then  # a function of this script: run it in a child bash that timeout can stop
    timeout -k 10 "$box" bash -c "$(declare -f "$1"); \"\$@\"" "$1" "$@" 2>&1 | tee "$WORK/$name.log"
  else
    timeout -k 10 "$box" "$@" 2>&1 | tee "$WORK/$name.log"
  fi
  local rc=${PIPESTATUS[0]}
  local took; took=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\n' "$name" "$rc" "$took" >> "$STAGES"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "== $name: TIMED OUT after $box s"; else echo "== $name: exit $rc in $took s"; fi
  return "$rc"
}

# The carried-wheel installer: for trl and datasets and, recursively, their requirements, keep what
# this Python already has when it satisfies every requirement on it (those of trl/datasets and of the
# installed packages, e.g. transformers' huggingface-hub < 2), else unpack the newest carried wheel that
# does (matching this interpreter's tags) into SITE. Unpacking needs no pip and no venv, so it works
# the same for a system, venv or conda python3.
install_wheels() {
  "$PYTHON" - "$WHEELS" "$1" "trl==1.16.0" "datasets==5.2.0" <<'PYEOF'
import importlib.metadata as md
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

wheels, site, wanted = Path(sys.argv[1]), Path(sys.argv[2]), [Requirement(r) for r in sys.argv[3:]]
print(f"python {sys.version.split()[0]} at {sys.executable}; wheels from {wheels}")
if not wheels.is_dir():
    sys.exit(f"no {wheels}: run `bash benchmarks/gpu_check.sh --prepare` before the GPU run and carry that folder")
tags = set(sys_tags())
carried = defaultdict(list)
for path in wheels.glob("*.whl"):
    name, version, _, wheel_tags = parse_wheel_filename(path.name)
    if wheel_tags & tags:
        carried[name].append((version, path))
replacing = {canonicalize_name(r.name) for r in wanted}
installed, imposed, imposers = {}, defaultdict(SpecifierSet), defaultdict(list)
for dist in md.distributions():
    name = canonicalize_name(dist.metadata["Name"] or "")
    if name and name not in installed:
        installed[name] = dist
for name, dist in installed.items():
    if name in replacing:
        continue
    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except Exception:  # noqa: BLE001 - an unparsable requirement of some unrelated package
            continue
        if req.specifier and (req.marker is None or req.marker.evaluate({"extra": ""})):
            imposed[canonicalize_name(req.name)] &= req.specifier
            imposers[canonicalize_name(req.name)].append(f"{name} {dist.version} wants {req.specifier}")


def metadata(path):
    with zipfile.ZipFile(path) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return archive.read(meta).decode("utf-8").splitlines()


def requirements(path):
    return [Requirement(line.split(":", 1)[1].strip()) for line in metadata(path) if line.startswith("Requires-Dist:")]


def runs_here(path):  # the wheel's Requires-Python admits this interpreter
    spec = next((line.split(":", 1)[1].strip() for line in metadata(path) if line.startswith("Requires-Python:")), "")
    return SpecifierSet(spec).contains(".".join(map(str, sys.version_info[:3])), prereleases=True)


def best(name, spec):
    return max((c for c in carried.get(name, []) if spec.contains(c[0], prereleases=True) and runs_here(c[1])),
               default=None)


# Best effort: a requirement nothing here can meet is reported and the run goes on (the imports
# stage then shows whether it matters).
plan, needs, warnings, queue = {}, defaultdict(SpecifierSet), [], list(wanted)
while queue:
    req = queue.pop(0)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    name = canonicalize_name(req.name)
    needs[name] &= req.specifier
    spec = needs[name] & imposed[name]
    if name in plan:
        if spec.contains(plan[name][0], prereleases=True):
            continue
    elif name in installed and spec.contains(installed[name].version, prereleases=True):
        continue
    have = installed[name].version if name in installed else "not installed"
    choice = best(name, spec)
    if choice is None and best(name, needs[name]) is not None:
        choice = best(name, needs[name])
        warnings.append(f"{name} {choice[0]} unpacked for {needs[name]}, against {'; '.join(imposers[name])}")
    if choice is None:
        if name in plan or name in installed:
            warnings.append(f"{name}: kept {plan[name][0] if name in plan else have}, though {spec} is wanted "
                            f"({'; '.join(imposers[name]) or 'by the carried packages'}); nothing carried fits")
        else:
            versions = ", ".join(f"{v}" for v, _ in carried.get(name, [])) or "none"
            warnings.append(f"{name}{needs[name]}: not installed, and no carried wheel fits Python "
                            f"{sys.version.split()[0]} (carried for this platform: {versions})")
        continue
    plan[name] = choice
    queue += requirements(choice[1])
site.mkdir(parents=True, exist_ok=True)
for name, (version, path) in sorted(plan.items()):
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if ".data" in parts[0] and parts[0].endswith(".data"):  # name-version.data/purelib|platlib/...
                if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                    target = site.joinpath(*parts[2:])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
                continue
            archive.extract(member, site)
    old = installed[name].version if name in installed else "absent"
    print(f"  {name} {version} ({path.name}; this python had: {old})")
print(f"unpacked {len(plan)} wheels into {site}")
exit_code = 1 if warnings else 0
for warning in warnings:
    print(f"  warning: {warning}")
sys.exit(exit_code)
PYEOF
}

check_imports() {
  "$PYTHON" -c "
import sys, importlib.metadata as md
import torch, transformers, trl, datasets, pandas, accelerate
from trl import GRPOConfig, GRPOTrainer
print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      '| transformers', transformers.__version__, '| trl', trl.__version__, '| datasets', datasets.__version__,
      '| huggingface_hub', md.version('huggingface_hub'), '| pandas', pandas.__version__, '| accelerate', accelerate.__version__)
"
}

make_data() {
  local photos="$1" count="$2" procs="$3"
  "$PYTHON" -c "
import sys; from pathlib import Path
sys.path.insert(0, '$ROOT/benchmarks')
from photo_set import make_photos
make_photos(Path('$WORK/photos'), $count, procs=$procs)" || return 1
  for task in rotation jigsaw; do
    "$PYTHON" -m ssl4rl_data.cli build "$task" --source "folder:$WORK/photos" --out "$WORK/data/$task" \
      --num-proc "$procs" --overwrite || return 1
  done
}

# train_model ARGS...: train_step.py on the built datasets; from the saved checkpoint with the paper's KL
# coefficient (beta 0.01, so TRL's reference-model pass runs and is counted) when the model stage wrote
# one (exit 0), else from random weights made in memory with beta 0.
train_model() {
  local start=()
  if grep -q "^model	0	" "$WORK/stages.tsv"; then start=(--model "$WORK/model" --beta 0.01); fi
  "$PYTHON" "$ROOT/benchmarks/train_step.py" "$@" "${start[@]}" --data "$WORK/data/rotation" "$WORK/data/jigsaw" \
    --json "$WORK/train.json"
}

summary() {
  "$PYTHON" - "$WORK" "$MODE" "$BUDGET" "$START" <<'PYEOF'
import json, re, sys, time
from pathlib import Path

work, mode, budget, start = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
stages = [line.split("\t") for line in (work / "stages.tsv").read_text().splitlines() if line]
status = {name: (rc, float(took)) for name, rc, took in stages}
word = lambda rc: {"0": "ok", "124": "TIMED OUT", "137": "KILLED (time or memory)", "skipped": "skipped"}.get(rc, f"FAILED (exit {rc})")
lines = [f"stages                 " + "; ".join(f"{n} {word(rc)} {t:.0f} s" for n, (rc, t) in status.items())
         + f" (total {time.time() - start:.0f} s of {budget})"]
try:
    import pyarrow.parquet as pq
    counts = {t: sum(pq.read_metadata(f).num_rows for f in (work / "data" / t).glob("data/*.parquet"))
              for t in ("rotation", "jigsaw")}
    lines.append("data                   " + ", ".join(f"{t} {n} rows" for t, n in counts.items())
                 + f" from {len(list((work / 'photos').glob('*.jpg')))} photos (ssl4rl-data, 2 and 4 images per row)")
except Exception as error:  # noqa: BLE001
    lines.append(f"data                   n/a ({type(error).__name__})")
train = work / "train.json"
if train.is_file():
    f = json.loads(train.read_text())
    flops = f["flops_per_step"]
    lines += [
        f"device                 {f['device']}",
        f"model                  Qwen2.5-VL-{f['size']}, {f['parameters']:,} parameters (random weights)",
        f"step time              {f['step_time_s']:.3f} s (mean of {f['steps_measured']} steps after warm-up; "
        f"all: {', '.join(f'{t:.2f}' for t in f['step_times_s'])}); rollout {f['rollout_time_s']:.3f} s of it",
        f"generated tokens/s     {f['generated_tokens_per_s']:.1f} per GPU over whole steps; "
        f"{f['rollout_tokens_per_s'] or float('nan'):.1f} during rollouts ({f['completions_per_step']} completions "
        f"x {f['mean_completion_tokens']:.0f} tokens per step)",
        f"prompt                 {f['prompt_tokens_per_rollout']:.0f} tokens, {f['image_patches_per_rollout']:.0f} "
        "image patches per rollout",
        f"peak memory            {f['peak_memory_gib']:.2f} GiB {f['peak_memory_kind']}"
        + (f", {f['peak_reserved_gib']:.1f} GiB reserved" if f.get("peak_reserved_gib") is not None else ""),
        f"model FLOPs per step   {flops['total'] / 1e12:.4g} TFLOP (prefill {flops['rollout_prefill'] / 1e12:.3g}, decode "
        f"{flops['rollout_decode'] / 1e12:.3g}, old log-probs {flops['old_logps'] / 1e12:.3g}, reference "
        f"{flops['reference'] / 1e12:.3g}, train {flops['train'] / 1e12:.3g})",
        f"achieved               {f['achieved_flops'] / 1e12:.4g} TFLOP/s",
        "MFU                    " + (f"{100 * f['mfu']:.2f} % of {f['peak_flops'] / 1e12:.0f} TFLOP/s dense bf16"
                                     if f["mfu"] is not None else "n/a (no peak FLOP/s for this device)"),
    ]
else:
    lines.append("train                  no figures (see the train stage above)")
predictions = work / "eval" / "predictions.jsonl"
if predictions.is_file() and "eval" in status:
    rows = sum(1 for line in predictions.read_text().splitlines() if line.strip())
    log = (work / "eval.log").read_text(errors="replace") if (work / "eval.log").is_file() else ""
    # tqdm's last line for the generation loop: its average rate, without model loading.
    found = re.findall(r"generating: 100%.*?\]?\s*(\d+)/(\d+) \[[^,\]]*,\s*([0-9.]+)(s/batch|batch/s)", log)
    seconds = None
    if found:
        batches, _, rate, unit = found[-1]
        seconds = int(batches) * float(rate) if unit == "s/batch" else int(batches) / float(rate)
    total = status["eval"][1]
    lines.append(f"eval rows/s            {rows / seconds:.2f} generating ({rows} rows in {seconds:.1f} s); "
                 f"{rows / total:.2f} end to end ({total:.1f} s with start-up and model loading)"
                 if seconds else f"eval rows/s            {rows / total:.2f} end to end ({rows} rows in {total:.1f} s, "
                 "start-up and model loading included)")
    scores = work / "eval" / "scores.json"
    if scores.is_file():
        result = json.loads(scores.read_text())["scores"]
        lines.append("eval scores            " + "; ".join(
            f"{name}: {result[name]['rows']} rows, {result[name]['unmatched']} unmatched" for name in result))
else:
    lines.append("eval rows/s            no figures (see the eval stage above)")
print("=" * 30 + f" ssl4rl GPU check ({mode}): summary " + "=" * 30)
print("\n".join(lines))
print("=" * 90)
PYEOF
}

main() {
  echo "ssl4rl GPU check, mode $MODE, $(date -u +%FT%TZ), work folder $WORK, budget $BUDGET s"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  if [ "$INSTALL" = 1 ]; then
    run_stage install 90 install_wheels "$WORK/site"
    export PYTHONPATH="$WORK/site:$PYTHONPATH"
    run_stage imports 60 check_imports
  fi
  if [ "$MODE" = gpu ]; then
    run_stage data 60 make_data "$WORK/photos" 160 8
    run_stage model 70 "$PYTHON" "$ROOT/train/synthetic_qwen.py" --size 3b --out "$WORK/model" \
      --dtype bfloat16 --device cuda
    run_stage train 220 train_model --size 3b --steps 5 --warmup 1 --prompts-per-step 16 --num-generations 4 \
      --max-completion-length 256
    run_stage eval 100 "$PYTHON" "$ROOT/train/evaluate.py" --model "$WORK/model" --out "$WORK/eval" \
      --benchmark "ssl:$WORK/data/rotation" --benchmark "ssl:$WORK/data/jigsaw" --limit 150 \
      --batch-size 32 --max-new-tokens 64 --max-pixels 200704
  else
    run_stage data 60 make_data "$WORK/photos" 8 1
    run_stage model 60 "$PYTHON" "$ROOT/train/synthetic_qwen.py" --size tiny --out "$WORK/model"
    run_stage train 200 train_model --size tiny --cpu --steps 3 --warmup 1 --prompts-per-step 2 \
      --num-generations 2 --max-completion-length 8 --max-pixels 12544
    run_stage eval 100 "$PYTHON" "$ROOT/train/evaluate.py" --model "$WORK/model" --out "$WORK/eval" \
      --benchmark "ssl:$WORK/data/rotation" --benchmark "ssl:$WORK/data/jigsaw" --limit 3 \
      --batch-size 3 --max-new-tokens 8 --max-pixels 12544
  fi
  summary | tee "$WORK/summary.txt"
  [ -n "${OUT:-}" ] && cp "$WORK/summary.txt" "$OUT/gpu_check_summary.txt"
  return 0
}

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  main 2>&1 | tee "$OUT/gpu_check.log"
else
  main 2>&1
fi
