"""Reportlets of one registered pair and method (written by the participant level).

* registration: the fixed image's tissue boundaries (brain in ``BRAIN_COLOR``, white matter in
  ``WHITE_COLOR``, named in the figure's key) over the moving image before registration (identity:
  sampled on the fixed grid by world coordinates, no transform) and after it (the warped image);
  the after view, headed by the pair and its Dice, flickers over the before one when the pointer
  is over the figure (nireports' ``compose_view``, as in fMRIPrep);
* jacobian: det(I + du/dx) of the forward warp in the fixed brain over the fixed image on three
  planes through the brain's centre, folded voxels (det <= 0) in ``FOLD_COLOR``;
* displacement: |u| of the forward warp in mm in the fixed brain over the fixed image, coloured up
  to its 99th percentile in the whole brain (:func:`displacement_range`; larger values saturate,
  the colour bar says so), with the deformation grid (lines of constant in-plane ``x + u(x)``,
  every ``GRID_MM`` mm) and the brain's outline.

Every figure is drawn on the fixed image's grid in RAS order (see :mod:`.anatomy`), with the
orientation letters (L / R, P / A) on its panels. The numbers in the titles (Dice, folding) are the
pair's row, the row that goes into ``pairs.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..methods import report_label
from .anatomy import (MARGIN, PLANES, Canonical, bounding_box, canonical, cut_indices, mark_orientation, mosaic_svg,
                      plane_aspect, plane_slice, sample_slices, take_slices, white_matter_threshold,
                      write_composed_svg)

GRID_MM = 8.0
"""Spacing of the drawn deformation grid lines (mm)."""
DISPLACEMENT_PERCENTILE = 99.0
"""The displacement colours run from 0 to this percentile of |u| in the fixed brain."""
BRAIN_COLOR, WHITE_COLOR = "red", "deepskyblue"
"""Outlines of the fixed brain and of its white matter in the registration reportlet."""
FOLD_COLOR = "lime"
PANEL_INCHES = 2.4
"""Size of one plane's panel in the Jacobian and displacement figures (inches)."""


