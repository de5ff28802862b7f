"""The hand-written parquet schema and row tables are exactly what `datasets` and pyarrow would make."""

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Features

from ssl4rl_data import schema
from ssl4rl_data.schema import ARROW_SCHEMA, FEATURES, RowBatch, _offsets


def test_schema_matches_datasets():
    expected = Features.from_dict(FEATURES).arrow_schema
    assert ARROW_SCHEMA.equals(expected, check_metadata=True)


def test_row_batch_equals_pyarrow_conversion():
    rows = [  # (task, question, images, answer, source ids, difficulty): one, two and four images, non-ASCII text
        ("rotation", "Which way is up?", [b"\xff\xd8one"], "90", ["a"], 0.25),
        ("contrastive", "Same picture? — «yes» or no", [b"first", b""], "negative", ["b/1.jpg", "c"], None),
        ("jigsaw", "Restore the 4 pieces.", [bytes(range(256)) * 3, b"2", b"3", b"4"], "2,4,1,3", ["d"], 1.0),
    ]
    batch = RowBatch()
    for row in rows:
        batch.add(*row)
    expected = pa.Table.from_pylist(
        [
            {
                "prompt": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "text": None}] * len(images)
                        + [{"type": "text", "text": question}],
                    }
                ],
                "images": [{"bytes": data, "path": None} for data in images],
                "answer": answer,
                "task": task,
                "source_id": "|".join(ids),
                "difficulty": difficulty,
            }
            for task, question, images, answer, ids, difficulty in rows
        ],
        schema=ARROW_SCHEMA,
    )
    table = batch.table()
    table.validate(full=True)
    assert len(batch) == 3 and batch.nbytes == sum(len(data) for row in rows for data in row[2])
    assert table.equals(expected, check_metadata=True)


def test_offsets_past_arrow_limit_are_refused():
    with pytest.raises(ValueError, match="2 GiB"):
        _offsets([2**31 - 1, 1])  # one byte too many for int32 offsets: never wrapped around silently


def test_row_groups_close_at_the_byte_limit(tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(schema, "ROW_GROUP_BYTES", 1)  # every row is over it: one row per group
    code, err = run_cli("build", "rotation", "--out", tmp_path / "d", "-q", "--num-proc", "1")
    assert code == 0, err
    groups = [pq.ParquetFile(file).metadata for file in sorted((tmp_path / "d" / "data").glob("*.parquet"))]
    assert sum(meta.num_rows for meta in groups) == 12
    assert all(meta.num_row_groups == meta.num_rows for meta in groups)


def test_build_never_imports_pandas(tmp_path):
    """pyarrow's converters from Python objects import pandas: 0.5-0.7 s and 40 MB in every build."""
    script = (
        "import sys\nfrom ssl4rl_data.cli import main\n"
        f"try:\n    main(['build', 'jigsaw', '--out', {str(tmp_path / 'd')!r}, '-q', '--num-proc', '1'])\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'pandas'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert list((tmp_path / "d" / "data").glob("*.parquet"))
