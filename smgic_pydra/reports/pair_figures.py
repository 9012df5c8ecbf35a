"""Reportlets of one registered pair and method (written by the participant level).

* registration: the fixed image's tissue boundaries (brain in red, white matter in blue) over the
  moving image before registration (identity: resampled onto the fixed grid by world coordinates,
  no transform) and after it (the warped image); the after view flickers over the before one when
  the pointer is over the figure (nireports, as fMRIPrep does);
* jacobian: det(I + du/dx) of the forward warp on three planes, folded voxels (det <= 0) in lime;
* displacement: |u| of the forward warp in mm with the deformation grid (lines of constant
  ``x + u(x)``, every ``GRID_MM`` mm) on three planes.

Every figure is drawn on the fixed image's grid in RAS orientation (neurological convention: the
subject's right on the panel's right). The numbers in the titles (Dice, folding) are the pair's row, the same row that goes into ``pairs.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .anatomy import binary_img, cut_coords, mosaic_svgs, tissue_masks, write_composed_svg

GRID_MM = 8.0
"""Spacing of the drawn deformation grid lines (mm)."""
FOLD_COLOR = "lime"
PANEL_INCHES = 2.4


def _metric(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pair_title(row: dict) -> str:
    """``"<method>: <moving> -> <fixed>"`` and the row's Dice and folding."""
    return (f"{row['method']}: {row['moving']} -> {row['fixed']}  (Dice {_metric(row.get('dice_mean'))}, "
            f"folding {_metric(row.get('folding_percent'))} %)")


def identity_resampled(moving_img, fixed_img) -> np.ndarray:
    """The moving image on the fixed grid by world coordinates (no transform): the "before" view."""
    from ..worldspace.sampling import resample

    return resample(np.asarray(moving_img.dataobj), moving_img.affine, fixed_img.affine, fixed_img.shape[:3], 1)


def write_registration_svg(path, fixed_img, fixed_mask: np.ndarray, moving_img, warped_img, method: str) -> Path:
    """The before / after registration reportlet (see the module docstring); ``fixed_mask`` on the fixed grid."""
    import nibabel as nib

    brain, white = tissue_masks(np.asarray(fixed_img.dataobj), fixed_mask)
    contours = [binary_img(brain, fixed_img.affine), binary_img(white, fixed_img.affine)]
    cuts = cut_coords(contours[0])
    before = nib.Nifti1Image(identity_resampled(moving_img, fixed_img), fixed_img.affine)
    panels = mosaic_svgs(before, contours, cuts, "before", "before (identity)")
    after = mosaic_svgs(warped_img, contours, cuts, "after", f"after ({method})")
    write_composed_svg(path, panels, after)
    return Path(path)


def _canonical(data: np.ndarray, affine) -> np.ndarray:
    """``data`` (3-D, or 3-D plus trailing axes) reoriented to RAS voxel axes (values unchanged)."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(np.asarray(affine))
    return nib.orientations.apply_orientation(data, ornt)


def _centre(mask: np.ndarray) -> tuple[int, int, int]:
    idx = np.argwhere(mask)
    if idx.size == 0:
        return tuple(int(n) // 2 for n in mask.shape)
    return tuple(int(v) for v in np.round(idx.mean(axis=0)))


def _planes(volume: np.ndarray, centre) -> list[np.ndarray]:
    """Axial, sagittal and coronal slices through ``centre`` of a RAS-oriented volume, each
    ``(rows, columns)`` ready for ``imshow(origin="lower")`` (rows: A / S, columns: R / A)."""
    i, j, k = centre
    return [volume[:, :, k].swapaxes(0, 1), volume[i, :, :].swapaxes(0, 1), volume[:, j, :].swapaxes(0, 1)]


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(3 * PANEL_INCHES, PANEL_INCHES + 0.5), constrained_layout=True)
    fig.suptitle(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def _save_svg(fig, path) -> Path:
    import matplotlib.pyplot as plt

    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="svg", dpi=100)
    plt.close(fig)
    return Path(path)


def jacobian_figure(jacobian: np.ndarray, affine, mask: np.ndarray, title: str):
    """Matplotlib figure of the Jacobian determinant (colour scale 0..2 around 1) on three planes
    through the brain's centre, with folded voxels (det <= 0) in ``FOLD_COLOR``."""
    from matplotlib.colors import ListedColormap, TwoSlopeNorm

    jac, brain = _canonical(np.asarray(jacobian, dtype=np.float32), affine), _canonical(np.asarray(mask), affine)
    fig, axes = _figure(title)
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0)
    folded_cmap = ListedColormap([FOLD_COLOR])
    image = None
    for ax, det, inside in zip(axes, _planes(jac, _centre(brain)), _planes(brain, _centre(brain))):
        image = ax.imshow(np.where(inside, det, np.nan), cmap="RdBu_r", norm=norm, origin="lower",
                          interpolation="nearest")
        ax.imshow(np.ma.masked_where(~(det <= 0), np.ones_like(det)), cmap=folded_cmap, origin="lower",
                  interpolation="nearest")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="det(J)")
    return fig