def _metric(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pair_title(row: dict) -> str:
    """``"<method>: <moving> -> <fixed>"`` with the row's Dice and folding."""
    return (f"{report_label(row['method'])}: {row['moving']} -> {row['fixed']}  (Dice {_metric(row.get('dice_mean'))}, "
            f"folding {_metric(row.get('folding_percent'))} %)")


def registration_labels(row: dict) -> tuple[str, str, list]:
    """``(before label, after label, key)`` of the registration reportlet of a pair's row: the pair
    (moving -> fixed), the method and the row's Dice, and what each outline colour shows."""
    pair = f"{row['moving']} -> {row['fixed']}"
    key = [(BRAIN_COLOR, f"fixed brain ({row['fixed']})"), (WHITE_COLOR, f"fixed white matter ({row['fixed']})")]
    return (f"before (no registration): {pair}, moving image on the fixed grid",
            f"after ({report_label(row['method'])}): {pair}, Dice {_metric(row.get('dice_mean'))}", key)


def write_registration_svg(path, fixed: Canonical, brain: Canonical, moving: np.ndarray, moving_affine,
                           disp: Canonical, row: dict) -> Path:
    """The before / after reportlet of a pair's ``row`` (:func:`registration_labels`). fixed / brain:
    the fixed T1w and bool brain mask (RAS volumes); moving: the moving T1w masked to its brain
    (``moving_affine``); disp: the forward warp (RAS mm, RAS volume on the fixed grid). Before: the
    moving image at the fixed voxels' world points; after: at ``x + u(x)``, as the warped output is
    made (trilinear)."""
    cuts = cut_indices(brain.data)
    brain_slices = take_slices(brain, cuts)
    fixed_slices = {p: [s * b for s, b in zip(v, brain_slices[p])] for p, v in take_slices(fixed, cuts).items()}
    threshold = white_matter_threshold(np.concatenate([s[b] for p in PLANES
                                                       for s, b in zip(fixed_slices[p], brain_slices[p])]))
    white = {p: [(s > threshold) & b for s, b in zip(fixed_slices[p], brain_slices[p])] for p in PLANES}
    contours = [(brain_slices, BRAIN_COLOR), (white, WHITE_COLOR)]
    before = sample_slices(moving, moving_affine, fixed, cuts)
    after = sample_slices(moving, moving_affine, fixed, cuts, disp)
    box = bounding_box(brain.data)
    before_label, after_label, key = registration_labels(row)
    panels = mosaic_svg(before, contours, fixed.zooms, box, "before", before_label, key=key)
    overlay = mosaic_svg(after, contours, fixed.zooms, box, "after", after_label, key=key)
    write_composed_svg(path, [panels], [overlay])
    return Path(path)


def centre_jacobians(disp: Canonical, centre) -> list[np.ndarray]:
    """det(I + du/dx) on the slices of ``PLANES`` through ``centre`` of a RAS displacement volume,
    from a three-slice slab each (central differences, one-sided at the border: the values of
    :func:`~smgic_pydra.transforms.jacobian.jacobian_determinant` on the whole field)."""
    from ..transforms.jacobian import jacobian_determinant

    out = []
    for plane in PLANES:
        axis, index = "xyz".index(plane), centre["xyz".index(plane)]
        lo, hi = max(index - 1, 0), min(index + 2, disp.data.shape[axis])
        slab = np.moveaxis(np.moveaxis(disp.data, axis, 0)[lo:hi], 0, axis)
        det = jacobian_determinant(slab, disp.affine)
        out.append(plane_slice(det, plane, index - lo))
    return out


def _centre(mask: np.ndarray) -> tuple[int, int, int]:
    idx = np.argwhere(mask)
    if idx.size == 0:
        return tuple(int(n) // 2 for n in mask.shape)
    return tuple(int(v) for v in np.round(idx.mean(axis=0)))


def _centre_slices(volume: np.ndarray, centre) -> list[np.ndarray]:
    """The slices of ``PLANES`` through ``centre`` of a RAS volume."""
    return [plane_slice(volume, p, centre["xyz".index(p)]) for p in PLANES]


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(3 * PANEL_INCHES, PANEL_INCHES + 0.5), layout="constrained")
    fig.suptitle(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def _anatomy_panel(ax, plane: str, anatomy: np.ndarray, inside: np.ndarray, zooms, grey_max: float) -> float:
    """Draw the fixed image's slice in grey, cropped to the brain's box (``MARGIN`` around it), with the
    orientation letters; returns the panel's ``imshow`` aspect."""
    aspect = plane_aspect(zooms, plane)
    ax.imshow(anatomy, cmap="gray", vmin=0.0, vmax=max(grey_max, 1e-6), origin="lower", interpolation="nearest",
              aspect=aspect)
    rows, cols = np.nonzero(inside)
    if rows.size:
        for lo, hi, limit in ((cols.min(), cols.max(), ax.set_xlim), (rows.min(), rows.max(), ax.set_ylim)):
            pad = (hi - lo + 1) * MARGIN
            limit(lo - pad - 0.5, hi + pad + 0.5)
    mark_orientation(ax, plane)
    return aspect


def _grey_max(anatomy: Canonical, brain: np.ndarray) -> float:
    """The grey scale's top: the 99.5th percentile of the fixed image in its brain."""
    values = np.asarray(anatomy.data)[brain]
    return float(np.percentile(values, 99.5)) if values.size else float(np.max(anatomy.data))


def save_svg(fig, path) -> Path:
    """Save a matplotlib figure as SVG (:func:`~.svg.figure_svg`), atomically, and close it."""
    from ..io.atomic import atomic_path
    from .svg import figure_svg

    text = figure_svg(fig)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def jacobian_figure(disp: Canonical, brain: np.ndarray, title: str, anatomy: Canonical):
    """Matplotlib figure of the Jacobian determinant of a RAS displacement volume in the brain
    (colours 0..2 around 1, over the fixed image ``anatomy`` in grey) on three planes through the
    brain's centre, folded voxels (det <= 0) in ``FOLD_COLOR`` (their images carry the gid
    ``folded:<plane>``)."""
    from matplotlib.colors import ListedColormap, TwoSlopeNorm

    fig, axes = _figure(title)
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0)
    centre = _centre(brain)
    grey = _grey_max(anatomy, brain)
    image = None
    for ax, plane, det, inside, t1 in zip(axes, PLANES, centre_jacobians(disp, centre), _centre_slices(brain, centre),
                                          _centre_slices(anatomy.data, centre)):
        aspect = _anatomy_panel(ax, plane, t1, inside, disp.zooms, grey)
        image = ax.imshow(np.where(inside, det, np.nan), cmap="RdBu_r", norm=norm, origin="lower",
                          interpolation="nearest", aspect=aspect, alpha=0.7)
        ax.imshow(np.ma.masked_where(det > 0, np.ones_like(det)), cmap=ListedColormap([FOLD_COLOR]), origin="lower",
                  interpolation="nearest", aspect=aspect, gid=f"folded:{plane}")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="det(J) in the brain")
    return fig


