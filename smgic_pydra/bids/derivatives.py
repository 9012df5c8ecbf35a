"""Names of every file smgic-pydra writes into OUTPUT_DIR (a BIDS derivatives dataset), in one place.

Per pair (moving M registered to fixed F with method ``<method>``), under the moving subject's
``anat`` folder (``sub-<M>[/ses-<s>]/anat``), with prefix ``sub-<M>[_ses-<s>][_run-<r>]``:

* ``_from-<M>_to-<F>_desc-<method>_mode-image_xfm.nii.gz``: forward warp (on F's grid, brings M
  onto F; ANTs/fMRIPrep "from/to" sense), ``.h5`` the same as an ITK composite, ``.json`` the
  pair's sidecar; ``_from-<M>_to-<F>_desc-<method>affine_xfm.mat``: the method's affine stage
  alone (ITK, only for methods with one; the warps already include it);
* ``_from-<F>_to-<M>_desc-<method>_mode-image_xfm.nii.gz``: inverse warp (on M's grid);
* ``_space-<F>_desc-<method>_T1w.nii.gz`` / ``_dseg.nii.gz``: warped image / labels, each with a
  ``.json`` sidecar (``SpatialReference``, ``SkullStripped``; required by the validator);
* ``_space-<F>_desc-<method>_jacobian.nii.gz``: Jacobian determinant of the forward warp.

Per unordered pair ``{A, B}`` (``A`` the first key in sorted order; ``--outputs compact``), under ``A``'s
``anat`` folder: ``_from-<A>_to-<B>_desc-<method>_mode-velocity_xfm.h5``, the mapping in both
directions (:mod:`smgic_pydra.worldspace.compact`); each ordered pair's ``.json`` sidecar names it.

Quality-control figures (SVG, fMRIPrep style) go to ``sub-<M>[/ses-<s>]/figures`` with the same
names as the outputs they show: per pair ``_space-<F>_desc-<method>_T1w.svg`` (fixed contours over
the moving image before / after), ``_space-<F>_desc-<method>_jacobian.svg`` and
``_from-<M>_to-<F>_desc-<method>_mode-image_xfm.svg`` (displacement and deformation grid); per
subject ``_desc-brain_mask.svg`` (brain mask and network field of view over the T1w).

``<M>``/``<F>`` are entity labels ``sub<label>[ses<label>][run<n>]`` (alphanumeric, as BIDS
requires). ``xfm`` and ``jacobian`` are not in the BIDS 1.11 schema, so the dataset's
``.bidsignore`` lists them, with the reports folder ``reports/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..io.errors import InputError, display_path
from .layout import SubjectInputs, parse_key

PIPELINE_NAME = "smgic-pydra"
BIDS_VERSION = "1.10.0"
BIDSIGNORE = ("*_xfm.*", "*_jacobian.*", "/reports", "**/figures")
MODEL_BIDSIGNORE = ("/*.safetensors", "/*.sha256", "/config.json", "/training.json", "/*.md", "/*.csv", "/*.tsv", "/*.png",
                    "/*.html")
"""A trained model folder (``smgic-bids ... train``) holds no BIDS files besides its description."""
REPORTS_DIR = "reports"


@dataclass(frozen=True)
class ReportPaths:
    """Group reports (layouts in :mod:`smgic_pydra.reports.write`): one row per pair and method
    (``pairs``: CSV, written only while small; ``pairs_parquet``: always); Dice per label (CSV
    while small, Parquet always); mean +- std per method (CSV, TSV); the N x N mean Dice per method
    (``dice_matrix``, TSV); box statistics of the Dice per method and structure (TSV)."""

    pairs: Path
    dice_per_label: Path
    group_summary: Path
    pairs_parquet: Path
    dice_per_label_parquet: Path
    group_summary_tsv: Path
    dice_matrix: Path
    dice_per_structure: Path


def report_paths(output_dir) -> ReportPaths:
    """``OUTPUT_DIR/reports/{pairs.csv, dice_per_label.csv, group_summary.csv, pairs.parquet,
    dice_per_label.parquet, group_summary.tsv, dice_matrix.tsv, dice_per_structure.tsv}``."""
    folder = Path(output_dir) / REPORTS_DIR
    return ReportPaths(folder / "pairs.csv", folder / "dice_per_label.csv", folder / "group_summary.csv",
                       folder / "pairs.parquet", folder / "dice_per_label.parquet", folder / "group_summary.tsv",
                       folder / "dice_matrix.tsv", folder / "dice_per_structure.tsv")


def locks_dir(output_dir) -> Path:
    """``OUTPUT_DIR/reports/locks``: one lock file per subject a participant run is registering."""
    return Path(output_dir) / REPORTS_DIR / "locks"


def participant_records_dir(output_dir) -> Path:
    """``OUTPUT_DIR/reports/participant_runs``: one JSON per participant run listing the tiles it owes
    (methods, output policy, each tile's subjects and pairs), so the group level knows what to expect."""
    return Path(output_dir) / REPORTS_DIR / "participant_runs"


@dataclass(frozen=True)
class PairFigurePaths:
    """Reportlets of one registered pair and method (SVG files in the moving subject's ``figures`` folder)."""

    registration: Path
    jacobian: Path
    displacement: Path

    def as_dict(self) -> dict[str, str]:
        return {"registration": str(self.registration), "jacobian": str(self.jacobian),
                "displacement": str(self.displacement)}


def subject_figures_dir(output_dir, subject) -> Path:
    """``OUTPUT_DIR/sub-<label>[/ses-<label>]/figures``."""
    return subject_anat_dir(output_dir, subject).parent / "figures"


def pair_figure_paths(output_dir, moving, fixed, method: str) -> PairFigurePaths:
    """:class:`PairFigurePaths` of one pair (see the module docstring); moving / fixed as for
    :func:`pair_output_paths`."""
    _check_method(method)
    m, f = entity_label(moving), entity_label(fixed)
    base = subject_figures_dir(output_dir, moving) / file_prefix(moving)
    return PairFigurePaths(registration=Path(f"{base}_space-{f}_desc-{method}_T1w.svg"),
                           jacobian=Path(f"{base}_space-{f}_desc-{method}_jacobian.svg"),
                           displacement=Path(f"{base}_from-{m}_to-{f}_desc-{method}_mode-image_xfm.svg"))


def subject_figure_path(output_dir, subject) -> Path:
    """``figures/<prefix>_desc-brain_mask.svg``: the subject's brain mask and network field of view."""
    return subject_figures_dir(output_dir, subject) / f"{file_prefix(subject)}_desc-brain_mask.svg"


def check_output_dirs(bids_dir, output_dir, work_dir=None) -> None:
    """Refuse an OUTPUT_DIR equal to or inside the raw data of BIDS_DIR (``BIDS_DIR/derivatives/<name>``
    is allowed) and a work directory anywhere inside BIDS_DIR; one-line :class:`InputError`."""
    bids = Path(bids_dir).resolve()
    out = Path(output_dir).resolve()
    if out == bids or (out.is_relative_to(bids) and not out.is_relative_to(bids / "derivatives")):
        problem = f"output folder inside the raw BIDS dataset {bids}; use {bids}/derivatives/<name> or a folder outside"
        raise InputError(display_path(output_dir), problem)
    if out == bids / "derivatives":
        problem = "output folder is the derivatives folder itself; use derivatives/<name>"
        raise InputError(display_path(output_dir), problem)
    if work_dir is not None and Path(work_dir).resolve().is_relative_to(bids):
        raise InputError(display_path(work_dir), f"work folder inside the BIDS dataset {bids}; put it outside")


def check_inside_output(output_dir, paths) -> None:
    """Refuse any of ``paths`` that resolves outside OUTPUT_DIR (through a symbolic link in it), before
    anything is written: one-line :class:`InputError` naming the link. OUTPUT_DIR itself may be a link."""
    out = Path(output_dir).absolute()
    root = out.resolve()
    for path in paths:
        path = Path(path).absolute()
        if path.resolve().is_relative_to(root):
            continue
        inside = [p for p in reversed(path.parents) if p.is_relative_to(out) and p != out] + [path]
        link = next((p for p in inside if p.is_symlink()), path)
        raise InputError(display_path(link), f"symbolic link to {link.resolve()}, outside the output folder "
                         f"{display_path(out)}; outputs are only written inside it: remove the link")


def _entities(subject) -> tuple[str, str | None, int | None]:
    if isinstance(subject, SubjectInputs):
        return subject.subject, subject.session, subject.run
    return parse_key(subject)


def entity_label(subject) -> str:
    """``sub<label>[ses<label>][run<n>]`` for a :class:`SubjectInputs` or a key ``'sub-01_ses-1'``."""
    sub, ses, run = _entities(subject)
    return f"sub{sub}" + (f"ses{ses}" if ses else "") + (f"run{run}" if run is not None else "")


def subject_anat_dir(output_dir, subject) -> Path:
    """``OUTPUT_DIR/sub-<label>[/ses-<label>]/anat``."""
    sub, ses, _ = _entities(subject)
    folder = Path(output_dir) / f"sub-{sub}"
    return (folder / f"ses-{ses}" if ses else folder) / "anat"


def file_prefix(subject) -> str:
    """``sub-<label>[_ses-<label>][_run-<n>]``."""
    sub, ses, run = _entities(subject)
    return f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + (f"_run-{run}" if run is not None else "")


def _check_method(method: str) -> str:
    if not method or not method.isalnum():
        raise ValueError(f"method must be an alphanumeric desc label such as 'smgicnet' or 'syn', got {method!r}")
    return method


def pair_output_paths(output_dir, moving, fixed, method: str, warp_h5: bool = True, labels: bool = True):
    """:class:`~smgic_pydra.worldspace.PairOutputPaths` of one pair (see the module docstring).

    moving / fixed: :class:`SubjectInputs` or keys like ``'sub-02'``; ``warp_h5`` / ``labels``
    False leave those files out (None).
    """
    from ..worldspace import PairOutputPaths

    _check_method(method)
    m, f = entity_label(moving), entity_label(fixed)
    if m == f:
        raise ValueError(f"moving and fixed are the same subject: {m}")
    base = subject_anat_dir(output_dir, moving) / file_prefix(moving)
    xfm = f"_from-{m}_to-{f}_desc-{method}_mode-image_xfm"
    warped = f"_space-{f}_desc-{method}"
    return PairOutputPaths(
        compact=compact_path(output_dir, moving, fixed, method),
        warp=Path(f"{base}{xfm}.nii.gz"),
        inverse_warp=Path(f"{base}_from-{f}_to-{m}_desc-{method}_mode-image_xfm.nii.gz"),
        warped=Path(f"{base}{warped}_T1w.nii.gz"),
        warped_labels=Path(f"{base}{warped}_dseg.nii.gz") if labels else None,
        jacobian=Path(f"{base}{warped}_jacobian.nii.gz"),
        sidecar=Path(f"{base}{xfm}.json"),
        warp_h5=Path(f"{base}{xfm}.h5") if warp_h5 else None,
        affine=Path(f"{base}_from-{m}_to-{f}_desc-{method}affine_xfm.mat"),
    )


def compact_path(output_dir, a, b, method: str) -> Path:
    """The compact mapping file of the unordered pair ``{a, b}`` (see the module docstring)."""
    first, second = sorted((a, b), key=lambda s: s.key if isinstance(s, SubjectInputs) else str(s))
    base = subject_anat_dir(output_dir, first) / file_prefix(first)
    return Path(f"{base}_from-{entity_label(first)}_to-{entity_label(second)}_desc-{_check_method(method)}"
                "_mode-velocity_xfm.h5")


def bids_uri(path, bids_dir) -> str:
    """``bids:raw:<path relative to bids_dir>`` (``raw`` is declared in ``DatasetLinks``)."""
    return f"bids:raw:{Path(path).absolute().relative_to(Path(bids_dir).absolute()).as_posix()}"


def warped_sidecars(
    paths, moving: SubjectInputs, fixed: SubjectInputs, bids_dir, method: str, skull_stripped: bool
) -> dict[Path, dict]:
    """BIDS sidecars of the warped image and labels: ``{json path: content}``, to write beside them.

    ``SpatialReference`` is the fixed T1w and ``Sources`` the moving inputs, as ``bids:raw:`` URIs.
    """
    reference = bids_uri(fixed.t1w, bids_dir)
    sources = [bids_uri(moving.t1w, bids_dir)]
    out = {
        _json_of(paths.warped): {
            "Description": f"{moving.key} T1w resampled onto {fixed.key} ({method})",
            "SpatialReference": reference,
            "SkullStripped": bool(skull_stripped),
            "Sources": sources,
        }
    }
    if paths.warped_labels is not None:
        out[_json_of(paths.warped_labels)] = {
            "Description": f"{moving.key} labels resampled onto {fixed.key} (label-aware, {method})",
            "SpatialReference": reference,
            "Sources": sources,
        }
    return out


def _json_of(image: Path) -> Path:
    name = image.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return image.with_name(name[: -len(ext)] + ".json")
    raise ValueError(f"not a NIfTI file name: {image}")


def dataset_description(
    version: str, weights_sha256: str | None, seed: int | None, bids_dir, code_url: str | None = None,
    name: str = "smgic-pydra registrations",
) -> dict:
    """``dataset_description.json`` content of OUTPUT_DIR (``DatasetType: derivative``).

    ``GeneratedBy[0]`` names smgic-pydra with its version, the model weights' SHA-256
    (``ModelWeightsSHA256``) and the random seed (``RandomSeed``); ``DatasetLinks.raw`` is the
    raw dataset (as a ``file://`` URI), used by the ``bids:raw:`` URIs in sidecars.
    """
    generated = {"Name": PIPELINE_NAME, "Version": version}
    if code_url:
        generated["CodeURL"] = code_url
    generated["ModelWeightsSHA256"] = weights_sha256
    generated["RandomSeed"] = seed
    return {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": Path(bids_dir).absolute().as_uri()}],
        "DatasetLinks": {"raw": Path(bids_dir).absolute().as_uri()},
    }


def write_dataset_description(
    output_dir, version: str, weights_sha256: str | None, seed: int | None, bids_dir, code_url: str | None = None,
    name: str = "smgic-pydra registrations", ignore=BIDSIGNORE,
) -> Path:
    """Write ``dataset_description.json`` (named ``name``) and ``.bidsignore`` (``ignore``) into
    ``output_dir`` (atomically).

    Idempotent, so parallel participant jobs may all call it; an existing description from a
    different version, model or seed is refused (:class:`InputError`), so runs are never mixed.
    """
    from ..io.atomic import atomic_path, save_json

    output_dir = Path(output_dir)
    desc = dataset_description(version, weights_sha256, seed, bids_dir, code_url, name)
    path = output_dir / "dataset_description.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(display_path(path), f"not readable JSON ({exc})") from exc
        if old.get("GeneratedBy") != desc["GeneratedBy"]:
            raise InputError(
                display_path(path),
                "written by another smgic-pydra version, model or seed; use a new output folder",
            )
    save_json(desc, path)
    with atomic_path(output_dir / ".bidsignore") as tmp:
        tmp.write_text("\n".join(ignore) + "\n")
    return path
