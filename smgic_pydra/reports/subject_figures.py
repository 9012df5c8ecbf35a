"""The preparation reportlet of one subject: its brain mask (red) and the network's field of view
(yellow) over the source T1w, three planes, so a bad skull strip or a brain cut by the field of
view is seen at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .anatomy import (PLANES, bounding_box, canonical, cut_indices, mosaic_svg, plane_world_points, take_slices,
                      write_composed_svg)


def field_of_view_slices(vol, cuts: dict, net_affine, grid_shape) -> dict:
    """``{plane: [2-D bool]}``: the voxels of the slices ``cuts`` of the RAS volume ``vol`` whose
    centre lies inside the network grid (``net_affine``: network index -> RAS mm; voxel centres
    ``0 .. N - 1`` widened by half a voxel, the volume the network sees)."""
    from ..worldspace.sampling import apply_affine

    to_net = np.linalg.inv(np.asarray(net_affine, dtype=np.float64))
    upper = np.asarray(grid_shape, dtype=np.float64) - 0.5
    out = {}
    for plane in PLANES:
        out[plane] = []
        for index in cuts[plane]:
            idx = apply_affine(to_net, plane_world_points(vol, plane, index))
            out[plane].append(np.all((idx >= -0.5) & (idx <= upper), axis=-1))
    return out


def write_subject_figure(path, subject) -> Path:
    """The preparation reportlet of a :class:`~smgic_pydra.preparation.PreparedSubject` (SVG, atomic)."""
    import nibabel as nib

    t1w = nib.load(subject.source_files["t1"])
    data = np.asarray(t1w.dataobj, dtype=np.float32)
    brain = subject.native_mask if subject.native_mask is not None else data > 0
    vol, mask = canonical(data, t1w.affine), canonical(np.asarray(brain, dtype=bool), t1w.affine)
    cuts = cut_indices(mask.data)
    contours = [(take_slices(mask, cuts), "r"),
                (field_of_view_slices(vol, cuts, subject.net_affine, subject.grid_shape), "y")]
    grid = "x".join(str(n) for n in subject.grid_shape)
    label = f"{subject.subject_id}: brain mask (red), network field of view {grid} (yellow)"
    lo, hi = bounding_box(mask.data)  # the brain and a quarter of its size around it (the head), within the image
    box = (np.maximum(0, lo - (hi - lo) // 4), np.minimum(np.asarray(vol.data.shape[:3]) - 1, hi + (hi - lo) // 4))
    write_composed_svg(path, [mosaic_svg(take_slices(vol, cuts), contours, vol.zooms, box, "preparation", label)])
    return Path(path)
