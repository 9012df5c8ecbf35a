"""smgic-bids with --outputs compact, then export, then group --verify-outputs (3 mm example data, a small
model): the export writes the warps --outputs all writes (same bytes), and the group level checks them."""

import json

import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


@pytest.mark.slow
def test_compact_then_export_equals_all_and_group_checks_it(tmp_path, write_small_model, capsys):
    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=3, voxel_mm=3.0)
    model = write_small_model(tmp_path / "models")
    common = ["-w", str(tmp_path / "work"), "--model", str(model), "--no-progress", "--skip-bids-validation",
              "--nprocs", "1", "--no-reportlets"]
    out = {p: tmp_path / f"out-{p}" for p in ("compact", "all")}
    for policy, folder in out.items():
        assert main([str(bids), str(folder), "participant", "--outputs", policy, *common]) == 0
    (compact,) = out["compact"].rglob("*_mode-velocity_xfm.h5")
    sidecars = sorted(out["compact"].rglob("*_desc-smgicnet_mode-image_xfm.json"))
    assert len(sidecars) == 1 and not list(out["compact"].rglob("*.nii.gz"))  # identity: nothing
    assert main([str(bids), str(out["compact"]), "group", "--verify-outputs"]) == 0
    # a participant record that owes --outputs all, against files written with compact: failed rows (issue 23)
    (record,) = (out["compact"] / "reports" / "participant_runs").glob("*.json")
    original = record.read_text()
    record.write_text(json.dumps(json.loads(original) | {"outputs": "all"}))
    capsys.readouterr()
    assert main([str(bids), str(out["compact"]), "group"]) == 1
    assert "written with --outputs compact, which lacks files of --outputs all" in capsys.readouterr().err
    record.write_text(original)
    assert main([str(bids), str(out["compact"]), "export"]) == 0
    configs = sorted((out["compact"] / "logs").glob("config-*.json"))  # every run's settings; failed pairs too
    assert [json.loads(c.read_text())["settings"]["analysis_level"] for c in configs] == [
        "participant", "group", "group", "export"]
    for warp in sorted(out["all"].rglob("*_xfm.nii.gz")) + sorted(out["all"].rglob("*_xfm.mat")):
        assert (out["compact"] / warp.relative_to(out["all"])).read_bytes() == warp.read_bytes(), warp.name
    assert main([str(bids), str(out["compact"]), "group", "--verify-outputs"]) == 0
    # a damaged compact file fails its pair at the group level, naming the file
    compact.write_bytes(compact.read_bytes()[:-10] + b"0123456789")
    capsys.readouterr()
    assert main([str(bids), str(out["compact"]), "group", "--verify-outputs"]) == 1
    assert compact.name in capsys.readouterr().err
    assert json.loads(sidecars[0].read_text())["output_policy"] == "compact"
