"""The network's grid chosen from the pair (smgic_pydra.inference.network_grid): the rule on real headers."""

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.inference.network_grid import native_voxel_mm, network_top_level
from smgic_pydra.pipeline_settings import PipelineSettings


def _affine(zooms, degrees=0.0):
    """A nibabel header's affine with voxel sizes ``zooms`` (mm), rotated about S by ``degrees``."""
    header = nib.Nifti1Header()
    header.set_data_shape((10, 10, 10))
    header.set_zooms(zooms)
    rotation = np.eye(4)
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rotation[:2, :2] = [[c, -s], [s, c]]
    return rotation @ header.get_base_affine()


@pytest.mark.parametrize("zooms_a, zooms_b, level", [
    ((3.0, 3.0, 3.0), (3.0, 3.0, 3.0), 3),    # both at level 3's voxel (2 x 1.5 mm): level 4 has nothing to align
    ((2.9, 2.9, 2.9), (3.5, 3.5, 3.5), 3),    # within the 5 % tolerance
    ((3.0, 3.0, 3.0), (1.0, 1.0, 1.0), 4),    # one subject has 1 mm detail
    ((1.0, 1.0, 3.0), (3.0, 3.0, 3.0), 4),    # thick slices, fine in plane: the finest axis counts
    ((2.0, 2.0, 2.0), (2.0, 2.0, 2.0), 4),
])
def test_auto_stops_at_level_3_only_when_both_subjects_are_coarse(zooms_a, zooms_b, level):
    affines = [_affine(zooms_a, 30.0), _affine(zooms_b)]
    assert network_top_level("auto", 1.5, affines) == level
    assert network_top_level("full", 1.5, affines) == 4 and network_top_level("half", 1.5, affines) == 3


def test_voxel_size_of_a_rotated_header_is_its_zoom():
    assert native_voxel_mm(_affine((1.2, 0.9, 3.0), 37.0)) == pytest.approx(0.9)


def test_unknown_grid_is_a_one_line_error():
    with pytest.raises(ValueError, match="network_grid must be one of auto, full, half"):
        PipelineSettings.from_options({"network_grid": "quarter"})
