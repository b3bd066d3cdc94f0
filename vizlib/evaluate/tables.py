"""Result tables: rows of numbers that show as an HTML table in a notebook, as text elsewhere.

:class:`ResultsTable` is the one table of the book: the chapters' comparisons of models,
the segmentation summary and the run records (:class:`vizlib.records.RecordsTable` is one)
all render through it, so they look alike and escape their text the same way.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["ResultsTable"]

_STYLE = (
    "<style>.vizlib-table th, .vizlib-table td {padding: 2px 10px; text-align: left; "
    "white-space: nowrap}</style>"
)


class ResultsTable:
    """Rows of results that show as an HTML table in a notebook and as text elsewhere.

    Args:
        rows (sequence of dict): one dict per row; the columns are every key that any row
            has, in the order they first appear. Numbers are formatted with
            ``formats[key]`` (a format spec such as ``".3f"``), anything else with ``str``.
            A missing value shows empty.
        formats (dict, optional): format spec per column.
        empty (str): what an empty table shows.

    Subclasses may override :meth:`cell_html` to mark up a cell (e.g. a link).
    """

    def __init__(
        self, rows: Sequence[dict], formats: dict | None = None, *, empty: str = "(no rows)"
    ):
        if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Sequence):
            raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(
                    f"rows[{i}] must be a dict (column -> value), got {type(row).__name__}"
                )
        if formats is not None and not isinstance(formats, dict):
            raise ValueError(
                f"formats must be a dict (column -> format spec), got {type(formats).__name__}"
            )
        if not isinstance(empty, str):
            raise ValueError(f"empty must be a string, got {type(empty).__name__}")
        self.rows = [dict(r) for r in rows]
        # every column that any row has, in the order they first appear
        self.columns = list(dict.fromkeys(k for r in self.rows for k in r))
        self.formats = dict(formats or {})
        self.empty = empty
        for key, spec in self.formats.items():
            if not isinstance(spec, str):
                raise ValueError(f"formats[{key!r}] must be a format spec like '.3f', got {spec!r}")
            try:
                format(1.5, spec)
            except ValueError:
                raise ValueError(
                    f"formats[{key!r}] = {spec!r} is not a format spec for numbers"
                ) from None

    def cell(self, key: str, value) -> str:
        """The text of one cell: ``value`` formatted with the column's spec (numbers only)."""
        spec = self.formats.get(key)
        if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return str(value)

    def cell_html(self, key: str, text: str) -> str:
        """The HTML of one cell's ``text`` (escaped); override to add markup."""
        return html.escape(text)

    def __len__(self) -> int:
        return len(self.rows)

    def _texts(self) -> list[list[str]]:
        return [[self.cell(k, r.get(k, "")) for k in self.columns] for r in self.rows]

    def __str__(self) -> str:
        if not self.rows:
            return self.empty
        cells = self._texts()
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.empty)}</p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{self.cell_html(k, v)}</td>" for k, v in zip(self.columns, row, strict=True)
            )
            + "</tr>"
            for row in self._texts()
        )
        return f'{_STYLE}<table class="vizlib-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
