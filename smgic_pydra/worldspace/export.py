"""Dense ANTs warps from the compact mapping of a pair (``--outputs compact``), bit for bit as ``all`` writes them.

:func:`export_pair` is the plain function a Pydra task or a Nipype interface wraps; :func:`export_output_dir`
is the ``smgic-bids BIDS_DIR OUTPUT_DIR export`` level (every compact pair of OUTPUT_DIR, or a selection).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

EXPORT_ROLES = ("warp", "inverse_warp", "affine")
"""What an export writes by default: both ITK/ANTs warps and the affine stage's ``.mat`` (as ``all``)."""
EXTRA_ROLES = ("jacobian", "warp_h5")
"""Further roles an export can write from the fields alone (as ``full``)."""


def export_pair(output_dir, fixed: str, moving: str, method: str = "smgicnet", roles=EXPORT_ROLES,
                verify: bool = False) -> dict[str, str]:
    """Write the dense outputs ``roles`` of the ordered pair (``fixed``, ``moving``; subject keys such as
    ``sub-01``) from its compact mapping in ``output_dir``; returns output role -> path.

    The pair's sidecar (written under ``--outputs compact``) must record the compact file, unchanged
    (SHA-256 compared when its size or modification time changed, or with ``verify``). The files are
    written all or nothing, then recorded in the sidecar beside the compact file (atomic), so resume
    and ``group --verify-outputs`` check them too. A pair without a compact file is a one-line
    :class:`~smgic_pydra.io.errors.InputError`.
    """
    from ..bids.derivatives import pair_output_paths
    from ..io.atomic import save_json
    from ..io.errors import InputError, display_path
    from ..io.integrity import first_problem
    from .compact import read_compact
    from .outputs import write_pair_outputs

    unknown = sorted(set(roles) - set(EXPORT_ROLES) - set(EXTRA_ROLES))
    if unknown:
        raise ValueError(f"cannot export {unknown}: choose from {list(EXPORT_ROLES + EXTRA_ROLES)}")
    paths = pair_output_paths(output_dir, moving, fixed, method)
    try:
        meta = json.loads(Path(paths.sidecar).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(display_path(paths.sidecar), f"no readable pair sidecar to export from ({exc})") from exc
    name = (meta.get("files") or {}).get("compact")
    if not name:
        raise InputError(display_path(paths.sidecar), "the pair has no compact mapping (written with "
                         f"--outputs {meta.get('output_policy')}); run it with --outputs compact")
    folder = Path(paths.sidecar).parent
    record = (meta.get("outputs") or {}).get(name)
    problem = first_problem(folder, {name: record}, verify) if record else f"{paths.sidecar}: no record of {name}"
    if problem:
        raise InputError(display_path(folder / name), problem)
    paths.compact = folder / name
    mapping = read_compact(paths.compact)
    fwd, inv, affine = mapping.dense_fields(fixed)
    grids = {k: SimpleNamespace(affine=a, shape=tuple(s)) for k, (a, s) in mapping.grids.items()}
    staged = Path(paths.sidecar).with_name(Path(paths.sidecar).name + ".export.json")
    paths.sidecar = staged
    try:
        written = write_pair_outputs(paths, grids[fixed], grids[moving], None, fwd.astype(np.float64),
                                     inv.astype(np.float64), {}, affine_ras=affine, roles=tuple(roles))
        exported = json.loads(staged.read_text())
    finally:
        staged.unlink(missing_ok=True)
    meta["files"] = {**meta["files"], **exported["files"]}
    meta["outputs"] = {**meta["outputs"], **exported["outputs"]}
    meta["exported_from_compact"] = sorted(exported["files"])
    sidecar = pair_output_paths(output_dir, moving, fixed, method).sidecar
    save_json(meta, sidecar)
    return {r: str(p) for r, p in written.items() if r != "sidecar"}


def compact_pairs(output_dir, method: str = "smgicnet") -> list[tuple[str, str]]:
    """``[(fixed, moving)]`` of every pair sidecar of ``method`` in ``output_dir`` that names a compact file."""
    pairs = []
    for sidecar in sorted(Path(output_dir).glob(f"sub-*/**/anat/*_desc-{method}_mode-image_xfm.json")):
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and "compact" in (meta.get("files") or {}):
            pairs.append((str(meta["fixed"]), str(meta["moving"])))
    return pairs


def export_output_dir(output_dir, participant_label=None, roles=EXPORT_ROLES, verify: bool = False) -> list[str]:
    """Export every compact pair of ``output_dir`` whose moving subject is one of ``participant_label``
    (labels without ``sub-``; None: all); returns one line per pair that failed."""
    from ..io.errors import InputError

    wanted = None if not participant_label else {f"sub-{p}" for p in participant_label}
    failed, done = [], 0
    for fixed, moving in compact_pairs(output_dir):
        if wanted is not None and moving.split("_")[0] not in wanted:
            continue
        try:
            export_pair(output_dir, fixed, moving, roles=roles, verify=verify)
            done += 1
        except (InputError, OSError, ValueError) as exc:
            failed.append(f"smgicnet {moving} -> {fixed}: {' '.join(str(exc).split())}")
    print(f"smgic-bids: exported {done} pair(s) from their compact mappings into {output_dir}")
    return failed
