"""Write the cohort reports atomically into ``OUTPUT_DIR/reports`` (names from :mod:`smgic_pydra.bids.derivatives`).

Files (Dice in [0, 1]; other units in :mod:`.tables`):

* ``pairs.parquet``: one row per pair and method, columns :data:`~.tables.PAIR_COLUMNS`, sorted by
  method, fixed, moving; ``pairs.csv`` the same while it has at most :data:`CSV_MAX_ROWS` rows
  (pyarrow's CSV: strings quoted, numbers to full precision, missing values empty).
* ``dice_per_label.parquet``: one row per pair, method and label, columns
  :data:`~.tables.LABEL_COLUMNS` (string columns dictionary-encoded), in the order of the label
  tables given (streamed: never all in memory); ``dice_per_label.csv`` the same while it has at
  most :data:`CSV_MAX_ROWS` rows (decided from the Parquet file's row count, then copied from it
  batch by batch, pyarrow's CSV as ``pairs.csv``).
* ``group_summary.csv`` / ``.tsv``: mean +- std per method (:func:`~.tables.summary_frame`).
* ``dice_matrix.tsv``: the mean Dice (``dice_mean``) of every ordered pair, one block of rows per
  method (methods sorted): columns ``method``, ``fixed``, then one column per subject key (all the
  subjects of the table, sorted), holding the Dice of the pair with that row's fixed subject and
  that column's moving subject; empty where the pair was not run or failed. N subjects and M
  methods: M x N rows, N + 2 columns.
* ``dice_per_structure.tsv``: count, mean, std, min, quartiles, max, whiskers and outlier count of
  the Dice per method and label (:mod:`.structure_stats`: exact up to :data:`~.structure_stats.EXACT_VALUES`
  values per structure, else from a histogram with 0.001 Dice bins).

A CSV above the limit is not written (one log line) and an older one of that name is removed, so
no file disagrees with the Parquet tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from ..io.atomic import atomic_path
from .structure_stats import STRUCTURE_COLUMNS, StructureStats
from .tables import labels_frame, ordered_dice_matrix, pairs_frame, subject_keys, summary_frame

logger = logging.getLogger("smgic_pydra.reports")

CSV_MAX_ROWS = 1_000_000
"""Largest ``pairs.csv`` / ``dice_per_label.csv`` written, in rows (about 50-100 MB); the Parquet
tables are always written."""
CSV_BATCH_ROWS = 200_000
"""Rows per batch when ``dice_per_label.csv`` is copied from the Parquet table."""
COMPRESSION = "zstd"


def _write_table(frame, path: Path, sep: str) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, float_format="%.6g")


def report_files(output_dir) -> dict[str, Path]:
    """Report role -> path: ``pairs``, ``dice_per_label`` (the CSVs), ``pairs_parquet``,
    ``dice_per_label_parquet``, ``summary_csv``, ``summary_tsv``, ``dice_matrix``, ``dice_per_structure``."""
    from ..bids.derivatives import report_paths

    paths = report_paths(output_dir)
    return {"pairs": paths.pairs, "dice_per_label": paths.dice_per_label, "pairs_parquet": paths.pairs_parquet,
            "dice_per_label_parquet": paths.dice_per_label_parquet, "summary_csv": paths.group_summary,
            "summary_tsv": paths.group_summary_tsv, "dice_matrix": paths.dice_matrix,
            "dice_per_structure": paths.dice_per_structure}


def label_tables(label_parts) -> Iterator:
    """Arrow tables of :func:`~.tiles.label_schema` from ``label_parts``: an iterable of Arrow
    tables or DataFrames (consumed once), or a list of label-row dicts (one table, sorted)."""
    from .tiles import conform, label_schema

    schema = label_schema()
    if isinstance(label_parts, list) and (not label_parts or isinstance(label_parts[0], dict)):
        yield conform(labels_frame(label_parts), schema)
        return
    for part in label_parts:
        yield conform(part, schema)


def _stream_labels(tables: Iterable, path: Path) -> tuple[StructureStats, int]:
    """Write ``tables`` into one Parquet file atomically, accumulating the per-structure statistics;
    returns them and the row count."""
    import pyarrow.parquet as pq

    from .tiles import label_schema

    stats, rows = StructureStats(), 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, label_schema(), compression=COMPRESSION) as writer:
        for table in tables:
            writer.write_table(table)
            stats.add(table)
            rows += table.num_rows
    return stats, rows


def _csv_if_small(rows: int, path: Path, write) -> bool:
    """Call ``write(tmp)`` into ``path`` atomically when ``rows <= CSV_MAX_ROWS``; else remove an
    older ``path`` and log it. Returns whether the CSV was written."""
    if rows <= CSV_MAX_ROWS:
        with atomic_path(path) as tmp:
            write(tmp)
        return True
    path.unlink(missing_ok=True)
    logger.warning("%s not written: %d rows > %d (CSV_MAX_ROWS); the table is in %s", path.name, rows,
                   CSV_MAX_ROWS, path.with_suffix(".parquet").name)
    return False


def _copy_parquet_to_csv(parquet: Path, csv: Path) -> None:
    """The Parquet table as CSV, batch by batch (bounded memory)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    source = pq.ParquetFile(parquet)
    with pcsv.CSVWriter(csv, source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=CSV_BATCH_ROWS):
            writer.write_batch(batch)


