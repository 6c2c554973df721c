"""The one exception for bad trace input, carrying where the problem is."""

from __future__ import annotations


class TraceError(ValueError):
    """A trace file (or a trace option) that cannot be used as given.

    ``str(e)`` names the file, the 1-based data row and the column when known, and says what was
    expected, so a user can open the file at the right line and fix it. The same facts are
    attributes for programs: ``file``, ``row`` (1-based data row; the header is row 0, so data
    row ``r`` is file line ``r + 1``) and ``column`` (the column name as written in the file).
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.column = column
        self.detail = message
        where = [self.file]
        if row is not None:
            where.append(f"row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")
