"""vizlib.evaluate.ResultsTable: text and HTML (escaped), formats, empty tables, bad input."""

from __future__ import annotations

import pytest

from vizlib.evaluate import ResultsTable


def test_results_table_text_and_html():
    table = ResultsTable(
        [
            {"model": "FCN-8s", "mIoU": 0.61234, "parameters": 1234567},
            {"model": "<b>", "mIoU": 0.5, "extra": True},
        ],
        {"mIoU": ".3f", "parameters": ","},
    )
    assert len(table) == 2 and table.columns == ["model", "mIoU", "parameters", "extra"]
    lines = str(table).splitlines()
    assert lines[0].split() == ["model", "mIoU", "parameters", "extra"]
    assert lines[1].split() == ["FCN-8s", "0.612", "1,234,567"]  # a missing value is empty
    assert lines[2].split() == ["<b>", "0.500", "True"]  # bools are not numbers to format
    html = table._repr_html_()
    assert "<td>0.612</td>" in html and "<td>&lt;b&gt;</td>" in html and "<b>" not in html
    assert html.count("<tr>") == 3


def test_results_table_empty():
    assert str(ResultsTable([])) == "(no rows)"
    assert "no rows" in ResultsTable([])._repr_html_()


@pytest.mark.parametrize(
    "rows, formats, word",
    [
        ({"model": "a"}, None, "rows"),
        ("abc", None, "rows"),
        ([{"a": 1}, ["b", 2]], None, r"rows\[1\]"),
        ([{"a": 1}], [".3f"], "formats"),
        ([{"a": 1}], {"a": 3}, "formats"),
        ([{"a": 1}], {"a": "q"}, "formats"),
    ],
)
def test_results_table_bad_input(rows, formats, word):
    with pytest.raises(ValueError, match=word):
        ResultsTable(rows, formats)
