"""The settings have one source (the parser's defaults are BidsAppSettings') and each run records them in
OUTPUT_DIR/logs/config-<UTC time>.json: a real participant run (the small SM-GICNet network alone, 3 mm
example data) read back against the command line it was given."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.cli.parser import parse_settings
from smgic_pydra.settings import BidsAppSettings

needs_data = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


@pytest.mark.parametrize("level", ["participant", "group", "train", "export"])
def test_parser_defaults_are_the_settings_defaults(level):
    argv = ["/b", "/o", level]
    expected = BidsAppSettings(bids_dir=Path("/b"), output_dir=Path("/o"), analysis_level=level,
                               work_dir=Path("work").absolute(), command=argv)
    assert parse_settings(argv) == expected


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    root = tmp_path_factory.mktemp("example")
    return (make_example_dataset(root / "bids", n_subjects=2, seed=3, voxel_mm=3.0),
            write_small_model(root / "model"))


def _configs(out: Path) -> list[Path]:
    return sorted((out / "logs").glob("config-*.json"))


@needs_data
@pytest.mark.slow
def test_participant_and_group_runs_record_their_settings(example, tmp_path):
    from smgic_pydra.bids.validation import validate_dataset

    bids, model = example
    out, work = tmp_path / "derivatives" / "smgicnet", tmp_path / "work"
    argv = [str(bids), str(out), "participant", "-w", str(work), "--participant-label", "02", "--model", str(model),
            "--pairs", "ordered", "--pairs-per-job", "3", "--outputs", "warps", "--random-seed", "7",
            "--omp-nthreads", "1", "--method-option", "smgicnet.refine=0", "--no-affine", "--no-reportlets",
            "--no-progress", "--skip-bids-validation"]
    assert main([*argv[:-1], "--plan-only"]) == 0
    assert not out.exists() or not _configs(out)  # --plan-only writes no record
    before = datetime.now(timezone.utc)
    assert main(argv) == 0
    after = datetime.now(timezone.utc)
    (path,) = _configs(out)
    record = json.loads(path.read_text())
    assert record["command"] == argv and record["version"] == version("smgic-pydra")
    date = datetime.fromisoformat(record["date"])
    assert before <= date <= after
    assert path.name == f"config-{date.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    s = record["settings"]
    assert (s["bids_dir"], s["output_dir"], s["work_dir"]) == (str(bids), str(out), str(work))
    assert s["analysis_level"] == "participant" and s["participant_label"] == ["02"]
    assert s["methods"] == ["smgicnet", "identity"] and s["pairs"] == "ordered" and s["pairs_per_job"] == 3
    assert s["model"] == str(model) and s["outputs"] == "warps" and s["random_seed"] == 7 and s["omp_nthreads"] == 1
    assert s["method_options"] == {"smgicnet": {"refine": 0, "affine": False}}
    assert s["reportlets"] is False and s["progress"] is False and s["skip_bids_validation"] is True
    assert s["plan_only"] is False and s["command"] == argv
    assert main([str(bids), str(out), "group"]) == 0
    records = [json.loads(p.read_text()) for p in _configs(out)]
    assert [r["settings"]["analysis_level"] for r in records] == ["participant", "group"]
    assert records[1]["command"] == [str(bids), str(out), "group"]
    assert validate_dataset(out) == []  # logs/ belongs in BIDS derivatives
