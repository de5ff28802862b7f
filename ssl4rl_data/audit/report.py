"""The audit's outputs: audit.json, a short Markdown report with two PNG plots, and the card's summary."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

BAR_WIDTH, PLOT_HEIGHT = 28, 160
# Per row: its re-checked label and model-free difficulty score (0 easy .. 1 another answer fits as well), tier.
ROWS_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("source_id", pa.string()),
        ("verdict", pa.string()),
        ("difficulty", pa.float64()),
        ("tier", pa.string()),
    ]
)


def write_reports(result: dict, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = result.get("rows", [])
    pq.write_table(pa.Table.from_pylist(rows, schema=ROWS_SCHEMA), out / "rows.parquet")
    summary = {k: v for k, v in result.items() if k != "rows"}
    (out / "audit.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    balance_plot(result["balance"]["counts"]).save(out / "answers.png")
    blind_plot(result["blind"]["top"]).save(out / "blind.png")
    (out / "audit.md").write_text(markdown(result), encoding="utf-8")
    return [out / name for name in ("audit.json", "audit.md", "answers.png", "blind.png", "rows.parquet")]


def _canvas(bars: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (max(240, 40 + bars * BAR_WIDTH), PLOT_HEIGHT + 60), "white")
    return image, ImageDraw.Draw(image)


def balance_plot(counts: dict, shown: int = 24) -> Image.Image:
    """Rows per answer (the commonest `shown`), with the uniform share as a line."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:shown]
    image, draw = _canvas(len(items))
    top = max((v for _, v in items), default=1)
    uniform = sum(counts.values()) / max(1, len(counts))
    for i, (answer, count) in enumerate(items):
        x, height = 30 + i * BAR_WIDTH, count / top * PLOT_HEIGHT
        draw.rectangle((x, 20 + PLOT_HEIGHT - height, x + BAR_WIDTH - 6, 20 + PLOT_HEIGHT), fill=(70, 110, 180))
        draw.text((x, 24 + PLOT_HEIGHT), str(answer)[:5], fill="black")
    line = 20 + PLOT_HEIGHT - uniform / top * PLOT_HEIGHT
    draw.line((24, line, image.width - 4, line), fill=(200, 40, 40), width=1)
    draw.text((4, 4), "rows per answer (red: uniform share)", fill="black")
    return image


def blind_plot(tests: list[dict]) -> Image.Image:
    """Accuracy of the strongest blind baselines with their 95% intervals, chance as a tick."""
    image, draw = _canvas(len(tests) * 2)
    for i, test in enumerate(tests):
        x = 30 + i * 2 * BAR_WIDTH

        def y(v):
            return 20 + PLOT_HEIGHT * (1 - v)

        colour = (200, 40, 40) if test["shortcut"] else (120, 120, 120) if test["content_proxy"] else (70, 110, 180)
        draw.rectangle((x, y(test["accuracy"]), x + BAR_WIDTH, y(0)), fill=colour)
        middle = x + BAR_WIDTH // 2
        draw.line((middle, y(test["ci95"][1]), middle, y(test["ci95"][0])), fill="black", width=2)
        draw.line((x - 4, y(test["chance"]), x + BAR_WIDTH + 4, y(test["chance"])), fill=(0, 150, 0), width=2)
        draw.text((x, 24 + PLOT_HEIGHT + (i % 2) * 12), str(i + 1), fill="black")
    draw.text((4, 4), "blind baselines: accuracy, 95% CI, chance (green); red = shortcut", fill="black")
    return image


