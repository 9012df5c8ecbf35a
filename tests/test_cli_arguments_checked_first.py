"""Every bad argument value is refused when the command line is parsed: exit 2, one line on stderr that
names the option and the problem, and nothing written (no output folder, no work folder). One row per
case; the dataset is a valid example, so only the argument can be at fault."""

from __future__ import annotations

import pytest

from smgic_pydra.cli.bids_app import main

CASES = [
    # (case, extra arguments, level, words the one line must hold)
    ("affine not a bool", ["--method-option", "smgicnet.affine=maybe"], "participant",
     ["smgicnet.affine", "true or false", "'maybe'"]),
    ("refine a fraction", ["--method-option", "smgicnet.refine=1.5"], "participant",
     ["smgicnet.refine", "an integer", "1.5"]),
    ("refine text", ["--method-option", "smgicnet.refine=abc"], "participant", ["smgicnet.refine", "an integer"]),
    ("refine negative", ["--method-option", "smgicnet.refine=-3"], "participant", ["smgicnet.refine", ">= 0", "-3"]),
    ("refine empty", ["--method-option", "smgicnet.refine="], "participant", ["smgicnet.refine", "an integer"]),
    ("--refine negative", ["--refine", "-3"], "participant", ["--refine", ">= 0"]),
    ("learning rate negative", ["--method-option", "smgicnet.refine_learning_rate=-1"], "participant",
     ["smgicnet.refine_learning_rate", "> 0"]),
    ("window zero", ["--method-option", "smgicnet.refine_window=0"], "participant", ["smgicnet.refine_window", ">= 1"]),
    ("window even", ["--method-option", "smgicnet.refine_window=4"], "participant", ["smgicnet.refine_window", "odd"]),
    ("unknown option", ["--method-option", "smgicnet.steps=3"], "participant", ["unknown option", "steps"]),
    ("fireants lists of other lengths", ["--method", "fireants", "--method-option", "fireants.scales=[2,1]"],
     "participant", ["scales", "one value per scale"]),
    ("fireants option without fireants", ["--method", "smgicnet", "--method-option", "fireants.greedy_lr=0.2"],
     "participant", ["fireants.greedy_lr", "not selected"]),
    ("--refine without smgicnet", ["--method", "synquick", "--refine", "3"], "participant",
     ["smgicnet.refine", "not selected"]),
    ("--quality unknown", ["--quality", "ultra"], "participant", ["--quality", "invalid choice", "'ultra'"]),
    ("--quality without smgicnet", ["--method", "synquick", "--quality", "fast"], "participant",
     ["--quality fast", "not selected"]),
    ("device tpu", ["--device", "tpu"], "participant", ["--device", "cpu, cuda or cuda:N", "'tpu'"]),
    ("nprocs zero", ["--nprocs", "0"], "participant", ["--nprocs", ">= 1"]),
    ("omp threads negative", ["--omp-nthreads", "-1"], "participant", ["--omp-nthreads", ">= 0"]),
    ("--precision fp16 for registration", ["--precision", "fp16"], "participant",
     ["smgicnet.precision", "auto, bf16, fp32", "'fp16'"]),
    ("--precision auto for training", ["--precision", "auto"], "train", ["--precision auto", "training"]),
    ("group --plan-only", ["--plan-only"], "group", ["--plan-only", "participant level"]),
    ("train --plan-only", ["--plan-only"], "train", ["--plan-only", "participant level"]),
]

try:
    import torch

    CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - torch is a core dependency
    CUDA = False
if not CUDA:
    CASES += [(f"device {d} without CUDA ({level})", ["--device", d], level, ["--device", d, "CUDA is not available"])
              for d, level in (("cuda", "participant"), ("cuda:7", "participant"), ("cuda", "train"))]


@pytest.mark.parametrize("case, extra, level, words", CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_refused_before_anything_is_written(tmp_path, capsys, case, extra, level, words):
    from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset

    if (TEMPLATE_DIR / "ch2bet.nii.gz").is_file():
        bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=1, voxel_mm=4.0)
    else:  # the arguments are checked before the dataset is read
        bids = tmp_path / "bids"
        bids.mkdir()
        (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    out, work = tmp_path / "out", tmp_path / "work"
    assert main([str(bids), str(out), level, "-w", str(work), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("smgic-bids: error: "), err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists() and not work.exists()


def test_valid_values_pass_and_are_kept_exactly():
    from smgic_pydra.cli.parser import parse_settings

    s = parse_settings(["/b", "/o", "participant", "--method", "smgicnet,fireants", "--refine", "0",
                        "--method-option", "smgicnet.refine_learning_rate=1", "--method-option",
                        "fireants.scales=[2,1]", "--method-option", "fireants.affine_iterations=[10,5]",
                        "--method-option", "fireants.greedy_iterations=[4,2]", "--nprocs", "2"])
    assert s.method_options == {"smgicnet": {"refine": 0, "refine_learning_rate": 1},
                                "fireants": {"scales": [2, 1], "affine_iterations": [10, 5],
                                             "greedy_iterations": [4, 2]}}
    assert s.nprocs == 2 and s.device == "cpu"
    assert parse_settings(["/b", "/o", "participant", "--precision", "fp32"]).method_options == {
        "smgicnet": {"precision": "fp32"}}
    # a preset lies under the explicit options: --refine and --method-option win over --quality's values
    fast = parse_settings(["/b", "/o", "participant", "--quality", "fast", "--refine", "3"])
    assert fast.quality == "fast" and fast.method_options == {"smgicnet": {"network_grid": "auto", "refine": 3,
                                                                           "affine_fine": False}}
    fast = parse_settings(["/b", "/o", "participant", "--quality", "fast", "--method-option", "smgicnet.network_grid=\"full\""])
    assert fast.method_options == {"smgicnet": {"network_grid": "full", "refine": 0, "affine_fine": False}}
    train = parse_settings(["/b", "/o", "train", "--precision", "bf16"])
    assert train.precision == "bf16" and train.method_options == {}


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom smgic_pydra.cli.parser import build_parser\nbuild_parser().format_help()\n"
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
