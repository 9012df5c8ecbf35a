"""Resampling with native-grid displacement fields and writing the files of one registered pair."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_paths, json_text
from ..io.integrity import file_record
from ..io.itk_affine import write_itk_affine_mat
from ..io.itk_h5 import write_itk_composite_h5
from ..io.itk_warp import write_itk_displacement
from ..transforms.jacobian import jacobian_determinant
from .sampling import apply_affine, grid_world_points, resample, row_chunks

WRITER_THREADS = 2
"""Threads that compress and write the output files."""

CONVENTIONS = {
    "warp": "ITK/ANTs displacement field, 5-D (X,Y,Z,1,3), LPS mm, fixed -> moving (pull-back), fixed grid",
    "inverse_warp": "same layout, moving -> fixed, on the moving image's grid",
    "jacobian": "det(I + du/dx) of the forward warp, central differences, fixed grid",
    "affine": "ITK .mat (LPS, fixed -> moving points): the affine stage alone; the warps already include it",
    "warp_h5": "ITK composite: the affine stage, then the residual displacement x -> A(x + d(x)), fixed grid "
               "(float32, gzip)",
    "compact": "both directions of the pair: affine + stationary velocity on the network grid (HDF5); "
               "'smgic-bids BIDS OUT export' writes the warps from it",
}


def resample_with_displacement(source_img, disp_ras_mm, ref_affine, ref_shape, order=1) -> np.ndarray:
    """Pull-back resampling: ``out[x] = source(x + u(x))`` on the reference grid.

    source_img: nibabel image (3-D). disp_ras_mm: ``(X, Y, Z, 3)`` RAS mm on the reference grid
    ``(ref_affine, ref_shape)``. order: 1 (trilinear, float32), 0 (nearest) or ``"labels"``
    (label-aware, no new label values; keeps the integer dtype). Outside the source: 0.
    """
    ref_shape = tuple(int(n) for n in ref_shape[:3])
    disp = np.asarray(disp_ras_mm)
    if disp.shape != ref_shape + (3,):
        raise ValueError(f"displacement shape {disp.shape} does not match the reference grid {ref_shape}")
    return resample(np.asanyarray(source_img.dataobj), source_img.affine, ref_affine, ref_shape, order, disp)


@dataclass(kw_only=True)
class PairOutputPaths:
    """Files of one registered pair (moving -> fixed), keyword-only. Optional ones are skipped when None."""

    warp: Path
    inverse_warp: Path
    warped: Path
    warped_labels: Path | None = None
    jacobian: Path
    sidecar: Path
    warp_h5: Path | None = None
    affine: Path | None = None
    compact: Path | None = None

    def as_dict(self) -> dict[str, Path]:
        return {f.name: Path(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}


def residual_after_affine(disp_ras_mm: np.ndarray, affine_ras: np.ndarray, grid_affine: np.ndarray) -> np.ndarray:
    """``d`` with ``x + u(x) = A(x + d(x))`` on a grid: the field left once the affine ``A`` is split off.

    disp_ras_mm: ``(X, Y, Z, 3)`` total displacement ``u`` (RAS mm) on the grid ``grid_affine``;
    affine_ras: ``A`` (4 x 4, RAS mm, fixed -> moving). Returns float32 ``(X, Y, Z, 3)``.
    """
    shape = disp_ras_mm.shape[:3]
    inverse = np.linalg.inv(np.asarray(affine_ras, dtype=np.float64))
    out = np.empty(disp_ras_mm.shape, dtype=np.float32)
    for rows in row_chunks(shape):
        x = grid_world_points(grid_affine, shape, rows)
        out[rows] = apply_affine(inverse, x + disp_ras_mm[rows]) - x
    return out


def _check_grid(disp, img, what: str) -> None:
    if np.asarray(disp).shape != tuple(img.shape[:3]) + (3,):
        raise ValueError(f"{what} shape {np.asarray(disp).shape} does not match its image grid {tuple(img.shape[:3])}")


def nifti_image(data, affine):
    """A NIfTI image of ``data`` on ``affine`` with millimetre units (as every output is written)."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    return img


