"""`evaluate.py --compare RUN...`: a Markdown table with one column per run (named by its folder) and a
chart of the last run minus the first; runs whose prompts or pixel settings differ are refused unless
allowed, since their numbers are not comparable."""

import json
from pathlib import Path

from ssl4rl_train.scoring import headline

COMPARABLE = ("prompt", "min_pixels", "max_pixels")


def read_scores(folder: Path) -> dict:
    try:
        scores = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise ValueError(f"--compare {folder}: no readable scores.json ({reason})") from None
    if (
        not isinstance(scores, dict)
        or not isinstance(scores.get("scores"), dict)
        or not isinstance(scores.get("settings"), dict)
    ):
        raise ValueError(f"--compare {folder}: scores.json is not one written by evaluate.py")
    return scores


def run_names(folders: list[Path]) -> list[str]:
    names = [folder.name or str(folder) for folder in folders]
    return names if len(set(names)) == len(names) else [str(folder) for folder in folders]


def differing_settings(runs: list[dict]) -> dict[str, list]:
    values = {key: [run["settings"].get(key) for run in runs] for key in COMPARABLE}
    return {key: found for key, found in values.items() if len(set(map(json.dumps, found))) > 1}


def compare(folders: list[Path], out: Path, allow_different: bool = False) -> Path:
    """report.md and compare.png in `out`; a ValueError for runs that are not comparable."""
    runs = [read_scores(folder) for folder in folders]
    names = run_names(folders)
    different = differing_settings(runs)
    if different and not allow_different:
        detail = "; ".join(
            f"{key}: " + ", ".join(f"{n}={v}" for n, v in zip(names, found, strict=True))
            for key, found in different.items()
        )
        raise ValueError(
            f"--compare: the runs used different settings ({detail}); their scores are not "
            "comparable (pass --allow-different-settings to compare anyway)"
        )
    first, last = names[0], names[-1]
    lines = [f"# {' vs '.join(names)}", "", "| setting | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key in sorted({k for run in runs for k in run["settings"]} - {"benchmarks"}):
        marker = " (differs)" if key in different else ""
        lines.append(f"| {key}{marker} | " + " | ".join(str(run["settings"].get(key, "")) for run in runs) + " |")
    lines += [
        "",
        f"| benchmark | category | {' | '.join(names)} | {last} - {first} |",
        "|---" * (len(names) + 3) + "|",
    ]
    bars = []
    shared = set.intersection(*(set(run["scores"]) for run in runs))
    for name in sorted(shared):
        scores = [run["scores"][name] for run in runs]
        values = [headline(s) for s in scores]
        lines.append(_row(name, "**overall**", values))
        categories = set.intersection(*(set(s["categories"]) for s in scores))
        for category in sorted(categories):
            values = [s["categories"][category]["accuracy"] for s in scores]
            lines.append(_row(name, category, values))
            bars.append((f"{name}: {category}", 100 * (values[-1] - values[0])))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    draw_differences(bars, f"{last} - {first} (accuracy points)").save(out / "compare.png")
    return out / "report.md"


def _row(name: str, category: str, values: list[float]) -> str:
    cells = " | ".join(f"{100 * v:.1f}" for v in values)
    return f"| {name} | {category} | {cells} | {100 * (values[-1] - values[0]):+.1f} |"


def draw_differences(bars: list[tuple[str, float]], title: str):
    """A horizontal bar chart of differences (green up, red down), drawn with Pillow."""
    from PIL import Image, ImageDraw

    row, label_width, half = 22, 320, 220
    scale = half / max([abs(v) for _, v in bars] + [1.0])
    image = Image.new("RGB", (label_width + 2 * half + 80, row * (len(bars) + 2)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 4), title, fill="black")
    middle = label_width + half
    draw.line([(middle, row), (middle, row * (len(bars) + 1))], fill="gray")
    for index, (label, value) in enumerate(bars):
        top = row * (index + 1) + 3
        draw.text((8, top + 2), label[:48], fill="black")
        end = middle + value * scale
        draw.rectangle(
            [min(middle, end), top, max(middle, end), top + row - 6],
            fill=(46, 139, 87) if value >= 0 else (200, 60, 60),
        )
        draw.text((max(middle, end) + 4, top + 2), f"{value:+.1f}", fill="black")
    return image
