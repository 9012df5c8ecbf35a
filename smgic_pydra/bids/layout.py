"""Find each subject's T1w (raw BIDS) and its brain mask / labels (derivatives), indexed with bids2table.

Derivative sources, in priority order: BIDS derivatives datasets (``derivatives/*`` with a
``dataset_description.json``, or the folders passed in ``derivatives``) with sMRIPrep/fMRIPrep
naming (``desc-brain_mask``, ``desc-aseg_dseg`` or ``dseg``, ``desc-preproc_T1w``), then
FreeSurfer (``derivatives/freesurfer/sub-<label>[_ses-<label>]/mri/{norm,brainmask,aseg}.mgz``).
The mask, labels and preprocessed T1w of a subject all come from ONE source (the first with a brain
mask; without any mask, the first with labels, so a whole-head run still scores Dice), so they share a grid: the preprocessed T1w's grid when set (FreeSurfer's conformed grid for
FreeSurfer), else the raw T1w's grid. Every problem raises
:class:`~smgic_pydra.io.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io.errors import InputError, InputErrors, display_path
from ..io.json_file import read_json

IMAGE_EXTS = (".nii.gz", ".nii")
FILTER_ENTITIES = {
    "subject": "sub", "session": "ses", "run": "run", "acquisition": "acq", "reconstruction": "rec",
    "ceagent": "ce", "part": "part", "echo": "echo", "inversion": "inv", "space": "space",
    "desc": "desc", "description": "desc", "datatype": "datatype", "suffix": "suffix", "extension": "ext",
}
"""pybids entity names used in fMRIPrep ``--bids-filter-file`` JSON -> bids2table columns."""
FREESURFER_FILES = {"preproc_t1w": "norm.mgz", "mask": "brainmask.mgz", "labels": "aseg.mgz"}


@dataclass(frozen=True)
class SubjectInputs:
    """The inputs of one subject (session, run).

    subject/session: labels without ``sub-``/``ses-`` (session None when the dataset has none);
    run: int or None. t1w: raw T1w. mask / labels / preproc_t1w: from the derivative ``source``
    (None when absent); freesurfer_dir: the subject's FreeSurfer folder when one exists.
    source: name of the derivatives dataset that gave mask/labels (``"freesurfer"`` for FreeSurfer,
    ``"raw"`` when none did).
    """

    subject: str
    session: str | None
    run: int | None
    t1w: Path
    mask: Path | None = None
    labels: Path | None = None
    preproc_t1w: Path | None = None
    freesurfer_dir: Path | None = None
    source: str = "raw"

    @property
    def key(self) -> str:
        """``sub-<label>[_ses-<label>][_run-<n>]``: unique within one query, used by pair strategies."""
        parts = [f"sub-{self.subject}"]
        if self.session is not None:
            parts.append(f"ses-{self.session}")
        if self.run is not None:
            parts.append(f"run-{self.run}")
        return "_".join(parts)

    def as_dict(self) -> dict:
        """JSON-ready dict (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def parse_key(key: str) -> tuple[str, str | None, int | None]:
    """``'sub-01_ses-1_run-2'`` (see :attr:`SubjectInputs.key`) -> ``('01', '1', 2)``; ``sub-`` optional."""
    subject, session, run = None, None, None
    for i, part in enumerate(str(key).strip().split("_")):
        if part.startswith("ses-") and session is None:
            session = part[4:]
        elif part.startswith("run-") and run is None and part[4:].isdigit():
            run = int(part[4:])
        elif i == 0:
            subject = strip_prefix(part, "sub-")
        else:
            subject = None
            break
    if not subject or not subject.isalnum() or (session is not None and not session.isalnum()):
        raise ValueError(f"not a subject key like 'sub-01' or 'sub-01_ses-1': {key!r}")
    return subject, session, run


def strip_prefix(label, prefix: str) -> str:
    """``'sub-01'`` or ``'01'`` -> ``'01'`` (for ``prefix='sub-'``)."""
    label = str(label).strip()
    return label[len(prefix):] if label.startswith(prefix) else label


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return [str(value)]
    return [str(v) for v in value]


def load_bids_filters(path) -> dict:
    """The ``"t1w"`` query of an fMRIPrep-style ``--bids-filter-file`` (JSON), as bids2table columns.

    Values: a label (str/int), a list of labels, or ``null`` (the entity must be absent).
    """
    shown = display_path(path)
    data = read_json(path, "BIDS filter file")
    if not isinstance(data, dict) or not isinstance(data.get("t1w", {}), dict):
        raise InputError(shown, 'expected a JSON object such as {"t1w": {"session": "1"}}')
    query = {}
    for name, value in data.get("t1w", {}).items():
        if name not in FILTER_ENTITIES:
            raise InputError(shown, f"unknown entity {name!r} in 't1w'; known: {', '.join(sorted(FILTER_ENTITIES))}")
        query[FILTER_ENTITIES[name]] = value
    return query


def _norm(column: str, value) -> str:
    """Comparable entity value: prefix ``<column>-`` removed, run numbers without leading zeros."""
    value = strip_prefix(value, f"{column}-")
    return str(int(value)) if column == "run" and value.isdigit() else value


def _allowed(column: str, wanted) -> set[str]:
    return {_norm(column, v) for v in _as_list(wanted)}


OPTIONAL_ENTITIES = ("run",)
"""Entities whose filter also matches images without them (pybids' ``Query.OPTIONAL``): a run filter
keeps the subjects that have a single unnumbered T1w."""


def _matches(record: dict, query: dict) -> bool:
    for column, wanted in query.items():
        have = record.get(column)
        if wanted is None:
            if have is not None:
                return False
        elif have is None:
            if column not in OPTIONAL_ENTITIES:
                return False
        elif _norm(column, have) not in _allowed(column, wanted):
            return False
    return True


def _index(root: Path, subjects: Sequence[str] | None = None) -> list[dict]:
    from bids2table import index_dataset

    include = [f"sub-{s}" for s in subjects] if subjects else None
    return index_dataset(root, include_subjects=include).to_pylist()


def _derivative_roots(root: Path, derivatives: Sequence | None) -> list[Path]:
    if derivatives is not None:
        roots = [Path(d).absolute() for d in derivatives]
        for d in roots:
            if not (d / "dataset_description.json").is_file():
                shown = display_path(d / "dataset_description.json")
                raise InputError(shown, "missing: not a BIDS derivatives dataset")
        return roots
    folder = root / "derivatives"
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and (d / "dataset_description.json").is_file())


