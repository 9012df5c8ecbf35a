"""ITK/ANTs displacement fields: our writer + our resampler vs ANTs (antspyx, real ANTs 2.5).

A known analytic deformation (15 degree rotation + translation + smooth bump) is written with
``write_itk_displacement`` and applied by ``ants.apply_transforms``; the result must equal our own
``resample_with_displacement`` and the closed-form warped image, for RAS, LIA and oblique fixed
grids with anisotropic voxels. Writing the field with a wrong sign or axis order must fail.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine, from_matvec
from scipy.spatial.transform import Rotation

from smgic_pydra.io import read_itk_displacement, write_itk_composite_h5, write_itk_displacement
from smgic_pydra.transforms import jacobian_determinant
from smgic_pydra.worldspace import resample_with_displacement

ants = pytest.importorskip("ants")

CENTRE = np.array([4.0, -12.0, 10.0])  # RAS mm, centre of the deformation and of the grids
ROT = Rotation.from_rotvec(np.deg2rad(15.0) * np.array([1.0, 2.0, 2.0]) / 3.0).as_matrix()
SHIFT = np.array([3.0, -2.0, 4.0])
BUMP_AMP, BUMP_SIGMA, BUMP_DIR = 4.0, 9.0, np.array([1.0, 0.5, -0.8])
ORIENTATIONS = {
    "RAS": np.eye(3),
    "LIA": np.array([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "oblique": Rotation.from_euler("xyz", [20.0, -10.0, 25.0], degrees=True).as_matrix(),
}
FIXED_SHAPE, FIXED_ZOOMS = (40, 36, 32), np.array([1.3, 1.0, 1.6])


def grid_affine(rotation, zooms, shape, centre=CENTRE):
    """Affine with axis directions ``rotation`` columns, voxel sizes ``zooms``, centred on ``centre``."""
    linear = rotation @ np.diag(zooms)
    return from_matvec(linear, centre - linear @ ((np.array(shape) - 1) / 2.0))


def phi(x):
    """Analytic map fixed -> moving (RAS mm), points ``(..., 3)``."""
    r = x - CENTRE
    g = np.exp(-np.sum(r**2, axis=-1) / (2 * BUMP_SIGMA**2))[..., None]
    return CENTRE + r @ ROT.T + SHIFT + BUMP_AMP * g * BUMP_DIR


def phi_jacobian_det(x):
    r = x - CENTRE
    g = np.exp(-np.sum(r**2, axis=-1) / (2 * BUMP_SIGMA**2))
    grad_g = -(g[..., None] * r) / BUMP_SIGMA**2
    jac = ROT + BUMP_AMP * BUMP_DIR[:, None] * grad_g[..., None, :]
    return np.linalg.det(jac)


def moving_intensity(y):
    """Smooth but strongly varying test image on world points ``(..., 3)``."""
    blobs = [((8, -5, 3), 7.0, 100.0), ((-9, 6, -4), 6.0, 70.0), ((2, 9, 12), 5.0, 50.0), ((-3, -10, -9), 8.0, 80.0)]
    out = 20.0 + 0.5 * y[..., 0] - 0.3 * y[..., 2]
    for c, s, a in blobs:
        out = out + a * np.exp(-np.sum((y - CENTRE - np.array(c)) ** 2, axis=-1) / (2 * s**2))
    return out


def grid_points(affine, shape):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return apply_affine(affine, idx.astype(np.float64))


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """Moving image on its own oblique LAS-ish 1.1 mm grid, large enough to hold phi(fixed grid)."""
    rot = Rotation.from_euler("z", 8, degrees=True).as_matrix() @ np.diag([-1.0, 1.0, 1.0])
    shape = (64, 64, 64)
    affine = grid_affine(rot, np.full(3, 1.1), shape)
    img = nib.Nifti1Image(moving_intensity(grid_points(affine, shape)).astype(np.float32), affine)
    path = tmp_path_factory.mktemp("moving") / "moving.nii.gz"
    nib.save(img, path)
    return nib.load(path), path


def fixed_case(name, tmp_path):
    affine = grid_affine(ORIENTATIONS[name], FIXED_ZOOMS, FIXED_SHAPE)
    path = tmp_path / f"fixed_{name}.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(FIXED_SHAPE, np.float32), affine), path)
    x = grid_points(affine, FIXED_SHAPE)
    return affine, path, x, phi(x) - x


def ants_warp(fixed_path, moving_path, warp_path):
    out = ants.apply_transforms(ants.image_read(str(fixed_path)), ants.image_read(str(moving_path)), [str(warp_path)])
    return out.numpy()


def interior(moving_img, x, disp, margin=2):
    """Fixed voxels whose mapped point lies ``margin`` voxels inside the moving grid."""
    idx = apply_affine(np.linalg.inv(moving_img.affine), x + disp)
    return np.all((idx > margin) & (idx < np.array(moving_img.shape) - 1 - margin), axis=-1)


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_ants_applies_our_warp_like_our_resampler(name, moving, tmp_path):
    moving_img, moving_path = moving
    affine, fixed_path, x, disp = fixed_case(name, tmp_path)
    warp_path = write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)

    ours = resample_with_displacement(moving_img, disp, affine, FIXED_SHAPE, order=1)
    theirs = ants_warp(fixed_path, moving_path, warp_path)
    inside = interior(moving_img, x, disp)
    assert inside.mean() > 0.8
    scale = np.ptp(ours[inside])
    assert scale > 50
    assert np.max(np.abs(ours - theirs)[inside]) < 1e-3 * scale
    # both equal the closed form up to linear-interpolation error of the moving image
    assert np.max(np.abs(ours - moving_intensity(phi(x)))[inside]) < 0.03 * scale

    # a wrong sign (RAS components written as if LPS) or a wrong axis order must be caught
    for wrong in (disp * np.array([-1.0, -1.0, 1.0]), disp[..., [1, 0, 2]]):
        write_itk_displacement(tmp_path / "wrong.nii.gz", wrong, affine)
        bad = ants_warp(fixed_path, moving_path, tmp_path / "wrong.nii.gz")
        assert np.max(np.abs(ours - bad)[inside]) > 0.1 * scale


def test_warp_file_layout_and_round_trip(tmp_path):
    affine = grid_affine(ORIENTATIONS["oblique"], FIXED_ZOOMS, FIXED_SHAPE)
    x = grid_points(affine, FIXED_SHAPE)
    disp = phi(x) - x
    path = write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)
    img = nib.load(path)
    assert img.shape == FIXED_SHAPE + (1, 3)
    assert img.get_data_dtype() == np.float32
    assert img.header.get_intent()[0] == "vector" and int(img.header["intent_code"]) == 1007
    # stored components are LPS: ANTs reads it as a 3-component vector image with the same grid
    field = ants.image_read(str(path))
    assert field.components == 3 and field.has_components
    lps_direction = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3] / FIXED_ZOOMS
    np.testing.assert_allclose(np.array(field.direction), lps_direction, atol=1e-5)
    np.testing.assert_allclose(field.numpy(), disp * np.array([-1.0, -1.0, 1.0]), atol=1e-4)
    back, back_affine = read_itk_displacement(path)
    np.testing.assert_allclose(back, disp, atol=1e-4)
    np.testing.assert_allclose(back_affine, affine, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["warp.nii.gz"]  # no temporary files left


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_jacobian_matches_ants_and_closed_form(name, tmp_path):
    affine, fixed_path, x, disp = fixed_case(name, tmp_path)
    warp_path = write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)
    ours = jacobian_determinant(disp, affine)
    core = (slice(2, -2),) * 3
    np.testing.assert_allclose(ours[core], phi_jacobian_det(x)[core], atol=1e-2)
    domain = ants.image_read(str(fixed_path))
    theirs = ants.create_jacobian_determinant_image(domain, str(warp_path), do_log=False).numpy()
    np.testing.assert_allclose(ours[core], theirs[core], atol=1e-2)


def test_composite_h5_is_read_by_simpleitk_and_ants(moving, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    moving_img, moving_path = moving
    affine, fixed_path, x, disp = fixed_case("oblique", tmp_path)
    h5_path = write_itk_composite_h5(tmp_path / "sub_xfm.h5", disp, affine)

    transform = sitk.ReadTransform(str(h5_path))
    # SimpleITK maps LPS points: check the analytic map at a few fixed voxels
    lps = np.array([-1.0, -1.0, 1.0])
    for point in x[::9, ::9, ::9].reshape(-1, 3):
        mapped = np.array(transform.TransformPoint(tuple(point * lps))) * lps
        np.testing.assert_allclose(mapped, phi(point), atol=1e-6)

    ours = resample_with_displacement(moving_img, disp, affine, FIXED_SHAPE, order=1)
    theirs = ants_warp(fixed_path, moving_path, h5_path)
    inside = interior(moving_img, x, disp)
    assert np.max(np.abs(ours - theirs)[inside]) < 1e-3 * np.ptp(ours[inside])


def test_composite_h5_is_float32_compressed_and_ants_applies_it_as_the_nifti_warp(moving, tmp_path):
    """The .h5 stores float32 behind gzip: ANTs resamples with it exactly as with the .nii.gz warp of the
    same field (both float32 on disk, to rounding), with and without an affine split off first."""
    h5py = pytest.importorskip("h5py")
    from smgic_pydra.worldspace.outputs import residual_after_affine

    moving_img, moving_path = moving
    affine, fixed_path, x, disp = fixed_case("oblique", tmp_path)
    warp_path = write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)
    plain = write_itk_composite_h5(tmp_path / "plain_xfm.h5", disp, affine)
    shift = np.eye(4)
    shift[:3, 3] = [1.5, -2.0, 0.5]
    composite = write_itk_composite_h5(tmp_path / "affine_xfm.h5", residual_after_affine(disp, shift, affine), affine,
                                       prefix_affine=shift)
    with h5py.File(plain) as h5:
        params = h5["TransformGroup/1/TransformParameters"]
        assert params.dtype == np.float32 and params.compression == "gzip"
    assert plain.stat().st_size < 0.8 * disp.size * 4  # float64 uncompressed was 2x this
    reference = ants_warp(fixed_path, moving_path, warp_path)
    # the same float32 values; ANTs holds the .h5's in double, the .nii.gz's in float: rounding only
    np.testing.assert_allclose(ants_warp(fixed_path, moving_path, plain), reference, rtol=0, atol=1e-6 * np.ptp(reference))
    inside = interior(moving_img, x, disp)
    assert np.max(np.abs(ants_warp(fixed_path, moving_path, composite) - reference)[inside]) < 1e-4 * np.ptp(reference)
