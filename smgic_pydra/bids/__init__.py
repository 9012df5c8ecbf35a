"""BIDS indexing, subject discovery, derivatives naming, pair strategies, validation and example data."""

from .derivatives import (
    ReportPaths,
    bids_uri,
    check_output_dirs,
    dataset_description,
    entity_label,
    file_prefix,
    pair_output_paths,
    report_paths,
    subject_anat_dir,
    warped_sidecars,
    write_dataset_description,
)
from .layout import SubjectInputs, collect_subjects, load_bids_filters, parse_key
from .pairs import (
    Pair,
    all_ordered_pairs,
    all_unordered_pairs,
    tile_pairs,
    tile_side,
    make_pairs,
    read_pairs_tsv,
    to_reference_pairs,
)
from .validation import ValidationIssue, check_dataset, validate_dataset

__all__ = [
    "Pair",
    "ReportPaths",
    "SubjectInputs",
    "ValidationIssue",
    "all_ordered_pairs",
    "all_unordered_pairs",
    "bids_uri",
    "check_dataset",
    "check_output_dirs",
    "tile_pairs",
    "tile_side",
    "collect_subjects",
    "dataset_description",
    "entity_label",
    "file_prefix",
    "load_bids_filters",
    "make_pairs",
    "pair_output_paths",
    "parse_key",
    "read_pairs_tsv",
    "report_paths",
    "subject_anat_dir",
    "to_reference_pairs",
    "validate_dataset",
    "warped_sidecars",
    "write_dataset_description",
]