def _check_file(path: Path, what: str) -> Path:
    if path.stat().st_size == 0:
        raise InputError(display_path(path), f"empty file (0 bytes) for the {what}")
    return path


def _pick_one(records: list[dict], what: str, where: str) -> Path | None:
    if not records:
        return None
    if len(records) > 1:
        names = ", ".join(sorted(Path(r["path"]).name for r in records))
        raise InputError(where, f"several candidates for the {what}: {names}; narrow them with a BIDS filter file")
    rec = records[0]
    return _check_file(Path(rec["root"]) / rec["path"], what)


MATCH_ENTITIES = ("ses", "run", "acq", "ce", "rec")
"""Raw T1w entities a derivative file must repeat, or leave out (e.g. fMRIPrep merges runs)."""


def _specificity(rec: dict, t1: dict) -> int | None:
    """How many of ``MATCH_ENTITIES`` the derivative repeats from the raw T1w; None on a conflict."""
    count = 0
    for column in MATCH_ENTITIES:
        if rec.get(column) is None:
            continue
        if t1.get(column) is None or str(rec[column]) != str(t1[column]):
            return None
        count += 1
    return count


def _most_specific(records: list[dict], t1: dict) -> list[dict]:
    scored = [(_specificity(r, t1), r) for r in records]
    scored = [(n, r) for n, r in scored if n is not None]
    best = max((n for n, _ in scored), default=0)
    return [r for n, r in scored if n == best]


