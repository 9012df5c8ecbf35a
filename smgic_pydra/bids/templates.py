"""TemplateFlow templates as the fixed image of a registration, found offline under ``TEMPLATEFLOW_HOME``.

A template is named as in fMRIPrep's ``--output-spaces``: ``NAME`` or ``NAME:res-N`` (N the
TemplateFlow resolution index, default 1). Its files are looked up with the ``templateflow`` client
in the local TemplateFlow home and nothing is downloaded: a file that is absent (or only TemplateFlow's
empty placeholder) is one :class:`~smgic_pydra.io.errors.InputError` naming the template, the file
and the command that fetches it on a machine with internet.

Output names follow the NiPreps convention: ``sub-X[_ses-Y]_from-T1w_to-NAME_mode-image_xfm.nii.gz``
(subject -> template: the warp on the template's grid, fixed = template -> moving = subject, as ANTs
applies it), ``..._from-NAME_to-T1w_...`` (the inverse, on the subject's grid), ``space-NAME`` images.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..io.errors import InputError

PREFIX = "template:"
DEFAULT_RESOLUTION = 1
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9]+)(?::res-(?P<res>[0-9]+))?$")


@dataclass(frozen=True)
class TemplateFiles:
    """One template at one resolution: ``t1w``, brain ``mask``, optional tissue/label ``dseg`` and its
    ``labels_tsv`` (``index``/``name`` columns), all under ``TEMPLATEFLOW_HOME``."""

    name: str
    resolution: int
    t1w: Path
    mask: Path
    dseg: Path | None = None
    labels_tsv: Path | None = None

    @property
    def key(self) -> str:
        """The template's key beside subject keys (``tpl-NAME``), e.g. in pair tables."""
        return f"tpl-{self.name}"


def parse_template_spec(spec: str) -> tuple[str, int]:
    """``'MNI152NLin2009cAsym:res-2'`` (``template:`` optional) -> ``('MNI152NLin2009cAsym', 2)``."""
    text = str(spec).strip()
    text = text[len(PREFIX):] if text.startswith(PREFIX) else text
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(f"template {spec!r}: expected NAME or NAME:res-N (a TemplateFlow template, "
                         "e.g. MNI152NLin2009cAsym:res-1)")
    return match["name"], int(match["res"] or DEFAULT_RESOLUTION)


def templateflow_home() -> Path:
    """``TEMPLATEFLOW_HOME`` (TemplateFlow's own default when unset: the user cache folder)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("TEMPLATEFLOW_HOME") or user_cache_dir("templateflow")).absolute()


def fetch_command(name: str, **query) -> str:
    """The one-line command that fetches a template file on a machine with internet."""
    args = ", ".join([repr(name)] + [f"{k}={v!r}" for k, v in query.items()])
    return f'python -c "import templateflow.api as t; t.get({args})"'


def _missing(name: str, home: Path, what: str, filename: str, query: dict) -> InputError:
    return InputError(f"template {name}", f"its {what} tpl-{name}/{filename} is not under TEMPLATEFLOW_HOME={home} "
                      f"(nothing is downloaded at run time); fetch it on a machine with internet with "
                      f"{fetch_command(name, **query)} and copy TEMPLATEFLOW_HOME here")


def _client(home: Path):
    """A TemplateFlow client on ``home`` that never updates or downloads (the home must exist already:
    the client would otherwise write a skeleton into it)."""
    from templateflow import TemplateFlowClient

    return TemplateFlowClient(root=home, autoupdate=False, use_datalad=False)


def _present(paths) -> list[Path]:
    """The files that hold data (TemplateFlow's not-yet-fetched files are empty placeholders)."""
    return [Path(p) for p in paths if Path(p).is_file() and Path(p).stat().st_size > 0]


def find_template(spec: str, home: Path | None = None) -> TemplateFiles:
    """The files of template ``spec`` (``NAME[:res-N]``) in the TemplateFlow home, offline.

    Needs the T1w (``suffix=T1w``, no ``desc``) and brain mask (``desc=brain``, ``suffix=mask``) at
    resolution N; the tissue/label image (``suffix=dseg``, no ``desc``/``atlas``) is used when present
    and then needs its ``dseg.tsv``. Raises :class:`InputError` (one line) for a bad spec, a missing
    home or any needed file that is absent.
    """
    try:
        name, resolution = parse_template_spec(spec)
    except ValueError as err:
        raise InputError("--pairs", str(err)) from None
    home = templateflow_home() if home is None else Path(home).absolute()
    if not home.is_dir() or not any(home.iterdir()):
        raise InputError(f"template {name}", f"TEMPLATEFLOW_HOME={home} is missing or empty; fill it on a machine "
                         f"with internet, e.g. with {fetch_command(name, resolution=resolution, suffix='T1w', desc=None)}, "
                         "and copy it here (nothing is downloaded at run time)")
    client = _client(home)
    if name not in client.templates():
        raise InputError(f"template {name}", f"not in TEMPLATEFLOW_HOME={home} (has: {', '.join(client.templates()) or 'none'}); "
                         f"fetch it with {fetch_command(name, resolution=resolution, suffix='T1w', desc=None)}")
    image = {"resolution": resolution, "extension": ".nii.gz"}
    found = {}
    for role, entities, query in (
            ("T1w", "T1w", {**image, "suffix": "T1w", "desc": None}),
            ("brain mask", "desc-brain_mask", {**image, "suffix": "mask", "desc": "brain", "atlas": None, "label": None})):
        files = _present(client.ls(name, **query))
        if len(files) != 1:
            raise _missing(name, home, role, f"tpl-{name}_res-{resolution}_{entities}.nii.gz",
                           {k: v for k, v in query.items() if k not in ("atlas", "label")})
        found[role] = files[0]
    dseg_query = {**image, "suffix": "dseg", "desc": None, "atlas": None}
    dseg = _present(client.ls(name, **dseg_query))
    labels_tsv = None
    if dseg:
        tsv_query = {"suffix": "dseg", "desc": None, "atlas": None, "extension": ".tsv"}
        tables = _present(client.ls(name, **tsv_query))
        if not tables:
            raise _missing(name, home, "label table", f"tpl-{name}_dseg.tsv",
                           {"suffix": "dseg", "desc": None, "extension": ".tsv"})
        labels_tsv = tables[0]
    return TemplateFiles(name=name, resolution=resolution, t1w=found["T1w"], mask=found["brain mask"],
                         dseg=dseg[0] if dseg else None, labels_tsv=labels_tsv)


def template_output_names(subject_key: str, template: str) -> dict[str, str]:
    """NiPreps file names of a subject -> template registration (``subject_key`` as ``sub-01[_ses-1]``):
    ``forward`` (from-T1w_to-NAME warp), ``inverse``, ``t1w`` / ``jacobian`` (``space-NAME``, on the
    template grid) and ``labels`` (the template's dseg in the subject's space, ``space-T1w``)."""
    return {
        "forward": f"{subject_key}_from-T1w_to-{template}_mode-image_xfm.nii.gz",
        "inverse": f"{subject_key}_from-{template}_to-T1w_mode-image_xfm.nii.gz",
        "t1w": f"{subject_key}_space-{template}_desc-preproc_T1w.nii.gz",
        "jacobian": f"{subject_key}_space-{template}_desc-logjacobian_map.nii.gz",
        "labels": f"{subject_key}_space-T1w_atlas-{template}_dseg.nii.gz",
    }
