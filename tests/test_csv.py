"""The CSV parser on the bad-file corpus in tests/data/bad_csv/: every file gets a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bn_core.data import MAX_COLS, MAX_ROWS, MAX_UPLOAD_BYTES, parse_csv

CORPUS = Path(__file__).parent / "data" / "bad_csv"

# file -> (usable?, expected level, a phrase the message must contain, expected shape when usable)
EXPECTED = {
    "empty.csv": (False, "error", "empty", None),
    "blank_lines.csv": (False, "error", "empty", None),
    "header_only.csv": (False, "error", "no data rows", None),
    "binary.csv": (False, "error", "binary", None),
    "latin1.csv": (False, "error", "not UTF-8", None),
    "utf16.csv": (True, None, None, (2, 2)),
    "semicolon.csv": (True, "info", "';'", (3, 2)),
    "non_numeric.csv": (False, "error", "No numeric columns", None),
    "mixed_types.csv": (True, "warning", "'label'", (3, 2)),
    "duplicate_headers.csv": (True, "warning", "repeat", (3, 3)),
    "nan_inf.csv": (True, "warning", "Dropped 3 row(s)", (3, 2)),
    "one_row.csv": (False, "error", "more than one value per feature", None),
    "one_column.csv": (True, None, None, (3, 1)),
    "quoted_newlines.csv": (True, "warning", "Dropped 1 row(s)", (2, 2)),
    "formula_injection.csv": (True, "warning", "non-numeric", (2, 2)),
    "constant_column.csv": (True, "warning", "Constant feature", (3, 2)),
    "ragged_rows.csv": (True, "warning", "number of cells", (2, 2)),
    "stray_text_cell.csv": (True, "warning", "Dropped 1 row(s)", (2, 2)),
}


def test_the_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_file_gets_a_clear_message(name):
    usable, level, phrase, shape = EXPECTED[name]
    parsed = parse_csv((CORPUS / name).read_bytes())
    assert parsed.ok is usable
    if level is not None:
        assert any(i.level == level and phrase in i.text for i in parsed.issues), parsed.issues
    if usable:
        assert parsed.values.shape == shape
        assert np.isfinite(parsed.values).all()
        assert len(parsed.columns) == shape[1]
    else:
        assert parsed.values is None


def test_a_million_rows_are_capped_quickly():
    parsed = parse_csv(b"a,b\n" + b"1,2\n3,5\n" * 500_000)
    assert parsed.ok and parsed.values.shape == (MAX_ROWS, 2)
    assert any(f"first {MAX_ROWS} rows" in i.text for i in parsed.issues)


def test_very_wide_files_are_capped():
    header = ",".join(f"c{k}" for k in range(3000))
    rows = "\n".join(",".join(str(r + k) for k in range(3000)) for r in range(3))
    parsed = parse_csv(f"{header}\n{rows}\n".encode())
    assert parsed.ok and parsed.values.shape == (3, MAX_COLS)
    assert any("of 3000 columns" in i.text for i in parsed.issues)


def test_files_over_the_upload_limit_are_refused():
    parsed = parse_csv(b"1,2\n" * (MAX_UPLOAD_BYTES // 4 + 10))
    assert not parsed.ok and "limit is 5 MB" in parsed.issues[-1].text


def test_headerless_numeric_files_get_generated_names():
    parsed = parse_csv(b"1,2\n3,4\n5,7\n")
    assert parsed.columns == ("f0", "f1")
    np.testing.assert_array_equal(parsed.values, [[1, 2], [3, 4], [5, 7]])


def test_decimal_commas_with_semicolons():
    parsed = parse_csv(b"a;b\n1,5;2\n3;4,25\n")
    np.testing.assert_allclose(parsed.values, [[1.5, 2.0], [3.0, 4.25]])