class _Derivatives:
    """One BIDS derivatives dataset, indexed once; native-space anatomical images grouped by subject."""

    def __init__(self, root: Path, subjects):
        self.root = root
        self.name = root.name
        self.by_subject: dict[str, list[dict]] = {}
        for r in _index(root, subjects):
            if r["datatype"] == "anat" and r["ext"] in IMAGE_EXTS and r.get("space") in (None, "T1w"):
                self.by_subject.setdefault(r["sub"], []).append(r)

    def find(self, t1: dict, shown_t1: str) -> dict | None:
        """Mask, labels and preprocessed T1w matching the raw T1w record ``t1`` (the mask None when this
        dataset has labels but no mask for it); None when it has neither.

        When both a session-level and a subject-level file match, the more specific one is used.
        """
        recs = self.by_subject.get(t1["sub"], [])

        def select(suffix, desc):
            return _most_specific([r for r in recs if r["suffix"] == suffix and r["desc"] == desc], t1)

        mask, labels = select("mask", "brain"), select("dseg", "aseg") or select("dseg", None)
        if not mask and not labels:
            return None
        where = f"{display_path(self.root)} (for {shown_t1})"
        return {
            "mask": _pick_one(mask, "brain mask", where),
            "labels": _pick_one(labels, "labels (dseg)", where),
            "preproc_t1w": _pick_one(select("T1w", "preproc"), "preprocessed T1w", where),
            "source": self.name,
        }


def _freesurfer_dir(root: Path, subject: str, session: str | None) -> Path | None:
    names = ([f"sub-{subject}_ses-{session}"] if session else []) + [f"sub-{subject}"]
    for base in (root / "derivatives" / "freesurfer", root / "derivatives" / "sourcedata" / "freesurfer"):
        for name in names:
            if (base / name / "mri").is_dir():
                return base / name
    return None


def _freesurfer_inputs(fs_dir: Path) -> dict | None:
    files = {role: fs_dir / "mri" / name for role, name in FREESURFER_FILES.items()}
    if not files["mask"].is_file():
        return None
    found = {role: _check_file(p, f"FreeSurfer {p.name}") if p.is_file() else None for role, p in files.items()}
    return {**found, "source": "freesurfer"}


def _choose(records: list[dict], column: str, wanted, what: str, option: str, sub_dir: Path) -> list[dict]:
    """Keep the records whose ``column`` is in ``wanted``; refuse ambiguity when ``wanted`` is None."""
    values = sorted({r[column] for r in records}, key=lambda v: (v is None, str(v)))
    if wanted is None:
        if len(values) > 1:
            shown = ", ".join("(none)" if v is None else str(v) for v in values)
            raise InputError(display_path(sub_dir), f"several {what}s with a T1w: {shown}; choose with {option}")
        return records
    allowed = _allowed(column, wanted)
    kept = [r for r in records if r[column] is not None and _norm(column, r[column]) in allowed]
    if not kept and any(v is not None for v in values):
        shown = ", ".join(str(v) for v in values if v is not None)
        problem = f"no {what} {', '.join(sorted(allowed))} with a T1w; available: {shown}"
        raise InputError(display_path(sub_dir), problem)
    return kept or records


