"""Report tables as CSV (one table, UTF-8 with BOM so Excel reads the Chinese) and XLSX (one sheet
per table, rates as percentages, seconds with one decimal). Empty figures stay empty cells."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font

from gateway.reports.tables import Column, Table, Value

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NUMBER_FORMATS = {"rate": "0.0%", "seconds": "0.0", "number": "0.00", "int": "0"}


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.label for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(c.key) is None else _cell(c, row[c.key]) for c in table.columns])
    return "\ufeff".encode() + out.getvalue().encode()


def _cell(column: Column, value: Value) -> Value:
    # A text column holds what people typed (a department, a line title): never let Excel run it.
    if column.kind == "text" and isinstance(value, str) and value.startswith(("=", "+", "-", "@")):
        return "'" + value
    return value


def to_xlsx(tables: list[Table]) -> bytes:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for table in tables:
        sheet = book.create_sheet(table.title[:31])  # Excel's limit on sheet names
        sheet.append([c.label for c in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_cell(c, row.get(c.key)) for c in table.columns])
        for index, column in enumerate(table.columns, start=1):
            letter = sheet.cell(row=1, column=index).column_letter
            sheet.column_dimensions[letter].width = max(10, len(column.label) * 2)
            if column.kind in NUMBER_FORMATS:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = NUMBER_FORMATS[column.kind]
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
