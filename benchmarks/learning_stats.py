"""The learning check's figures: the gain and its standard error, rows gained and lost, the reward plot."""

import json
import math
from pathlib import Path


def gain_statistics(before: float, after: float, n: int) -> dict:
    se = math.sqrt(before * (1 - before) / n + after * (1 - after) / n)
    return {
        "before": before,
        "after": after,
        "gain": after - before,
        "n": n,
        "se": se,
        "z": (after - before) / se if se > 0 else (math.inf if after > before else 0.0),
    }


def paired_counts(before: list[int], after: list[int]) -> dict:
    """Row by row: right both times, gained (wrong, then right), lost (right, then wrong), neither."""
    pairs = list(zip(before, after))
    return {
        "both": sum(a and b for a, b in pairs),
        "gained": sum(not a and b for a, b in pairs),
        "lost": sum(a and not b for a, b in pairs),
        "neither": sum(not a and not b for a, b in pairs),
    }


def row_rewards(predictions: Path) -> list[int]:
    from ssl4rl_data.rewards import score

    rows = [json.loads(line) for line in predictions.read_text().splitlines() if line]
    return [
        int(score(row["output"], row["answer"], row["task"]) == 1.0) for row in sorted(rows, key=lambda r: r["id"])
    ]


def reward_curve(log_history: list[dict], chance: float, before: float, after: float, path: Path):
    """GRPO's mean training reward per step (and a moving average), drawn with Pillow."""
    from PIL import Image, ImageDraw

    points = [(entry["step"], entry["reward"]) for entry in log_history if "reward" in entry and "step" in entry]
    width, height, left, right, top, bottom = 720, 420, 60, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (left, 10),
        f"GRPO mean reward per step (rotation, training rows); held-out accuracy "
        f"{100 * before:.1f}% -> {100 * after:.1f}%",
        fill="black",
    )
    plot_w, plot_h = width - left - right, height - top - bottom
    last = max([s for s, _ in points] + [1])

    def xy(step, value):
        return left + plot_w * (step - 1) / max(last - 1, 1), top + plot_h * (1 - value)

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for value in (0, 0.25, 0.5, 0.75, 1.0):
        y = xy(1, value)[1]
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{value:.2f}", fill="black")
    for step in sorted({1, last, *range(0, last + 1, max(1, last // 5))} - {0}):
        x = xy(step, 0)[0]
        draw.text((x - 8, top + plot_h + 6), str(step), fill="black")
    draw.text((left + plot_w // 2 - 20, height - 20), "step", fill="black")
    chance_y = xy(1, chance)[1]
    draw.line([(left, chance_y), (left + plot_w, chance_y)], fill=(200, 60, 60))
    draw.text((left + plot_w - 90, chance_y - 14), f"chance {chance:.2f}", fill=(200, 60, 60))
    if points:
        draw.line([xy(s, v) for s, v in points], fill=(150, 170, 220), width=1)
        window = max(1, len(points) // 15)
        smooth = []
        for i, (step, _) in enumerate(points):
            recent = [v for _, v in points[max(0, i - window + 1) : i + 1]]
            smooth.append((step, sum(recent) / len(recent)))
        draw.line([xy(s, v) for s, v in smooth], fill=(20, 60, 160), width=3)
        draw.text((left + 8, top + 6), f"light: per step; dark: moving mean of {window}", fill=(20, 60, 160))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