def displacement_range(disp: Canonical, brain: np.ndarray) -> float:
    """The top of the displacement colours (mm): the ``DISPLACEMENT_PERCENTILE`` of |u| over every voxel of
    the fixed brain (every voxel when the mask is empty)."""
    vectors = disp.data[brain] if brain.any() else disp.data.reshape(-1, 3)
    return float(np.percentile(np.linalg.norm(vectors, axis=-1), DISPLACEMENT_PERCENTILE))


def displacement_figure(disp: Canonical, brain: np.ndarray, title: str, anatomy: Canonical):
    """Matplotlib figure of |u| (mm) in the brain over the fixed image ``anatomy`` (grey) on three
    planes through the brain's centre, coloured from 0 to :func:`displacement_range`, with the
    deformation grid (contour lines of the in-plane world coordinates of ``x + u(x)``, white) and
    the brain's outline (cyan). disp: RAS volume ``(X, Y, Z, 3)`` of RAS mm displacements."""
    centre = _centre(brain)
    fields, insides = _centre_slices(disp.data, centre), _centre_slices(brain, centre)
    magnitudes = [np.linalg.norm(u, axis=-1) for u in fields]
    vmax = max(displacement_range(disp, brain), 1e-6)
    grey = _grey_max(anatomy, brain)
    fig, axes = _figure(title)
    image = None
    zooms = disp.zooms
    in_plane = {"z": (0, 1), "x": (1, 2), "y": (0, 2)}  # world axes of the panel's columns and rows
    for ax, plane, mag, u, inside, t1 in zip(axes, PLANES, magnitudes, fields, insides,
                                             _centre_slices(anatomy.data, centre)):
        aspect = _anatomy_panel(ax, plane, t1, inside, zooms, grey)
        image = ax.imshow(np.where(inside, mag, np.nan), cmap="magma", vmin=0.0, vmax=vmax, origin="lower",
                          interpolation="nearest", aspect=aspect, alpha=0.8, gid=f"displacement:{plane}")
        rows, cols = np.mgrid[0:mag.shape[0], 0:mag.shape[1]].astype(np.float32)
        col_axis, row_axis = in_plane[plane]
        for axis, coords in ((col_axis, cols * zooms[col_axis]), (row_axis, rows * zooms[row_axis])):
            moved = coords + u[..., axis]
            levels = np.arange(np.floor(moved.min() / GRID_MM), np.ceil(moved.max() / GRID_MM) + 1) * GRID_MM
            ax.contour(moved, levels=levels, colors="w", linewidths=0.4, alpha=0.8)
        ax.contour(inside.astype(np.float32), levels=[0.5], colors="c", linewidths=0.8)
    saturated = any(bool(np.any(m[b] > vmax)) for m, b in zip(magnitudes, insides))
    fig.colorbar(image, ax=list(axes), shrink=0.8, extend="max" if saturated else "neither", label="|u| (mm)")
    fig.supxlabel(f"colours up to the {DISPLACEMENT_PERCENTILE:g}th percentile of |u| in the fixed brain: "
                  f"{vmax:.1f} mm", fontsize=8, gid="displacement-range")
    return fig


def write_pair_figures(paths, row: dict, fixed_t1w, fixed_mask: np.ndarray, moving_t1w, moving_mask: np.ndarray | None,
                       forward) -> dict[str, str]:
    """Write the three reportlets of one pair (``paths``: :class:`~smgic_pydra.bids.derivatives.PairFigurePaths`).

    row: the pair's evaluated row (``method, fixed, moving, dice_mean, folding_percent``);
    fixed_t1w / moving_t1w: the source T1w images (nibabel) and their brain masks (bool, native
    grids; the moving image is drawn masked, as the registration saw it); forward:
    ``(disp (X, Y, Z, 3) RAS mm, affine)`` of the forward warp on the fixed grid. Only the drawn
    slices are resampled. Returns role -> path.
    """
    title = pair_title(row)
    brain = canonical(np.asarray(fixed_mask, dtype=bool), fixed_t1w.affine)
    fixed = canonical(np.asanyarray(fixed_t1w.dataobj), fixed_t1w.affine)
    moving = np.asarray(moving_t1w.dataobj, dtype=np.float32)
    if moving_mask is not None:
        moving *= moving_mask
    disp = canonical(*forward)
    write_registration_svg(paths.registration, fixed, brain, moving, moving_t1w.affine, disp, row)
    save_svg(jacobian_figure(disp, brain.data, f"Jacobian determinant, {title}", fixed), paths.jacobian)
    save_svg(displacement_figure(disp, brain.data, f"Displacement, {title}", fixed), paths.displacement)
    return paths.as_dict()