def dice_matrix_table(pairs: pd.DataFrame):
    """The ``dice_matrix.tsv`` table (layout in the module docstring) as an Arrow table."""
    import numpy as np
    import pyarrow as pa

    subjects = subject_keys(pairs)
    methods = sorted(pairs["method"].unique())
    values = np.concatenate([ordered_dice_matrix(pairs, m, subjects) for m in methods] or [np.zeros((0, len(subjects)))])
    columns = [pa.array(np.repeat(methods, len(subjects)).astype(str)), pa.array(np.tile(subjects, len(methods)).astype(str))]
    columns += [pa.array(values[:, j], from_pandas=True) for j in range(len(subjects))]
    return pa.table(columns, names=["method", "fixed", *subjects])


def _write_tsv(table, path: Path) -> None:
    """An Arrow table as TSV without quotes (its strings must hold no tab, quote or newline), NaN empty."""
    import pyarrow.csv as pcsv

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            out.write(("\t".join(table.column_names) + "\n").encode())
            pcsv.write_csv(table, out, pcsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))


def write_reports(pairs, label_parts, output_dir, html: bool = True) -> dict[str, Path]:
    """Write the report tables (module docstring) into ``output_dir/reports`` and with ``html`` the
    group report ``index.html`` (:mod:`.group_page`, needs the ``reports`` extra).

    ``pairs``: a DataFrame with :data:`~.tables.PAIR_COLUMNS` (extra columns ignored) or a list of
    row dicts. ``label_parts``: see :func:`label_tables`; read once, one part at a time.

    Returns report role -> path of the files written (``index`` for the page; ``pairs`` and
    ``dice_per_label``, the CSVs, only when written). Failed pairs keep their row with the error
    text and are left out of the summary statistics (counted in ``n_failed``).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    paths = report_files(output_dir)
    # labels first: a damaged label table stops the run before any report is replaced
    stats, label_rows = _stream_labels(label_tables(label_parts), paths["dice_per_label_parquet"])
    pairs = pairs_frame(pairs)
    pairs_table = pa.Table.from_pandas(pairs, preserve_index=False).replace_schema_metadata()
    with atomic_path(paths["pairs_parquet"]) as tmp:
        pq.write_table(pairs_table, tmp, compression=COMPRESSION)
    written = {role: paths[role] for role in ("pairs_parquet", "dice_per_label_parquet", "summary_csv", "summary_tsv",
                                              "dice_matrix", "dice_per_structure")}
    if _csv_if_small(len(pairs), paths["pairs"], lambda tmp: pcsv.write_csv(pairs_table, tmp)):
        written["pairs"] = paths["pairs"]
    if _csv_if_small(label_rows, paths["dice_per_label"],
                     lambda tmp: _copy_parquet_to_csv(paths["dice_per_label_parquet"], tmp)):
        written["dice_per_label"] = paths["dice_per_label"]
    summary = summary_frame(pairs)
    _write_table(summary, paths["summary_csv"], ",")
    _write_table(summary, paths["summary_tsv"], "\t")
    _write_tsv(dice_matrix_table(pairs), paths["dice_matrix"])
    structures = stats.frame()
    _write_table(structures[STRUCTURE_COLUMNS], paths["dice_per_structure"], "\t")
    if html:
        try:
            import jinja2  # noqa: F401
            import matplotlib  # noqa: F401

            from .group_page import write_group_page
        except ImportError as exc:  # the tables stand without the optional page
            logger.warning("reports/index.html not written: %s (install smgic-pydra[reports])", exc)
        else:
            written["index"] = write_group_page(pairs, structures, summary, output_dir, tables=written)
    return written