def write_pair_outputs(
    paths: PairOutputPaths,
    fixed_native_img,
    moving_native_img,
    moving_labels_img,
    fwd_disp_ras_mm,
    inv_disp_ras_mm,
    sidecar: dict,
    affine_ras: np.ndarray | None = None,
    roles=None,
    warped_labels: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write the outputs of a pair, all or nothing; returns output role -> path of the files written.

    fwd_disp_ras_mm: fixed -> moving, on the fixed native grid; written to ``paths.warp`` (and
    ``paths.warp_h5``). inv_disp_ras_mm: moving -> fixed, on the moving native grid; written to
    ``paths.inverse_warp``. Also the warped moving image (trilinear) and labels (label-aware) on
    the fixed grid, the Jacobian determinant of the forward field, and, last, the JSON sidecar (the
    caller's dict plus ``"files"``: output role -> file name, and ``"outputs"``: file name -> size,
    modification time and SHA-256, see :mod:`smgic_pydra.io.integrity`). affine_ras: the method's
    affine stage ``A`` (4 x 4 RAS mm, fixed -> moving), already included in both fields; when given
    it is also written alone (``paths.affine``, ITK ``.mat``) and the ``.h5`` composite holds ``A``
    followed by the residual field. Without it the ``.mat`` is skipped. roles: the output roles to
    write (None: every one; the sidecar always), e.g. :meth:`OutputPolicy.roles_for <smgic_pydra.output_policy.OutputPolicy.roles_for>`.
    warped_labels: the moving labels already resampled onto the fixed grid (else resampled here).
    """
    import nibabel as nib

    _check_grid(fwd_disp_ras_mm, fixed_native_img, "forward displacement")
    _check_grid(inv_disp_ras_mm, moving_native_img, "inverse displacement")
    fixed_affine, fixed_shape = np.asarray(fixed_native_img.affine, dtype=np.float64), fixed_native_img.shape[:3]
    targets = paths.as_dict()
    if moving_labels_img is None:
        targets.pop("warped_labels", None)
    if affine_ras is None:
        targets.pop("affine", None)
    targets.pop("compact", None)  # written by write_compact_outputs
    if roles is not None:
        targets = {r: p for r, p in targets.items() if r in roles or r == "sidecar"}
    full_sidecar = _sidecar_start(sidecar, targets)

    roles = list(targets)
    # the files are compressed in writer threads (zlib releases the GIL) while the next output is computed
    with atomic_paths([targets[r] for r in roles]) as temps, ThreadPoolExecutor(WRITER_THREADS) as writers:
        tmp = dict(zip(roles, temps))
        written = [writers.submit(write_itk_displacement, tmp["warp"], fwd_disp_ras_mm, fixed_affine),
                   writers.submit(write_itk_displacement, tmp["inverse_warp"], inv_disp_ras_mm, moving_native_img.affine)]
        if "affine" in tmp:
            written.append(writers.submit(write_itk_affine_mat, tmp["affine"], affine_ras))
        if "warp_h5" in tmp:
            h5_field = fwd_disp_ras_mm if affine_ras is None else residual_after_affine(fwd_disp_ras_mm, affine_ras, fixed_affine)
            written.append(writers.submit(write_itk_composite_h5, tmp["warp_h5"], h5_field, fixed_affine, affine_ras))
        if "warped" in tmp:
            warped = resample_with_displacement(moving_native_img, fwd_disp_ras_mm, fixed_affine, fixed_shape, 1)
            written.append(writers.submit(nib.save, nifti_image(warped, fixed_affine), tmp["warped"]))
        if "warped_labels" in tmp:
            labels = warped_labels if warped_labels is not None else resample_with_displacement(
                moving_labels_img, fwd_disp_ras_mm, fixed_affine, fixed_shape, "labels")
            written.append(writers.submit(nib.save, nifti_image(labels.astype(np.int32), fixed_affine), tmp["warped_labels"]))
        if "jacobian" in tmp:
            jac = jacobian_determinant(fwd_disp_ras_mm, fixed_affine).astype(np.float32)
            written.append(writers.submit(nib.save, nifti_image(jac, fixed_affine), tmp["jacobian"]))
        for future in written:  # re-raises a writer's error inside the all-or-nothing block
            future.result()
        _sidecar_finish(full_sidecar, targets, tmp)
    return targets


def _sidecar_start(sidecar: dict, targets: dict) -> dict:
    """The caller's sidecar plus ``files`` (role -> file name, relative to the sidecar's folder) and
    ``conventions``; checked JSON-ready before any work."""
    full = dict(sidecar)
    full["files"] = {role: _relative(p, targets) for role, p in targets.items() if role != "sidecar"}
    full.setdefault("conventions", CONVENTIONS)
    json_text(full)
    return full


def _relative(path: Path, targets: dict) -> str:
    """``path`` relative to the sidecar's folder (its name, but for a compact file in the other subject's folder)."""
    return os.path.relpath(Path(path).absolute(), Path(targets["sidecar"]).absolute().parent)


def _sidecar_finish(full: dict, targets: dict, tmp: dict) -> None:
    """Record the written temporary files (their renames keep each modification time, so the records stay
    valid) and write the sidecar last."""
    full["outputs"] = {_relative(targets[r], targets): file_record(tmp[r]) for r in targets if r != "sidecar"}
    tmp["sidecar"].write_text(json_text(full))


def write_compact_outputs(paths: PairOutputPaths, mapping, sidecar: dict) -> dict[str, Path]:
    """Write the pair's compact mapping (``paths.compact``, shared with the reverse order: the same
    bytes) and its sidecar, all or nothing; returns output role -> path."""
    from .compact import write_compact

    if paths.compact is None:
        raise ValueError("the compact output needs paths.compact")
    targets = {"compact": Path(paths.compact), "sidecar": Path(paths.sidecar)}
    full_sidecar = _sidecar_start(sidecar, targets)
    with atomic_paths(list(targets.values())) as temps:
        tmp = dict(zip(targets, temps))
        write_compact(tmp["compact"], mapping)
        _sidecar_finish(full_sidecar, targets, tmp)
    return targets
