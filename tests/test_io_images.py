"""Bad inputs: one clear one-line InputError naming the file, and no partial outputs left behind."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.config import SMGICNetConfig
from smgic_pydra.io import InputError, atomic_paths, load_image, save_json
from smgic_pydra.preparation import prepare_subject

CFG = SMGICNetConfig(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
AFFINE = np.array([[-2.0, 0, 0, 40], [0, 0, 2.0, -30], [0, -2.0, 0, 35], [0, 0, 0, 1]])  # LIA, 2 mm


def ball(shape=(24, 26, 22)):
    idx = np.indices(shape).transpose(1, 2, 3, 0) - (np.array(shape) - 1) / 2
    r = np.linalg.norm(idx, axis=-1)
    return np.where(r < 9, 50.0 + r, 0.0).astype(np.float32)


def write(path, data, affine=AFFINE, cls=nib.Nifti1Image):
    cls(data, affine).to_filename(path)
    return path


def good_t1(tmp_path):
    return write(tmp_path / "t1.nii.gz", ball())


def truncated(tmp_path):
    path = good_t1(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    return bad


def empty(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.touch()
    return path


def garbage(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(gzip.compress(b"x" * 500))
    return path


def nans(tmp_path):
    data = ball()
    data[3, 4, 5] = np.nan
    return write(tmp_path / "nan.nii.gz", data)


# role of the bad file -> (builder, expected problem); the other inputs are good
CASES = {
    "missing": ("t1", lambda t: t / "does_not_exist.nii.gz", "file not found"),
    "empty": ("t1", empty, "empty file"),
    "truncated": ("t1", truncated, "truncated or corrupt"),
    "garbage": ("t1", garbage, "not a readable"),
    "4-D": ("t1", lambda t: write(t / "4d.nii.gz", np.stack([ball()] * 3, axis=-1)), "expected a 3-D volume"),
    "all-zero image": ("t1", lambda t: write(t / "zero.nii.gz", np.zeros((24, 26, 22), np.float32)), "all zero"),
    "NaN": ("t1", nans, "NaN or infinite"),
    "all-zero mask": ("mask", lambda t: write(t / "mask0.nii.gz", np.zeros((24, 26, 22), np.uint8)), "mask is empty"),
    "mask grid shape": ("mask", lambda t: write(t / "mask_s.nii.gz", np.ones((24, 26, 20), np.uint8)), "grid shape"),
    "mask grid affine": (
        "mask",
        lambda t: write(t / "mask_a.nii.gz", (ball() > 0).astype(np.uint8), AFFINE + np.diag([0, 0, 0.01, 0])),
        "affine differs",
    ),
    "fractional labels": (
        "labels",
        lambda t: write(t / "labels.nii.gz", np.where(ball() > 0, 2.5, 0.0).astype(np.float32)),
        "fractional values",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_the_file_and_leaves_nothing(case, tmp_path):
    role, build, problem = CASES[case]
    inputs = {"t1": good_t1(tmp_path), "mask": None, "labels": None}
    inputs[role] = build(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError) as info:
        prepare_subject(inputs["t1"], out_dir, CFG, mask_path=inputs["mask"], labels_path=inputs["labels"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(inputs[role].absolute()) + ": ")
    assert problem in message and info.value.path == str(inputs[role].absolute())
    assert list(out_dir.iterdir()) == []


def test_singleton_4d_is_squeezed_and_mgz_loads(tmp_path):
    img = load_image(write(tmp_path / "t1_4d.nii.gz", ball()[..., None]))
    assert img.shape == (24, 26, 22)
    mgz = load_image(write(tmp_path / "t1.mgz", ball(), cls=nib.MGHImage))
    np.testing.assert_allclose(np.asarray(mgz.dataobj), ball())
    np.testing.assert_allclose(mgz.affine, AFFINE, atol=1e-5)
    labels = load_image(write(tmp_path / "lab.nii.gz", np.where(ball() > 0, 17.0, 0.0)), "labels")
    assert np.issubdtype(np.asarray(labels.dataobj).dtype, np.integer)


def test_failure_while_writing_leaves_no_partial_outputs(tmp_path):
    out_dir = tmp_path / "out"
    (out_dir / "prepared.json").mkdir(parents=True)  # the last file cannot be moved into place
    with pytest.raises(OSError):
        prepare_subject(good_t1(tmp_path), out_dir, CFG)
    assert [p.name for p in out_dir.iterdir()] == ["prepared.json"]

    with pytest.raises(RuntimeError), atomic_paths([tmp_path / "a.json", tmp_path / "b.nii.gz"]) as (a, b):
        a.write_text("{}")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t1.nii.gz"]
    with pytest.raises(TypeError):
        save_json({"x": object()}, tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()