def collect_subjects(
    bids_dir,
    participant_label: Sequence[str] | str | None = None,
    session_label: Sequence[str] | str | None = None,
    run: Sequence[int] | int | None = None,
    bids_filters: dict | str | Path | None = None,
    derivatives: Sequence | None = None,
    use_derivatives: bool = True,
    errors: dict | None = None,
) -> list[SubjectInputs]:
    """One :class:`SubjectInputs` per selected subject / session / run, sorted by key.

    participant_label: labels with or without ``sub-`` (default: every ``sub-*`` folder).
    session_label / run: the session(s) and run(s) to use; a subject with several sessions (or
    runs) and no selection is an error listing them (nothing is picked silently). Subjects without
    sessions are kept whatever ``session_label`` says. bids_filters: a path to an fMRIPrep-style
    filter file or its parsed ``"t1w"`` query (see :func:`load_bids_filters`). derivatives:
    explicit derivatives dataset folders (default: ``BIDS_DIR/derivatives/*``); set
    ``use_derivatives=False`` to ignore derivatives entirely. errors: when given, a subject that cannot
    be resolved (no T1w, several sessions or runs, ...) is left out and its :class:`InputError` stored
    under its label instead of raised, so that only the subjects actually used need to resolve.
    """
    root = Path(bids_dir).absolute()
    if not (root / "dataset_description.json").is_file():
        raise InputError(display_path(root / "dataset_description.json"), "missing: not a BIDS dataset root")
    known = sorted(p.name[4:] for p in root.glob("sub-*") if p.is_dir())
    if participant_label is None:
        subjects = known
    else:
        subjects = sorted({strip_prefix(label, "sub-") for label in _as_list(participant_label)})
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise InputError(
                display_path(root),
                f"unknown participant label(s) {', '.join(unknown)}; known: {', '.join(known) or '(none)'}",
            )
    if not subjects:
        raise InputError(display_path(root), "no sub-* folders: no subjects to process")
    query = load_bids_filters(bids_filters) if isinstance(bids_filters, (str, Path)) else dict(bids_filters or {})
    query.update({"datatype": "anat", "suffix": "T1w"})
    selected = None if participant_label is None else subjects  # None: index everything (much faster)
    t1_records = [r for r in _index(root, selected) if r["ext"] in IMAGE_EXTS and _matches(r, query)]
    sources = []
    if use_derivatives:
        sources = [_Derivatives(d, selected) for d in _derivative_roots(root, derivatives)]

    t1_by_subject: dict[str, list[dict]] = {}
    for r in t1_records:
        t1_by_subject.setdefault(r["sub"], []).append(r)
    out = []
    for subject in subjects:
        try:
            out += _resolve_subject(root, subject, t1_by_subject.get(subject, []), session_label, run, sources,
                                    use_derivatives)
        except InputError as err:
            if errors is None:
                raise
            errors[subject] = err
    return sorted(out, key=lambda s: s.key)


def _resolve_subject(root: Path, subject: str, records: list[dict], session_label, run, sources,
                     use_derivatives: bool) -> list[SubjectInputs]:
    """The :class:`SubjectInputs` of one subject's T1w records (one per session and run)."""
    sub_dir = root / f"sub-{subject}"
    if not records:
        raise InputError(display_path(sub_dir), "no usable T1w image (anat/*_T1w.nii[.gz]) after filters")
    records = _choose(records, "ses", session_label, "session", "session_label (--session-label)", sub_dir)
    out = []
    for session in sorted({r["ses"] for r in records}, key=str):
        in_ses = [r for r in records if r["ses"] == session]
        in_ses = _choose(in_ses, "run", run, "run", 'a BIDS filter file such as {"t1w": {"run": 1}}', sub_dir)
        for run_value in sorted({r["run"] for r in in_ses}, key=str):
            in_run = [r for r in in_ses if r["run"] == run_value]
            t1w = _pick_one(in_run, "T1w", display_path(sub_dir))
            out.append(_subject_inputs(root, t1w, in_run[0], sources, use_derivatives))
    return out


def require_brain_masks(subjects: Sequence[SubjectInputs], skull_strip: str | None) -> str:
    """The skull stripping to use: ``skull_strip``, or ``"none"`` when it is unset and every subject
    has a brain mask. Unset with subjects lacking one raises :class:`InputErrors` (one line per subject):
    heads are registered as brains only on an explicit ``--skull-strip none``."""
    if skull_strip is not None:
        return skull_strip
    missing = [s for s in subjects if s.mask is None]
    if missing:
        raise InputErrors([InputError(display_path(s.t1w), "no brain mask in the derivatives: compute one with "
                                      "--skull-strip deepbet (or synthstrip), or pass --skull-strip none to register "
                                      "the whole head") for s in missing])
    return "none"


def _subject_inputs(
    root: Path, t1w: Path, record: dict, sources: list[_Derivatives], use_derivatives: bool
) -> SubjectInputs:
    subject, session, run = record["sub"], record["ses"], record["run"]
    fs_dir = _freesurfer_dir(root, subject, session) if use_derivatives else None
    candidates = [found for source in sources if (found := source.find(record, display_path(t1w)))]
    if fs_dir is not None and not any(c["mask"] for c in candidates) and (fs := _freesurfer_inputs(fs_dir)):
        candidates.append(fs)
    # the first source with a brain mask; without any, the first with labels (used for whole heads too)
    found = next((c for c in candidates if c["mask"]), candidates[0] if candidates else None)
    return SubjectInputs(
        subject=subject,
        session=session,
        run=run,
        t1w=t1w,
        freesurfer_dir=fs_dir,
        **(found or {}),
    )
