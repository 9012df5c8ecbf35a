"""Label lookup tables (TSV with columns ``index`` and ``name``) that choose the labels evaluated by Dice.

The default table, ``data/labels/freesurfer_aseg36.tsv``, holds the 36 FreeSurfer aseg labels of
the design note with their FreeSurferColorLUT names (FreeSurfer 7 spelling, e.g. ``Left-Thalamus``;
older LUTs call it ``Left-Thalamus-Proper``). Any other table with the same two columns (an
atlas's, for example) is accepted; extra columns are ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..io.errors import InputError, display_path

DEFAULT_LABEL_TABLE = Path(__file__).resolve().parents[1] / "data" / "labels" / "freesurfer_aseg36.tsv"
REQUIRED_COLUMNS = ("index", "name")


def load_label_table(path=None) -> dict[int, str]:
    """``{label value: name}`` in file order, from a tab-separated table (default: the 36 aseg labels).

    Raises :class:`InputError` (one line naming the file) when the file is missing or unreadable,
    lacks the ``index``/``name`` columns, has no rows, or has an index that is not a positive
    integer, a duplicate index or an empty name.
    """
    path = DEFAULT_LABEL_TABLE if path is None else Path(path)
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a UTF-8 BOM is not part of the header
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(shown, f"cannot read the label table ({exc.strerror or exc})") from exc
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(shown, f"label table needs tab-separated columns 'index' and 'name', missing {missing}")
    table: dict[int, str] = {}
    for line, row in enumerate(reader, start=2):
        raw, name = (row.get("index") or "").strip(), (row.get("name") or "").strip()
        try:
            value = int(raw)
        except ValueError:
            raise InputError(shown, f"line {line}: index {raw!r} is not an integer") from None
        if value <= 0:
            raise InputError(shown, f"line {line}: index {value} must be a positive label value (0 is background)")
        if not name:
            raise InputError(shown, f"line {line}: empty name for index {value}")
        if value in table:
            raise InputError(shown, f"line {line}: duplicate index {value}")
        table[value] = name
    if not table:
        raise InputError(shown, "label table has no rows")
    return table