def markdown(result: dict) -> str:
    d, labels, balance, blind = result["dataset"], result["labels"], result["balance"], result["blind"]
    lines = [
        f"# Audit of {d['task']} version {d['version']} ({d['rows']} rows)",
        "",
        f"**{'Passed' if result['passed'] else 'Problems found'}** in {result['seconds']} s.",
    ]
    lines += [f"- {p}" for p in result["problems"]]
    lines += ["", "## Labels re-checked from the rows", ""]
    if labels["checker"]:
        lines.append(
            f"{labels['ok']} confirmed, {labels['wrong']} contradicted, {labels['unsure']} undecidable "
            f"by the pixels (of {labels['rows']})."
        )
        if labels["wrong_ids"]:
            lines.append("Contradicted: " + ", ".join(f"`{i}`" for i in labels["wrong_ids"][:20]))
    else:
        lines.append(f"No checker for task `{d['task']}`: labels not re-checked.")
    overall = balance["overall"]
    lines += [
        "",
        "## Answer balance",
        "",
        f"{overall['answers']} answers; chi-square {overall['chi2']} "
        f"(dof {overall['dof']}), p = {overall['p']:.3g} against uniform"
        + (f"; smallest p over the cells {balance['p_min']:.3g}" if "cells" in balance else "")
        + (" — **imbalanced**" if balance["imbalanced"] else "")
        + ".",
        "",
        "![answers](answers.png)",
        "",
        "## Blind baselines",
        "",
        f"{blind['tests']} cross-validated classifiers on what no model should use; a shortcut needs "
        f"p < {blind['threshold_p']:.2g} (Bonferroni) and 1 point above chance.",
        "",
        "| # | feature | predicts | accuracy (95% CI) | chance | p | |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(blind["top"]):
        mark = "**shortcut**" if t["shortcut"] else "content (reported)" if t["above_chance"] else ""
        lines.append(
            f"| {i + 1} | {t['feature']} | {t['target']} | {t['accuracy']:.1%} ({t['ci95'][0]:.1%}-"
            f"{t['ci95'][1]:.1%}) | {t['chance']:.1%} | {t['p']:.2g} | {mark} |"
        )
    lines += ["", "![blind baselines](blind.png)", ""]
    difficulty = result.get("difficulty")
    if difficulty:
        q = difficulty["quantiles"]
        lines += [
            "## Difficulty",
            "",
            "Model-free score per row (rows.parquet; 0: the answer stands apart, 1: another "
            f"answer fits the pixels as well): median {q['0.5']}, 90th percentile {q['0.9']}; tiers by thirds "
            f"at {difficulty['tier_cuts']}.",
            "",
        ]
    lines += ["## Contamination", ""]
    contamination = result["contamination"]
    if not contamination:
        lines.append("Not searched (no `--against` source).")
    else:
        lines.append(
            f"{contamination['rows_hashed']} row pictures searched ({contamination['rows_without_picture']} "
            "rows show no whole picture)."
        )
        for entry in contamination["against"]:
            state = (
                "transductive: built from this benchmark on purpose"
                if entry["transductive"]
                else "**overlap**"
                if entry["failure"]
                else "no overlap"
            )
            lines.append(
                f"- `{entry['spec']}` ({entry['images']} images): {entry['overlaps']} rows overlap; {state}"
                + (": " + ", ".join(f"`{r}`" for r in entry["rows"][:20]) if entry["rows"] else "")
            )
    return "\n".join(lines) + "\n"


def card_summary(result: dict) -> dict:
    """What the card's Audit section shows (and its `ssl4rl.audit` block holds)."""
    labels, blind, contamination = result["labels"], result["blind"], result["contamination"]
    best = blind["top"][0] if blind["top"] else None
    return {
        "passed": result["passed"],
        "problems": result["problems"],
        "labels": {k: labels[k] for k in ("checker", "rows", "ok", "wrong", "unsure")},
        "balance_p": round(result["balance"]["p_min"], 4),
        "imbalanced": result["balance"]["imbalanced"],
        "blind": {
            "tests": blind["tests"],
            "shortcuts": blind["shortcuts"][:5],
            "strongest": None
            if best is None
            else {
                "feature": best["feature"],
                "target": best["target"],
                "accuracy": round(best["accuracy"], 4),
                "chance": round(best["chance"], 4),
            },
        },
        "contamination": None
        if not contamination
        else [
            {k: e[k] for k in ("kind", "benchmark", "images", "overlaps", "transductive")}
            for e in contamination["against"]
        ],
    }
