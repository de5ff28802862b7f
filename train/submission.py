"""The MMBench test-split submission file: the test rows with a `prediction` column, as the official
evaluation server (and VLMEvalKit's `*_MMBench_TEST_EN.xlsx`) lays it out. Written as .xlsx (a minimal
SpreadsheetML workbook, no openpyxl needed) and as .tsv."""

import csv
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "category", "prediction"]
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def submission_rows(records: list[dict]) -> list[list[str]]:
    """One row per MMBench record without a gold answer; `prediction` is the extracted letter, or the
    raw output where none was found (the server applies its own matching to it)."""
    rows = []
    for r in records:
        if r["benchmark"] == "mmbench" and not r["answer"]:
            options = r["options"]
            rows.append(
                [
                    r["id"],
                    r["question"],
                    r.get("hint", ""),
                    *(options.get(k, "") for k in "ABCD"),
                    r.get("category") or "",
                    r.get("extracted") or r["output"],
                ]
            )
    return rows


def write_submission(records: list[dict], out: Path) -> dict | None:
    rows = submission_rows(records)
    if not rows:
        return None
    xlsx, tsv = out / "mmbench_submission.xlsx", out / "mmbench_submission.tsv"
    write_xlsx(xlsx, COLUMNS, rows)
    with open(tsv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return {"file": xlsx.name, "tsv": tsv.name, "rows": len(rows)}


def _column(number: int) -> str:
    name = ""
    while number >= 0:
        name, number = chr(65 + number % 26) + name, number // 26 - 1
    return name


def write_xlsx(path: Path, header: list[str], rows: list[list]):
    """One sheet of inline strings (integers stay numbers)."""

    def cell(r, c, value):
        ref = f"{_column(c)}{r + 1}"
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and c == 0):
            return f'<c r="{ref}"><v>{int(value)}</v></c>'
        text = escape(ILLEGAL_XML.sub("", str(value)))
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'

    body = "".join(
        f'<row r="{r + 1}">' + "".join(cell(r, c, v) for c, v in enumerate(values)) + "</row>"
        for r, values in enumerate([header, *rows])
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{body}</sheetData></worksheet>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)
