"""Slices and SVG mosaics of anatomical images for the reportlets (matplotlib + lxml).

Volumes are first put in RAS voxel order (:func:`canonical`; values unchanged), so every panel is
drawn in the neurological convention: the subject's right on the panel's right, anterior / superior
up. Only the drawn slices are ever resampled or thresholded, so a 1 mm image costs about as much as
a 3 mm one. A mosaic has one row per plane (axial, sagittal, coronal), ``CUTS`` slices each, grey
image and coloured outlines of binary masks; a mosaic is one ``<svg>`` element (lxml), stacked with
others (and, for a before / after pair, made to flicker) as nireports' ``compose_view`` does for
fMRIPrep's reports (:func:`composed_svg`, the same document).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import uuid4

import numpy as np

SVG_NAMESPACES = {None: "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}
FLICKER_STYLE = """\
<style type="text/css">
@keyframes flickerAnimation{0} {{ 0% {{opacity: 1;}} 100% {{ opacity: 0; }}}}
.foreground-svg {{ animation: 1s ease-in-out 0s alternate none infinite paused flickerAnimation{0};}}
.foreground-svg:hover {{ animation-play-state: running;}}
</style>"""
"""The CSS of a before / after figure: the foreground panels fade in and out while the pointer is over them."""
PLANES = ("z", "x", "y")
"""Rows of a mosaic: axial (z), sagittal (x), coronal (y)."""
CUTS = 3
"""Slices per plane."""
PANEL_INCHES = 2.2
"""Height of a mosaic row and width of one slice (inches, at 100 dpi)."""
AXIS_OF = {"x": 0, "y": 1, "z": 2}
PANEL_AXES = {"z": (0, 1), "x": (1, 2), "y": (0, 2)}
"""Volume axes along a plane's panel columns and rows (see :func:`plane_slice`)."""
MARGIN = 0.08
"""Margin around the brain's bounding box in a mosaic, as a fraction of its size."""
ORIENTATION = {"z": ("L", "R"), "x": ("P", "A"), "y": ("L", "R")}
"""Letters at the left and right edges of a plane's panels (RAS panels: the subject's right on the right)."""
HEADER_INCHES = 0.42
"""Height of a mosaic's header (its label and colour key) above the panels."""


