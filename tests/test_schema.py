"""The hand-written parquet schema is exactly the one `datasets` derives from the features."""

from datasets import Features

from ssl4rl_data.schema import ARROW_SCHEMA, FEATURES


def test_schema_matches_datasets():
    expected = Features.from_dict(FEATURES).arrow_schema
    assert ARROW_SCHEMA.equals(expected, check_metadata=True)
