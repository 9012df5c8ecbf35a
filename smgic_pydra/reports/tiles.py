"""Tile result files: the rows of one tile job of the pair matrix (one method, up to B x B pairs).

Each tile job writes two Parquet files (pyarrow, zstd) atomically and together
(:func:`write_tile_tables`), under ``OUTPUT_DIR/reports/tiles/<method>/``:

* ``<tile_id>_pairs.parquet``: one row per pair, columns :data:`~.tables.PAIR_COLUMNS` then
  ``content_sha256`` (string, ``""`` when unknown) and ``resumed`` (bool); missing metrics are NaN,
  a missing ``error`` is ``""``;
* ``<tile_id>_labels.parquet``: one row per pair and label, columns :data:`~.tables.LABEL_COLUMNS`
  (``label`` int32, ``dice`` float64; the string columns dictionary-encoded);
* ``<tile_id>_tables.json``: the SHA-256 and size of both, written with them (so a table edited or
  damaged afterwards is told from the one the tile job wrote).

The group level reads them back with :func:`read_pairs_tables` (one DataFrame) and
:func:`iter_label_tables` (one tile at a time, so memory does not grow with the cohort); both check
each file against its record first (:func:`check_tile_table`). A damaged, edited or unreadable file,
or one without its record, raises a one-line :class:`~smgic_pydra.io.errors.InputError` naming it
and the reason (a missing one ``FileNotFoundError``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..bids.derivatives import REPORTS_DIR
from ..io.atomic import atomic_paths
from ..io.errors import InputError, display_path
from .tables import LABEL_COLUMNS, PAIR_COLUMNS

TILE_PAIR_COLUMNS = [*PAIR_COLUMNS, "content_sha256", "resumed"]
"""Columns of a tile's pairs table, in order."""
ADDED_COLUMNS = ("labels_lost",)
"""Float columns that tables of earlier versions lack: read as NaN (not counted)."""
_PAIR_STRINGS = ("method", "fixed", "moving", "error", "content_sha256")
_LABEL_STRINGS = ("method", "fixed", "moving", "name")
COMPRESSION = "zstd"


@dataclass(frozen=True)
class TileFiles:
    """The result files of one tile job: its two tables and their checksum record."""

    pairs: Path
    labels: Path

    @property
    def record(self) -> Path:
        return table_record_path(self.pairs)


def table_record_path(table) -> Path:
    """``<tile_id>_tables.json`` beside a tile's ``<tile_id>_pairs.parquet`` or ``<tile_id>_labels.parquet``."""
    table = Path(table)
    stem = table.name.removesuffix(".parquet").rsplit("_", 1)[0]
    return table.with_name(f"{stem}_tables.json")


def _role(table) -> str:
    return Path(table).name.removesuffix(".parquet").rsplit("_", 1)[-1]


def check_tile_table(table, data: bytes | None = None) -> bytes:
    """The bytes of tile table ``table`` after checking them against its record (SHA-256 and size); a missing
    table is ``FileNotFoundError``, a missing record or a mismatch a one-line ``InputError`` saying so."""
    table = Path(table)
    data = table.read_bytes() if data is None else data
    record_path = table_record_path(table)
    try:
        expected = json.loads(record_path.read_text())[_role(table)]
    except FileNotFoundError:
        raise InputError(display_path(table), f"tile table without its checksum record {record_path.name} (written "
                         "by another version, or the record was deleted): run the participant level again") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(display_path(record_path), f"unreadable tile checksum record ({type(exc).__name__})") from None
    if len(data) != expected.get("size") or hashlib.sha256(data).hexdigest() != expected.get("sha256"):
        raise InputError(display_path(table), f"tile table changed since its tile job wrote it (SHA-256 differs from "
                         f"{record_path.name}): edited or damaged; run the participant level again")
    return data


def tiles_dir(output_dir) -> Path:
    """``OUTPUT_DIR/reports/tiles``."""
    return Path(output_dir) / REPORTS_DIR / "tiles"


def tile_files(output_dir, method: str, tile_id: str) -> TileFiles:
    """``OUTPUT_DIR/reports/tiles/<method>/<tile_id>_{pairs,labels}.parquet``."""
    folder = tiles_dir(output_dir) / method
    return TileFiles(folder / f"{tile_id}_pairs.parquet", folder / f"{tile_id}_labels.parquet")


def _dictionary():
    import pyarrow as pa

    return pa.dictionary(pa.int32(), pa.string())