def displacement_figure(disp_ras_mm: np.ndarray, affine, mask: np.ndarray, title: str):
    """Matplotlib figure of |u| (mm) on three planes through the brain's centre, with the
    deformation grid (contour lines of the in-plane world coordinates of ``x + u(x)``, white) and
    the brain's outline (cyan)."""
    disp = _canonical(np.asarray(disp_ras_mm, dtype=np.float32), affine)
    brain = _canonical(np.asarray(mask), affine)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))[np.argsort(
        np.abs(np.asarray(affine)[:3, :3]).argmax(axis=0))]
    centre = _centre(brain)
    magnitude = np.linalg.norm(disp, axis=-1)
    vmax = float(np.percentile(magnitude[brain], 99)) if brain.any() else float(magnitude.max())
    fig, axes = _figure(title)
    image = None
    # in-plane world axes (0: R, 1: A, 2: S) of the axial, sagittal and coronal panels
    for ax, mag, plane, (a, b) in zip(axes, _planes(magnitude, centre), range(3), ((0, 1), (1, 2), (0, 2))):
        image = ax.imshow(mag, cmap="magma", vmin=0.0, vmax=max(vmax, 1e-6), origin="lower", interpolation="nearest")
        u = _planes(disp, centre)[plane]
        rows, cols = np.mgrid[0:mag.shape[0], 0:mag.shape[1]].astype(np.float32)
        for axis, coords in ((a, cols * zooms[a]), (b, rows * zooms[b])):
            moved = coords + u[..., axis]
            levels = np.arange(np.floor(moved.min() / GRID_MM), np.ceil(moved.max() / GRID_MM) + 1) * GRID_MM
            ax.contour(moved, levels=levels, colors="w", linewidths=0.4, alpha=0.8)
        ax.contour(_planes(brain, centre)[plane], levels=[0.5], colors="c", linewidths=0.8)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="|u| (mm)")
    return fig


def write_pair_figures(paths, row: dict, fixed_t1w, fixed_mask: np.ndarray, moving_t1w, moving_mask: np.ndarray | None,
                       forward) -> dict[str, str]:
    """Write the three reportlets of one pair (``paths``: :class:`~smgic_pydra.bids.derivatives.PairFigurePaths`).

    row: the pair's evaluated row (``method, fixed, moving, files, dice_mean, folding_percent``);
    fixed_t1w / moving_t1w: the source T1w images (nibabel), masked here by their brain masks
    (bool, native grids) as the registration saw them; forward: ``(disp (X, Y, Z, 3) RAS mm,
    affine)`` of the forward warp on the fixed grid. Returns role -> path.
    """
    import nibabel as nib

    title = pair_title(row)
    fixed_data = np.asarray(fixed_t1w.dataobj, dtype=np.float32) * fixed_mask
    fixed = nib.Nifti1Image(fixed_data, fixed_t1w.affine)
    moving_data = np.asarray(moving_t1w.dataobj, dtype=np.float32)
    moving = nib.Nifti1Image(moving_data * moving_mask if moving_mask is not None else moving_data, moving_t1w.affine)
    warped = nib.load(row["files"]["warped"])
    write_registration_svg(paths.registration, fixed, fixed_mask, moving, warped, row["method"])
    jacobian = np.asarray(nib.load(row["files"]["jacobian"]).dataobj)
    _save_svg(jacobian_figure(jacobian, fixed_t1w.affine, fixed_mask, f"Jacobian determinant, {title}"), paths.jacobian)
    disp, affine = forward
    _save_svg(displacement_figure(disp, affine, fixed_mask, f"Displacement, {title}"), paths.displacement)
    return paths.as_dict()
