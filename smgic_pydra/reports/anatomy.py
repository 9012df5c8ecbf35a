"""Anatomical reportlets with nilearn / nireports: mosaics of three planes with contours, SVG text.

Images are nibabel images in RAS millimetres (any voxel orientation); nilearn draws them in world
space, so images on one grid line up across panels. Contours are drawn at the 0.5 level of binary
masks. The SVGs come from nireports (``extract_svg``, ``compose_view``): one ``<svg>`` per plane,
and for a before / after pair one SVG whose foreground (after) flickers over the background
(before) when the pointer is over it, as in fMRIPrep's reports.
"""

from __future__ import annotations

from uuid import uuid4

import numpy as np

PLANES = ("z", "x", "y")
"""nilearn display modes, in the order of the panels: axial, sagittal, coronal."""
CUTS = 3
"""Slices per plane."""
CONTOUR_COLORS = ("r", "b", "y")
PANEL_INCHES = 2.2
"""Height of a plane's row and width of one slice in the mosaics (inches, at 100 dpi)."""
"""Colours of the contours, in the order they are given."""


def _matplotlib_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def tissue_masks(t1w: np.ndarray, brain: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(brain, white matter)`` boolean masks for the contours of a T1w image.

    White matter: the brightest of three intensity classes in the brain (1-D k-means started at the
    10th / 50th / 90th percentiles), the tissue boundary that fMRIPrep's reports draw in blue.
    t1w: ``(X, Y, Z)`` intensities; brain: ``(X, Y, Z)`` bool.
    """
    brain = np.asarray(brain, dtype=bool)
    values = np.asarray(t1w, dtype=np.float32)[brain]
    if values.size < 3:
        return brain, np.zeros_like(brain)
    centres = np.percentile(values, [10.0, 50.0, 90.0]).astype(np.float64)
    for _ in range(iterations):
        edges = (centres[1:] + centres[:-1]) / 2.0
        classes = np.searchsorted(edges, values)
        new = np.array([values[classes == c].mean() if np.any(classes == c) else centres[c] for c in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    threshold = (centres[1] + centres[2]) / 2.0
    return brain, brain & (np.asarray(t1w) > threshold)


def cut_coords(mask_img) -> dict[str, list[float]]:
    """RAS mm slice positions per plane (``CUTS`` each), spread over the mask (nireports' ``cuts_from_bbox``)."""
    from nireports.reportlets.utils import cuts_from_bbox

    return cuts_from_bbox(mask_img, cuts=CUTS)


def mosaic_svgs(img, contours, cuts: dict, div_id: str, label: str | None = None) -> list:
    """One nireports SVG figure per plane of ``PLANES``: ``img`` in grey with the outlines of
    ``contours`` (binary images, coloured by ``CONTOUR_COLORS``); ``label`` titles the first plane."""
    _matplotlib_agg()
    import matplotlib.pyplot as plt
    import nibabel as nib
    from nilearn.plotting import plot_anat
    from nireports._vendored.svgutils.transform import fromstring
    from nireports.reportlets.utils import extract_svg

    img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    data = np.asarray(img.dataobj)
    inside = data[data > 0]
    vmax = float(np.percentile(inside, 99.5)) if inside.size else 1.0
    out = []
    for i, mode in enumerate(PLANES):
        figure = plt.figure(figsize=(CUTS * PANEL_INCHES, PANEL_INCHES))
        display = plot_anat(img, figure=figure, display_mode=mode, cut_coords=cuts[mode], title=label if i == 0 else None,
                            colorbar=False, annotate=False, draw_cross=False, black_bg=True, vmin=0.0, vmax=vmax,
                            dim=0)
        for contour, color in zip(contours, CONTOUR_COLORS):
            display.add_contours(contour, colors=color, levels=[0.5], linewidths=0.6)
        svg = extract_svg(display, dpi=100, compress=False)
        display.close()
        out.append(fromstring(svg.replace("figure_1", f"{div_id}-{mode}-{uuid4()}", 1)))
    return out


def write_composed_svg(path, panels: list, after: list | None = None) -> None:
    """Write one SVG of the panels stacked vertically (nireports' ``compose_view``), atomically.

    With ``after`` (one panel per plane too), those lie over ``panels`` and flicker when the
    pointer is over the figure: the before / after view of fMRIPrep's registration reportlets.
    """
    from nireports.reportlets.utils import compose_view

    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        compose_view(panels, after or [], out_file=tmp)


def binary_img(mask: np.ndarray, affine):
    """A uint8 nibabel image of a boolean mask."""
    import nibabel as nib

    return nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), affine)
