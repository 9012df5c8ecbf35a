"""Subject preparation: network-grid placement, intensity normalisation, resampling, reuse, formats.

References are independent: SimpleITK resampling, a brute-force per-label argmax of interpolated
one-hot maps (scipy), closed-form grid placement, and nibabel reorientation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine, from_matvec
from nibabel.orientations import axcodes2ornt, ornt_transform
from scipy import ndimage
from scipy.spatial.transform import Rotation

from smgic_pydra.config import SMGICNetConfig
from smgic_pydra.io import MissingToolError
from smgic_pydra.preparation import PreparedSubject, prepare_subject

CFG = SMGICNetConfig(grid_shape=(48, 32, 64), voxel_size_mm=4.0)
SHAPE = (44, 40, 36)
ZOOMS = np.array([2.0, 2.5, 3.0])


def phantom(rotation=np.eye(3), shape=SHAPE, zooms=ZOOMS, centre=(6.0, -10.0, 14.0)):
    """A head-like phantom: (image, brain mask, labels) arrays and the affine.

    Brain = ellipsoid (radii 30, 36, 27 mm, inside the field of view) with two 'hemispheres'
    (labels 2 / 41), a ventricle (label 4) and a small nucleus (label 10); intensities vary smoothly; background is 0.
    """
    linear = rotation @ np.diag(zooms)
    centre = np.asarray(centre)
    affine = from_matvec(linear, centre - linear @ ((np.array(shape) - 1) / 2.0))
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    r = apply_affine(affine, idx) - centre
    brain = np.sum((r / np.array([30.0, 36.0, 27.0])) ** 2, axis=-1) <= 1.0
    labels = np.where(brain, np.where(r[..., 0] < 0, 2, 41), 0).astype(np.int16)
    labels[brain & (np.sum((r / np.array([6.0, 12.0, 5.0])) ** 2, axis=-1) <= 1.0)] = 4
    labels[brain & (np.sum((r - np.array([14.0, 5.0, 0.0])) ** 2, axis=-1) <= 36.0)] = 10
    intensity = {0: 0.0, 2: 80.0, 41: 90.0, 4: 20.0, 10: 60.0}
    image = np.vectorize(intensity.get)(labels) * (1.0 + 0.2 * np.sin(r[..., 1] / 15.0))
    return image.astype(np.float32), brain, labels, affine


def oblique():
    return Rotation.from_euler("xyz", [15.0, -20.0, 30.0], degrees=True).as_matrix()


def save(data, affine, path, cls=nib.Nifti1Image):
    cls(data, affine).to_filename(path)
    return path


def expected_net_affine(mask, affine, cfg):
    """Closed form of the documented placement: RAS-aligned, centre voxel at the mask bbox centre."""
    pts = apply_affine(affine, np.argwhere(mask).astype(float))
    centre = (pts.min(0) + pts.max(0)) / 2
    s = cfg.voxel_size_mm
    return from_matvec(s * np.eye(3), centre - s * (np.array(cfg.grid_shape) - 1) / 2)


def sitk_resample_to_net(data, affine, net_affine, shape, interpolator):
    """SimpleITK resampling of a native array onto the network grid (all in LPS)."""
    sitk = pytest.importorskip("SimpleITK")
    lps = np.diag([-1.0, -1.0, 1.0])

    def to_sitk(array, aff):
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array, dtype=np.float64).transpose(2, 1, 0)))
        zooms = np.linalg.norm(aff[:3, :3], axis=0)
        img.SetSpacing(zooms.tolist())
        img.SetOrigin((lps @ aff[:3, 3]).tolist())
        img.SetDirection((lps @ aff[:3, :3] / zooms).ravel().tolist())
        return img

    ref = to_sitk(np.zeros(shape), net_affine)
    out = sitk.Resample(to_sitk(data, affine), ref, sitk.Transform(), interpolator, 0.0)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


def normalized_reference(image, mask):
    low, high = np.percentile(image[mask].astype(float), [0.01, 99.99])
    out = np.clip((image - low) / (high - low), 0, 1)
    out[~mask] = 0
    return out


@pytest.fixture(scope="module")
def oblique_subject(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oblique")
    image, brain, labels, affine = phantom(oblique())
    paths = {
        "t1": save(image * brain, affine, tmp / "sub-01_T1w.nii.gz"),
        "labels": save(labels, affine, tmp / "sub-01_dseg.nii.gz"),
    }
    subject = prepare_subject(paths["t1"], tmp / "prep", CFG, labels_path=paths["labels"])
    return subject, (image * brain, brain, labels, affine), paths, tmp


def test_placement_and_resampling_match_independent_references(oblique_subject):
    sitk = pytest.importorskip("SimpleITK")
    subject, (image, brain, labels, affine), _, _ = oblique_subject
    assert subject.image.shape == CFG.grid_shape and subject.image.dtype == np.float32
    np.testing.assert_allclose(subject.net_affine, expected_net_affine(brain, affine, CFG), atol=1e-9)
    np.testing.assert_allclose(subject.native_affine, affine, atol=1e-6)
    assert subject.native_shape == SHAPE
    assert subject.image.min() >= 0 and subject.image.max() <= 1 and subject.image.max() > 0.9

    net = (subject.net_affine, CFG.grid_shape)
    ref = sitk_resample_to_net(normalized_reference(image, brain), affine, *net, sitk.sitkLinear)
    assert np.max(np.abs(subject.image - ref)) < 1e-4
    ref_mask = sitk_resample_to_net(brain, affine, *net, sitk.sitkLinear) >= 0.5
    np.testing.assert_array_equal(subject.mask, ref_mask)


def test_labels_are_per_label_argmax_without_new_values(oblique_subject):
    subject, (_, _, labels, affine), _, _ = oblique_subject
    values = np.unique(labels)
    assert set(np.unique(subject.labels)) <= set(values)
    # brute force: trilinear interpolation of each one-hot map, then argmax
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in CFG.grid_shape], indexing="ij"), axis=-1).astype(float)
    native_idx = apply_affine(np.linalg.inv(affine) @ subject.net_affine, idx).reshape(-1, 3).T
    scores = np.stack(
        [ndimage.map_coordinates((labels == v).astype(float), native_idx, order=1, cval=float(v == 0)) for v in values]
    )
    top2 = np.sort(scores, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-6
    expected = values[np.argmax(scores, axis=0)]
    got = subject.labels.reshape(-1)
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], expected[clear])
    assert (subject.labels == 10).sum() > 0  # the small nucleus survives


def test_saved_folder_reloads_and_is_reused(oblique_subject):
    subject, _, paths, tmp = oblique_subject
    folder = tmp / "prep"
    names = ["image.nii.gz", "labels.nii.gz", "mask.nii.gz", "native_mask.nii.gz", "prepared.json"]
    assert sorted(p.name for p in folder.iterdir()) == names
    loaded = PreparedSubject.load(folder)
    np.testing.assert_array_equal(loaded.image, subject.image)
    np.testing.assert_array_equal(loaded.labels, subject.labels)
    np.testing.assert_array_equal(loaded.native_mask, subject.native_mask)
    np.testing.assert_allclose(loaded.net_affine, subject.net_affine)
    assert loaded.source_files["t1"].endswith("sub-01_T1w.nii.gz") and loaded.subject_id == "sub-01_T1w"
    net_img = nib.load(folder / "image.nii.gz")
    np.testing.assert_allclose(net_img.affine, subject.net_affine, atol=1e-5)

    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = prepare_subject(paths["t1"], folder, CFG, labels_path=paths["labels"])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing rewritten
    np.testing.assert_array_equal(again.image, subject.image)
    other = prepare_subject(paths["t1"], tmp / "prep", CFG.replace(voxel_size_mm=5.0), labels_path=paths["labels"])
    assert other.net_affine[0, 0] == 5.0 and (folder / "image.nii.gz").stat().st_mtime_ns != stamps["image.nii.gz"]


def test_lia_mgz_and_las_copies_prepare_like_the_ras_original(tmp_path):
    image, brain, labels, affine = phantom(shape=(40, 44, 36), zooms=np.array([2.0, 2.0, 2.5]))
    ras = prepare_subject(save(image * brain, affine, tmp_path / "ras.nii.gz"), tmp_path / "p_ras", CFG,
                          labels_path=save(labels, affine, tmp_path / "ras_dseg.nii.gz"))
    for code, ext, cls in (("LIA", ".mgz", nib.MGHImage), ("LAS", ".nii", nib.Nifti1Image)):
        transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(code))
        t1 = nib.Nifti1Image(image * brain, affine).as_reoriented(transform)
        seg = nib.Nifti1Image(labels.astype(np.int32), affine).as_reoriented(transform)
        assert nib.aff2axcodes(t1.affine) == tuple(code)
        t1_path = save(np.asarray(t1.dataobj), t1.affine, tmp_path / f"{code}{ext}", cls)
        seg_path = save(np.asarray(seg.dataobj), seg.affine, tmp_path / f"{code}_dseg{ext}", cls)
        other = prepare_subject(t1_path, tmp_path / f"p_{code}", CFG, labels_path=seg_path)
        np.testing.assert_allclose(other.net_affine, ras.net_affine, atol=1e-5)
        assert np.max(np.abs(other.image - ras.image)) < 1e-4
        assert np.mean(other.labels != ras.labels) < 1e-3
        np.testing.assert_array_equal(other.mask, ras.mask)


def _dice(a, b):
    return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))


@pytest.mark.slow
def test_deepbet_on_colin27_matches_ch2bet(tmp_path):
    pytest.importorskip("deepbet")
    head = "/usr/share/mricron/templates/ch2.nii.gz"
    bet = "/usr/share/mricron/templates/ch2bet.nii.gz"
    if not (Path(head).exists() and Path(bet).exists()):
        pytest.skip("Debian mricron-data is not installed")
    subject = prepare_subject(head, tmp_path / "prep", CFG, skull_strip="deepbet")
    reference = np.asarray(nib.load(bet).dataobj) > 0
    assert _dice(subject.native_mask, reference) > 0.9
    assert subject.skull_strip == "deepbet" and subject.image.max() > 0.9


def test_synthstrip_runs_or_says_how_to_install(tmp_path):
    head = "/usr/share/mricron/templates/ch2.nii.gz"
    if shutil.which("mri_synthstrip") is None:
        with pytest.raises(MissingToolError, match=r"mri_synthstrip.*(install FreeSurfer).*PATH"):
            prepare_subject(head, tmp_path / "prep", CFG, skull_strip="synthstrip")
        assert not (tmp_path / "prep").exists()
    else:  # the real tool, run through the Pydra shell task
        subject = prepare_subject(head, tmp_path / "prep", CFG, skull_strip="synthstrip")
        reference = np.asarray(nib.load("/usr/share/mricron/templates/ch2bet.nii.gz").dataobj) > 0
        assert _dice(subject.native_mask, reference) > 0.9
