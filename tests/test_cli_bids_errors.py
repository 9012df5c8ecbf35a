"""smgic-bids refuses bad arguments and bad datasets with one line on stderr and a non-zero exit."""

import json
from pathlib import Path

import pytest

from smgic_pydra.cli.bids_app import main
from smgic_pydra.methods import get_method


def _raw_dataset(root: Path, subjects=("01", "02"), content: bytes = b"") -> Path:
    """A bids-examples-style dataset: valid layout, image files with ``content`` (empty by default)."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    for s in subjects:
        anat = root / f"sub-{s}" / "anat"
        anat.mkdir(parents=True)
        (anat / f"sub-{s}_T1w.nii.gz").write_bytes(content)
    return root


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("smgic-bids: error: ")
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    "inside, problem",
    [("", "output folder inside the raw BIDS dataset"), ("out", "output folder inside the raw BIDS dataset"),
     ("derivatives", "output folder is the derivatives folder itself")],
)
def test_output_equal_to_or_inside_bids_dir_is_refused(tmp_path, capsys, inside, problem):
    bids = _raw_dataset(tmp_path / "bids")
    assert main([str(bids), str(bids / inside), "participant", "-w", str(tmp_path / "work")]) == 2
    _one_line_error(capsys, problem)


def test_work_dir_inside_bids_dir_is_refused(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    assert main([str(bids), str(tmp_path / "out"), "participant", "-w", str(bids / "work")]) == 2
    _one_line_error(capsys, "work folder inside the BIDS dataset")


def test_missing_dataset_description(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    (bids / "dataset_description.json").unlink()
    assert main([str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w")]) == 2
    _one_line_error(capsys, "dataset_description.json")


def test_unknown_participant_label(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    args = [str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"), "--skip-bids-validation"]
    assert main(args + ["--participant-label", "sub-07"]) == 2
    _one_line_error(capsys, "unknown participant label(s) 07", "known: 01, 02")


def test_empty_images_like_the_public_bids_examples(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    args = [str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"), "--skip-bids-validation"]
    assert main(args + ["--participant-label", "01"]) == 2
    _one_line_error(capsys, "sub-01_T1w.nii.gz", "empty file (0 bytes)")
    assert not (tmp_path / "out").exists()  # nothing written for a refused dataset


def test_bad_method_and_derivatives_output_allowed_check(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    args = [str(bids), str(bids / "derivatives" / "smgic"), "participant", "-w", str(tmp_path / "w"),
            "--skip-bids-validation", "--method", "smgicnet,elastix"]
    assert main(args) == 2  # the output location is allowed, the method is not
    _one_line_error(capsys, "--method: unknown method(s) ['elastix']")


def test_group_without_participant_outputs(tmp_path, capsys):
    bids = _raw_dataset(tmp_path / "bids")
    (tmp_path / "out").mkdir()
    assert main([str(bids), str(tmp_path / "out"), "group", "-w", str(tmp_path / "w")]) == 2
    _one_line_error(capsys, "run the participant level first")


def test_version(capsys):
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("smgic-bids 0.")


def test_participant_without_pairs_has_nothing_to_do(tmp_path, capsys, write_ellipsoid_subject):
    """With --pairs all the last subject is never the moving one: its array job succeeds doing nothing."""

    bids = _raw_dataset(tmp_path / "bids")
    for s in ("01", "02"):  # real (small) images so the dataset indexes
        img = write_ellipsoid_subject(tmp_path / "src", f"sub-{s}", (0, 0, 0))["t1w"]
        (bids / f"sub-{s}" / "anat" / f"sub-{s}_T1w.nii.gz").write_bytes(Path(img).read_bytes())
    args = [str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"), "--skip-bids-validation"]
    assert main(args + ["--participant-label", "02"]) == 0
    assert "nothing to do" in capsys.readouterr().out and not (tmp_path / "out").exists()


def _ellipsoid_dataset(root: Path, write_ellipsoid_subject, n: int = 3) -> Path:
    bids = _raw_dataset(root / "bids", subjects=[f"{i:02d}" for i in range(1, n + 1)])
    for i in range(1, n + 1):
        img = write_ellipsoid_subject(root / "src", f"sub-{i:02d}", (0, 0, 0))["t1w"]
        (bids / f"sub-{i:02d}" / "anat" / f"sub-{i:02d}_T1w.nii.gz").write_bytes(Path(img).read_bytes())
    return bids


def test_plan_only_prints_jobs_pairs_bytes_and_time_and_writes_nothing(tmp_path, capsys, write_ellipsoid_subject):
    bids = _ellipsoid_dataset(tmp_path, write_ellipsoid_subject, 3)
    out = tmp_path / "out"
    args = [str(bids), str(out), "participant", "-w", str(tmp_path / "w"), "--skip-bids-validation",
            "--skull-strip", "none", "--pairs-per-job", "4", "--plan-only"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    # 3 subjects: 3 unordered pairs x (smgicnet, identity); B = 2: tiles (f0, m0) and (f0, m1) per method
    assert "subjects 3, pairs 3 x methods 2" in printed and "jobs 7: 3 preparations + 2 tiles of up to 2 x 2" in printed
    assert "--outputs all: about" in printed and "GiB free" in printed and "CPU job-hours" in printed
    memory = {m: get_method(m).memory_gib for m in ("smgicnet", "identity")}
    assert f"memory guide: peak GiB of a job's pair at 1 mm (smgicnet {memory['smgicnet']:g}, identity " \
           f"{memory['identity']:g};" in printed
    assert not (out / "dataset_description.json").exists() and not list(out.rglob("*.nii.gz"))


def test_a_run_that_would_not_fit_is_refused_naming_outputs_metrics(tmp_path, capsys):
    """Headers claiming 2048^3 voxels (no data is read before the check): every policy that writes per-pair
    images needs far more than the disk; --outputs metrics needs only the tables."""
    import nibabel as nib
    import numpy as np

    bids = _raw_dataset(tmp_path / "bids", subjects=("01", "02", "03"))
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 2048))
    header.set_data_dtype(np.float32)
    for s in ("01", "02", "03"):
        path = bids / f"sub-{s}" / "anat" / f"sub-{s}_T1w.nii"
        (bids / f"sub-{s}" / "anat" / f"sub-{s}_T1w.nii.gz").unlink()
        with open(path, "wb") as fh:
            header.write_to(fh)
    out = tmp_path / "out"
    args = [str(bids), str(out), "participant", "-w", str(tmp_path / "w"), "--skip-bids-validation",
            "--skull-strip", "none", "--plan-only"]
    assert main(args) == 2
    _one_line_error(capsys, str(out), "--outputs metrics", "GiB are free")
    assert main(args + ["--outputs", "metrics"]) == 0
    assert "--outputs metrics: about" in capsys.readouterr().out