def pair_schema():
    """Arrow schema of a tile's pairs table (string columns dictionary-encoded)."""
    import pyarrow as pa

    types = {c: _dictionary() for c in _PAIR_STRINGS} | {"resumed": pa.bool_()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in TILE_PAIR_COLUMNS])


def label_schema():
    """Arrow schema of a labels table (tile files and ``dice_per_label.parquet``)."""
    import pyarrow as pa

    types = {c: _dictionary() for c in _LABEL_STRINGS} | {"label": pa.int32(), "dice": pa.float64()}
    return pa.schema([(c, types[c]) for c in LABEL_COLUMNS])


def _float(value) -> float:
    return math.nan if value is None or value == "" else float(value)


def _column(values: list, field):
    """One Arrow column of ``field``'s type from Python values (strings dictionary-encoded)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(field.type):
        return pc.dictionary_encode(pa.array(["" if v is None else str(v) for v in values], pa.string()))
    if pa.types.is_boolean(field.type):
        return pa.array([bool(v) for v in values], pa.bool_())
    if pa.types.is_integer(field.type):
        return pa.array([int(v) for v in values], field.type)
    return pa.array([_float(v) for v in values], pa.float64())


def rows_table(rows: list[dict], schema):
    """An Arrow table of ``schema`` from row dicts (missing strings ``""``, numbers NaN, bools False)."""
    import pyarrow as pa

    return pa.Table.from_arrays([_column([row.get(f.name) for row in rows], f) for f in schema],
                                schema=schema)


def conform(table, schema, source=""):
    """``table`` (Arrow or pandas) with exactly the columns of ``schema``, cast to its types (string
    columns dictionary-encoded, missing strings ``""``, a missing :data:`ADDED_COLUMNS` column NaN);
    ``InputError`` naming ``source`` when another column is missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    missing = [f.name for f in schema if f.name not in table.column_names and f.name not in ADDED_COLUMNS]
    if missing:
        raise InputError(source or "table", f"missing columns {', '.join(missing)}")
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.array([math.nan] * table.num_rows, pa.float64()))
            continue
        column = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            if not column.type.equals(field.type) or column.null_count:
                column = pc.dictionary_encode(pc.fill_null(column.cast(pa.string()), ""))
        elif not column.type.equals(field.type):
            column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def write_tile_tables(rows, label_rows, files: TileFiles) -> None:
    """Write a tile's pair rows and label rows (see the module docstring) atomically, both or neither.

    ``rows`` / ``label_rows``: lists of row dicts (missing values filled), or DataFrames / Arrow
    tables holding every column.
    """
    import pyarrow.parquet as pq

    pairs, labels = (rows_table(r, schema) if isinstance(r, list) else conform(r, schema)
                     for r, schema in ((rows, pair_schema()), (label_rows, label_schema())))
    with atomic_paths([files.pairs, files.labels, files.record]) as (pairs_tmp, labels_tmp, record_tmp):
        pq.write_table(pairs, pairs_tmp, compression=COMPRESSION)
        pq.write_table(labels, labels_tmp, compression=COMPRESSION)
        record = {}
        for final, tmp in ((files.pairs, pairs_tmp), (files.labels, labels_tmp)):
            data = Path(tmp).read_bytes()
            record[_role(final)] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        Path(record_tmp).write_text(json.dumps(record, indent=1))


def read_table(path, schema):
    """One tile table conformed to ``schema``, checked against its record first (:func:`check_tile_table`); a
    changed or damaged file or a missing column is a one-line ``InputError``, a missing file
    ``FileNotFoundError``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = check_tile_table(path)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(display_path(path), f"unreadable Parquet file ({exc})") from None
    return conform(table, schema, display_path(path))


def read_pairs_tables(paths: Iterable) -> pd.DataFrame:
    """The pairs tables of ``paths`` concatenated (in the given order) into one DataFrame with the
    columns :data:`TILE_PAIR_COLUMNS` (strings as ``str``, metrics float64, ``resumed`` bool)."""
    import pyarrow as pa

    schema = pair_schema()
    plain = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema])
    tables = [read_table(path, schema).cast(plain) for path in paths]
    return (pa.concat_tables(tables) if tables else plain.empty_table()).to_pandas()


def iter_label_tables(paths: Iterable) -> Iterator:
    """The labels table of each file of ``paths`` (Arrow, :func:`label_schema`), one file at a time."""
    schema = label_schema()
    for path in paths:
        yield read_table(path, schema)