@dataclass
class Canonical:
    """A volume in RAS voxel order: ``data (X, Y, Z[, C])``, ``affine`` (RAS voxel -> RAS mm) and voxel sizes (mm)."""

    data: np.ndarray
    affine: np.ndarray

    @property
    def zooms(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def canonical(data: np.ndarray, affine) -> Canonical:
    """``data`` (3-D, or 3-D plus trailing axes) in RAS voxel order, with its affine (nibabel orientations)."""
    import nibabel as nib

    affine = np.asarray(affine, dtype=np.float64)
    ornt = nib.orientations.io_orientation(affine)
    out = nib.orientations.apply_orientation(np.asarray(data), ornt)
    return Canonical(out, affine @ nib.orientations.inv_ornt_aff(ornt, np.asarray(data).shape[:3]))


def bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` voxel indices (inclusive) of the mask's bounding box; the whole volume when empty."""
    idx = np.argwhere(mask)
    if not idx.size:
        return np.zeros(3, dtype=int), np.asarray(mask.shape[:3]) - 1
    return idx.min(axis=0), idx.max(axis=0)


def cut_indices(mask: np.ndarray, cuts: int = CUTS) -> dict[str, list[int]]:
    """Voxel indices per plane (``x``, ``y``, ``z`` of a RAS volume): ``cuts`` equi-spaced slices
    inside the mask's bounding box (ends excluded), the whole volume when the mask is empty."""
    lo, hi = bounding_box(mask)
    return {p: [int(round(v)) for v in np.linspace(lo[a], hi[a], cuts + 2)[1:-1]] for p, a in AXIS_OF.items()}


def plane_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Slice ``index`` of ``plane`` of a RAS volume as ``(rows, columns[, C])`` for
    ``imshow(origin="lower")``: axial rows A / columns R, sagittal S / A, coronal S / R."""
    taken = volume[(slice(None),) * AXIS_OF[plane] + (int(index),)]  # a view (np.take would copy the volume)
    return np.ascontiguousarray(taken.swapaxes(0, 1))


def plane_aspect(zooms, plane: str) -> float:
    """``imshow`` aspect (row spacing / column spacing) of a plane."""
    cols, rows = PANEL_AXES[plane]
    return float(zooms[rows] / zooms[cols])


def plane_world_points(vol: Canonical, plane: str, index: int) -> np.ndarray:
    """RAS mm of the voxel centres of a slice, ``(rows, columns, 3)`` as :func:`plane_slice` lays them out."""
    from ..worldspace.sampling import apply_affine

    axes = [np.arange(n, dtype=np.float64) for n in vol.data.shape[:3]]
    axes[AXIS_OF[plane]] = np.array([float(index)])
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return plane_slice(apply_affine(vol.affine, ijk), plane, 0)


def sample_slices(data, affine, ref: Canonical, cuts: dict, disp: Canonical | None = None) -> dict:
    """An image (``data`` on grid ``affine``) sampled trilinearly (0 outside) at the voxel centres
    ``x`` of the slices ``cuts`` of ``ref``, or at ``x + u(x)`` with ``disp`` (RAS mm, RAS volume on
    ``ref``'s grid: the pull-back of a warp): ``{plane: [2-D float32 arrays]}``."""
    from scipy import ndimage

    from ..worldspace.sampling import apply_affine

    to_index = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    out = {}
    for plane in PLANES:
        out[plane] = []
        for index in cuts[plane]:
            points = plane_world_points(ref, plane, index)
            if disp is not None:
                points = points + plane_slice(disp.data, plane, index)
            coords = np.moveaxis(apply_affine(to_index, points), -1, 0)
            out[plane].append(ndimage.map_coordinates(data, coords, order=1, mode="constant", cval=0.0,
                                                      output=np.float32))
    return out


def take_slices(vol: Canonical, cuts: dict) -> dict:
    """``{plane: [2-D arrays]}`` of a RAS volume at ``cuts``."""
    return {p: [plane_slice(vol.data, p, i) for i in cuts[p]] for p in PLANES}


def white_matter_threshold(t1w_in_brain: np.ndarray, iterations: int = 20, sample: int = 200_000) -> float:
    """Intensity above which a brain voxel counts as white matter: the midpoint between the two
    brightest of three classes of a 1-D k-means (started at the 10th / 50th / 90th percentiles) on
    at most ``sample`` evenly spaced brain intensities."""
    values = np.asarray(t1w_in_brain, dtype=np.float64).ravel()
    values = values[:: max(1, values.size // sample)]
    if values.size < 3:
        return float("inf")
    centres = np.percentile(values, [10.0, 50.0, 90.0])
    for _ in range(iterations):
        classes = np.searchsorted((centres[1:] + centres[:-1]) / 2.0, values)
        new = np.array([values[classes == c].mean() if np.any(classes == c) else centres[c] for c in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    return float((centres[1] + centres[2]) / 2.0)


def _svg_text(fig) -> str:
    """The ``<svg>`` element of a matplotlib figure, sized by its viewBox only (scales to its box)."""
    from .svg import figure_svg

    text = figure_svg(fig, facecolor="k")
    text = text[text.index("<svg"):]
    return re.sub(r' (width|height)="[0-9.]+pt"', "", text, count=2)


def mark_orientation(ax, plane: str, color: str = "w") -> None:
    """Write the :data:`ORIENTATION` letters of ``plane`` at the left and right edges of a panel (SVG
    group ids ``orientation:<plane>:<letter>``)."""
    for x, letter, align in zip((0.02, 0.98), ORIENTATION[plane], ("left", "right")):
        ax.text(x, 0.5, letter, transform=ax.transAxes, color=color, fontsize=8, fontweight="bold", ha=align,
                va="center", gid=f"orientation:{plane}:{letter}")


def mosaic_svg(images: dict, contours: list, zooms, box, div_id: str, label: str | None = None,
               vmax: float | None = None, key: list | None = None):
    """One ``<svg>`` element (lxml), one row per plane: the grey slices of ``images`` (``{plane: [2-D]}``)
    with the outlines of ``contours`` (``[({plane: [2-D bool]}, matplotlib colour)]``), cropped to
    ``box`` (:func:`bounding_box` of the brain, widened by ``MARGIN``), the orientation letters on the
    first panel of each row; ``label`` and ``key`` (``[(matplotlib colour, text)]``: what each outline
    colour shows) are written in a header above the panels (group ids ``mosaic-label`` and
    ``key:<n>``); grey scale 0..``vmax`` (default: 99.5th percentile of the slices)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lxml import etree

    if vmax is None:
        values = np.concatenate([s.ravel() for p in PLANES for s in images[p]])
        values = values[values > 0]
        vmax = float(np.percentile(values, 99.5)) if values.size else 1.0
    lo, hi = (np.asarray(b, dtype=float) for b in box)
    pad = (hi - lo + 1) * MARGIN
    lo, hi = lo - pad - 0.5, hi + pad + 0.5
    mm = (hi - lo) * np.asarray(zooms, dtype=float)  # extent of the box along each axis, mm
    heights = [mm[PANEL_AXES[p][1]] / mm[PANEL_AXES[p][0]] for p in PLANES]  # row height / slice width
    header = HEADER_INCHES if label or key else 0.0
    total = sum(heights) * PANEL_INCHES + header
    fig, axes = plt.subplots(len(PLANES), CUTS, figsize=(CUTS * PANEL_INCHES, total),
                             facecolor="k", squeeze=False, gridspec_kw={"height_ratios": heights})
    fig.subplots_adjust(0, 0, 1, 1 - header / total, 0.02, 0.02)
    for plane, row in zip(PLANES, axes):
        mark_orientation(row[0], plane)
        cols, rows = PANEL_AXES[plane]
        for n, ax in enumerate(row):
            ax.set_axis_off()
            ax.imshow(images[plane][n], cmap="gray", vmin=0.0, vmax=max(vmax, 1e-6), origin="lower",
                      interpolation="nearest", aspect=plane_aspect(zooms, plane))
            for masks, color in contours:
                if masks[plane][n].any():
                    ax.contour(masks[plane][n].astype(np.float32), levels=[0.5], colors=color, linewidths=0.6)
            ax.set_xlim(lo[cols], hi[cols])
            ax.set_ylim(lo[rows], hi[rows])
    if label:
        fig.text(0.01, 1 - 0.04 / total, label, color="w", fontsize=9, va="top", gid="mosaic-label")
    for n, (color, text) in enumerate(key or []):
        fig.text(0.01 + n * 0.42, 1 - 0.24 / total, f"\u2014 {text}", color=color, fontsize=8, va="top",
                 fontweight="bold", gid=f"key:{n}")
    text = _svg_text(fig).replace('id="figure_1"', f'id="{div_id}-{uuid4()}"', 1)
    return etree.fromstring(text.encode(), parser=etree.XMLParser(huge_tree=True))


def composed_svg(panels: list, after: list | None = None) -> str:
    """One SVG document of ``panels`` (:func:`mosaic_svg` elements) stacked top to bottom, each scaled to
    the first one's width (``viewBox`` units); ``after`` (as many panels) lie over them in a group
    ``foreground-svg`` that flickers (:data:`FLICKER_STYLE`) over the group ``background-svg``: the
    document nireports' ``compose_view`` writes. The panels' elements move into it."""
    from lxml import etree

    after = after or []
    figures = panels + after
    sizes = np.array([[int(float(v)) for v in f.get("viewBox").split(" ")[2:4]] for f in figures])
    width = sizes[0, 0]
    scales = width / sizes[:, 0]
    heights = sizes[:, 1] * scales
    root = etree.Element("{%s}svg" % SVG_NAMESPACES[None], nsmap=SVG_NAMESPACES)
    root.set("version", "1.1")
    root.set("viewBox", f"0 0 {float(width)} {float(heights[:len(panels)].sum())}")
    root.set("preserveAspectRatio", "xMidYMid meet")
    groups, y = [], 0
    for i, figure in enumerate(figures):
        group = etree.Element("{%s}g" % SVG_NAMESPACES[None], attrib=(
            {"class": figure.get("class")} if "class" in figure.attrib else None))
        group.extend(list(figure))
        group.set("transform", f"translate(0, {y}) scale({scales[i]} {scales[i]}) ")
        y = 0 if i == len(panels) - 1 else y + heights[i]
        groups.append(group)
    if after:
        layers = []
        for members, name in ((groups[:len(panels)], "background-svg"), (groups[len(panels):], "foreground-svg")):
            layers.append(etree.Element("{%s}g" % SVG_NAMESPACES[None], attrib={"class": name}))
            layers[-1].extend(members)
        groups = layers
    etree.SubElement(root, "{%s}g" % SVG_NAMESPACES[None]).extend(groups)
    lines = etree.tostring(root, xml_declaration=True, standalone=True, pretty_print=True).decode().splitlines()[1:]
    if after:
        lines.insert(2, FLICKER_STYLE.format(uuid4()))
    return "\n".join(lines)


def write_composed_svg(path, panels: list, after: list | None = None) -> None:
    """Write :func:`composed_svg` of the panels to ``path``, atomically.

    With ``after`` (as many panels), those lie over ``panels`` and flicker when the pointer is over
    the figure: the before / after view of fMRIPrep's registration reportlets.
    """
    from ..io.atomic import atomic_path

    text = composed_svg(panels, after)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
