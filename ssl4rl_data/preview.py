"""A contact sheet of built rows: each row's images side by side, with its task and answer."""

import io
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from .errors import UserError

CELL = 160
LABEL_HEIGHT = 24
MAX_IMAGES_SHOWN = 9


def save_contact_sheet(dataset: Path, rows: int, out: Path) -> None:
    """Draw the sheet and write it to `out` (its format from the extension); one-line errors."""
    out = Path(out)
    if out.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"--out {out}: unknown image extension {out.suffix or '(none)'!r}; use .png or .jpg")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    sheet = contact_sheet(dataset, rows)
    try:
        sheet.save(out)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}") from None


def contact_sheet(dataset: Path, rows: int = 8) -> Image.Image:
    if rows < 1:
        raise UserError(f"--rows must be at least 1, got {rows}")
    files = sorted(Path(dataset).glob("data/*.parquet"))
    if not files:
        raise UserError(f"{dataset} has no data/*.parquet; is it a folder written by `ssl4rl-data build`?")
    picked = []
    for file in files:
        table = pq.read_table(file, columns=["images", "answer", "task"])
        picked += table.slice(0, rows - len(picked)).to_pylist()
        if len(picked) == rows:
            break
    width = CELL * min(MAX_IMAGES_SHOWN, max(len(r["images"]) for r in picked))
    sheet = Image.new("RGB", (width, len(picked) * (CELL + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, row in enumerate(picked):
        top = index * (CELL + LABEL_HEIGHT)
        draw.text((4, top + 6), f"{row['task']}  answer: {row['answer']}", fill="black")
        for column, image in enumerate(row["images"][:MAX_IMAGES_SHOWN]):
            thumb = Image.open(io.BytesIO(image["bytes"])).convert("RGB")
            thumb.thumbnail((CELL - 4, CELL - 4))
            sheet.paste(thumb, (column * CELL + 2, top + LABEL_HEIGHT + 2))
    return sheet
