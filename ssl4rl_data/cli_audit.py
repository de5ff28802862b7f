"""The `ssl4rl-data audit` and `ssl4rl-data calibrate` commands (registered by cli.py; the audit loads on use)."""

from pathlib import Path

import click

from .errors import UserError


@click.command("audit")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option(
    "--against",
    multiple=True,
    metavar="SPEC",
    help="Search the dataset's pictures in this source (e.g. mmbench:PATH), repeatable: overlaps of a "
    "held-out dataset are contamination; a dataset built from that benchmark is reported transductive.",
)
@click.option(
    "--out",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for audit.json, audit.md and plots. Default: DATASET-audit next to DATASET.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when a label fails, a blind baseline beats chance or a held-out dataset overlaps.",
)
@click.option("--num-proc", type=int, default=1, show_default=True, help="Worker processes.")
def audit_command(dataset, against, report_dir, strict, num_proc):
    """Audit a built DATASET: labels re-checked, answer balance, blind baselines, contamination; the result
    goes into its card."""
    from .audit import audit_and_report

    result, written = audit_and_report(dataset, against, report_dir, num_proc=num_proc)
    state = "passed" if result["passed"] else "problems found"
    click.echo(
        f"audit of {dataset}: {state} ({result['dataset']['rows']} rows, {result['seconds']} s); "
        f"report in {written[1]}",
        err=True,
    )
    for problem in result["problems"]:
        click.echo(f"  {problem}", err=True)
    if strict and not result["passed"]:
        raise click.exceptions.Exit(1)


@click.command("calibrate")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--model", "model_path", required=True, help="Model folder or Hub id (Qwen2.5-VL family).")
@click.option("--k", type=int, default=8, show_default=True, help="Answers sampled per row (temperature 1).")
@click.option(
    "--keep",
    default=None,
    metavar="MIN..MAX",
    help="Write the rows whose pass rate lies in this band as a new dataset version (needs --out).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder of the new version (--keep).")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Where pass rates go (calibration.parquet, calibration.json). Default: DATASET-calibration.",
)
@click.option("--max-new-tokens", type=int, default=512, show_default=True)
@click.option("--max-pixels", type=int, default=None, help="Image processor pixel bound (default: the model's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it is an earlier dataset or empty.")
def calibrate_command(dataset, model_path, k, keep, out, report, max_new_tokens, max_pixels, seed, overwrite):
    """Pass rate of each row of DATASET under a model's sampled answers; --keep writes the learnable band."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .audit.calibrate import check_keep_out, keep_band, parse_band, pass_rates

    band = parse_band(keep) if keep else None
    if band and out is None:
        raise UserError("--keep needs --out, the folder of the new dataset version")
    if band:
        check_keep_out(dataset, out, overwrite)
    rates = pass_rates(dataset, model_path, k=k, max_new_tokens=max_new_tokens, max_pixels=max_pixels, seed=seed)
    report = report or Path(dataset).resolve().parent / f"{Path(dataset).resolve().name}-calibration"
    report.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rates), report / "calibration.parquet")
    zero = sum(r["zero_variance"] for r in rates) / max(1, len(rates))
    summary = {
        "model": model_path,
        "k": k,
        "rows": len(rates),
        "zero_variance": zero,
        "mean_pass_rate": sum(r["pass_rate"] for r in rates) / max(1, len(rates)),
    }
    (report / "calibration.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"calibrated {len(rates)} rows: mean pass rate {summary['mean_pass_rate']:.3f}, "
        f"zero-variance groups {zero:.1%}; pass rates in {report}",
        err=True,
    )
    if band:
        record = keep_band(dataset, out, rates, band, model_path, k, overwrite=overwrite)
        calibration = record["calibration"]
        click.echo(
            f"kept {calibration['rows_kept']} of {calibration['rows_before']} rows in {out} (version "
            f"{record['version']}); zero-variance groups {calibration['zero_variance_before']:.1%} -> "
            f"{calibration['zero_variance_after']:.1%}",
            err=True,
        )
