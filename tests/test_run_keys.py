"""What a run is asked for is what runs and what its keys hold: ``--quality`` the same from the command line and
from scripts, the model keyed by its weights and its config, the network precision that runs (not ``auto``) in
the content key, ``--device`` reaching template runs, the run record's precision, and the group level refusing
to merge participant runs of one method with different settings."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.cli.parser import UsageError, parse_settings
from smgic_pydra.io.errors import InputError
from smgic_pydra.pipeline_settings import quality_options
from smgic_pydra.settings import BidsAppSettings, settings_record
from smgic_pydra.tasks.tile import pair_key
from smgic_pydra.workflows.cohort import CohortPlan

INPUTS = {"sub-01": {"t1w": "a"}, "sub-02": {"t1w": "b"}}


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory) -> Path:
    """Two subjects of 12^3 voxels with brain masks in sMRIPrep-style derivatives (enough to plan, not to run)."""
    root = tmp_path_factory.mktemp("data") / "bids"
    der = root / "derivatives" / "smriprep"
    der.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    (der / "dataset_description.json").write_text(json.dumps({"Name": "d", "BIDSVersion": "1.10.0",
                                                              "DatasetType": "derivative",
                                                              "GeneratedBy": [{"Name": "x"}]}))
    rng = np.random.default_rng(0)
    for sub in ("01", "02"):
        data = np.zeros((12, 12, 12), np.float32)
        data[3:9, 3:9, 3:9] = 1 + rng.random((6, 6, 6))
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        for folder, name, values in ((root, "T1w", data), (der, "desc-brain_mask", (data > 0).astype(np.uint8))):
            (folder / f"sub-{sub}" / "anat").mkdir(parents=True)
            nib.save(nib.Nifti1Image(values, affine), folder / f"sub-{sub}" / "anat" / f"sub-{sub}_{name}.nii.gz")
    return root


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, write_small_model) -> Path:
    return write_small_model(tmp_path_factory.mktemp("model") / "m")


def _plan(model, **changes) -> CohortPlan:
    return CohortPlan(**{"subjects": [{"subject": "sub-01", "t1w": "x"}, {"subject": "sub-02", "t1w": "y"}],
                         "pairs": [("sub-01", "sub-02")], "methods": ["smgicnet", "identity"], "work_dir": "w",
                         "output_dir": "o", "model": str(model)} | changes)


def _key(plan: CohortPlan) -> str:
    return pair_key(INPUTS, "sub-01", "sub-02", plan.method_settings("smgicnet"))


@pytest.mark.parametrize("quality", ["fast", "best"])
def test_quality_from_a_script_is_the_command_lines(tiny_bids, tmp_path, quality):
    from smgic_pydra.workflows.bids_cohort import bids_plan, settings_plan

    out, work = tmp_path / "out", tmp_path / "work"
    cli, _ = settings_plan(parse_settings([str(tiny_bids), str(out), "participant", "-w", str(work),
                                           "--quality", quality]))
    api, _ = bids_plan(tiny_bids, out, work, ["smgicnet", "identity"], quality=quality)
    fields = dict(bids_dir=tiny_bids, output_dir=out, work_dir=work, analysis_level="participant")
    settings = BidsAppSettings(**fields, quality=quality)
    obj, _ = settings_plan(settings)
    default, _ = settings_plan(BidsAppSettings(**fields))
    assert cli.method_options == api.method_options == obj.method_options == {"smgicnet": quality_options(quality)}
    assert cli.run_key == api.run_key == obj.run_key != default.run_key
    assert BidsAppSettings(**asdict(settings)) == settings  # built again from its own fields: the same settings


def test_quality_preset_lies_beneath_explicit_options_as_on_the_command_line():
    common = ["/b", "/o", "participant", "--quality", "fast"]
    fields = dict(bids_dir=Path("/b"), output_dir=Path("/o"), analysis_level="participant", quality="fast")
    cli = parse_settings([*common, "--refine", "3", "--method-option", "smgicnet.network_grid=\"full\""])
    api = BidsAppSettings(**fields, method_options={"smgicnet": {"refine": 3, "network_grid": "full"}})
    assert cli.method_options == api.method_options == {"smgicnet": {"network_grid": "full", "refine": 3,
                                                                     "affine_fine": False}}
    assert parse_settings([*common, "--refine", "3", "--method-option", "smgicnet.refine=5"]).method_options == {
        "smgicnet": {"network_grid": "auto", "refine": 5, "affine_fine": False}}
    with pytest.raises(ValueError, match="--quality fast: smgicnet's preset, and smgicnet is not selected"):
        BidsAppSettings(**fields, methods=["synquick", "identity"])
    with pytest.raises(UsageError, match="--quality best: smgicnet's preset"):
        parse_settings(["/b", "/o", "participant", "--method", "synquick", "--quality", "best"])


def test_model_is_keyed_by_its_weights_and_its_config(small_model, tmp_path):
    same = Path(shutil.copytree(small_model, tmp_path / "same"))
    config = json.loads((small_model / "config.json").read_text())
    (same / "config.json").write_text(json.dumps(config, indent=1, sort_keys=False))  # same values, other text
    other = Path(shutil.copytree(small_model, tmp_path / "other"))
    (other / "config.json").write_text(json.dumps(config | {"ss_steps": config["ss_steps"] - 3}))
    assert (other / "model.safetensors").read_bytes() == (small_model / "model.safetensors").read_bytes()
    plans = {name: _plan(model) for name, model in (("a", small_model), ("same", same), ("other", other))}
    assert plans["a"].model_sha256() == plans["other"].model_sha256()
    assert _key(plans["a"]) == _key(plans["same"]) != _key(plans["other"])


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_content_key_holds_the_network_precision_that_runs(small_model, monkeypatch, bf16_cpu):
    from smgic_pydra.network import precision

    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",) if bf16_cpu else ())
    keys = {(device, setting): _key(_plan(small_model, device=device,
                                          method_options={"smgicnet": {"precision": setting}}))
            for device in ("cpu", "cuda", "cuda:1") for setting in ("auto", "bf16", "fp32")}
    runs = "bf16" if bf16_cpu else "fp32"
    assert _plan(small_model).method_settings("smgicnet")["options"]["precision"] == runs
    assert keys["cpu", "auto"] == keys["cpu", runs]
    assert (keys["cpu", "auto"] == keys["cuda", "auto"]) == (not bf16_cpu)  # a bf16 CPU result is not CUDA's
    assert keys["cuda", "auto"] == keys["cuda", "fp32"] == keys["cuda:1", "auto"] != keys["cuda", "bf16"]
    assert keys["cpu", "bf16"] != keys["cpu", "fp32"]


def test_template_run_registers_on_the_device_asked_for(tiny_bids, small_model, tmp_path, monkeypatch):
    from smgic_pydra.bids.templates import TemplateFiles
    from smgic_pydra.tasks import registration
    from smgic_pydra.workflows import bids_template

    anat = tiny_bids / "sub-01" / "anat"
    mask = tiny_bids / "derivatives" / "smriprep" / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz"
    monkeypatch.setattr(bids_template, "find_template",
                        lambda spec: TemplateFiles("Tiny", 2, anat / "sub-01_T1w.nii.gz", mask))
    devices = []

    def register_files(*args, device="cpu", **kwargs):
        devices.append(device)
        raise RuntimeError("not registered in this test")

    monkeypatch.setattr(registration, "register_files", register_files)
    settings = BidsAppSettings(bids_dir=tiny_bids, output_dir=tmp_path / "out", work_dir=tmp_path / "work",
                               analysis_level="participant", pairs="template:Tiny", model=str(small_model),
                               device="cuda:1", skip_bids_validation=True)
    failed = bids_template.run_template_participant(settings)
    assert devices == ["cuda:1", "cuda:1"] and len(failed) == 2


def test_run_record_holds_the_registration_precision_and_what_it_gives_here(monkeypatch):
    from datetime import datetime, timezone

    from smgic_pydra.network import precision

    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    now = datetime.now(timezone.utc)

    def record(*extra, level="participant"):
        return settings_record(parse_settings(["/b", "/o", level, *extra]), now)

    assert record()["settings"]["precision"] == "auto" and record()["network_precision"] == "bf16"
    assert record("--device", "cuda")["network_precision"] == "fp32"
    fp32 = record("--method-option", 'smgicnet.precision="fp32"')
    assert fp32["settings"]["precision"] == "fp32" and fp32["network_precision"] == "fp32"
    explicit = record("--precision", "bf16", "--method-option", 'smgicnet.precision="fp32"')  # as on the command line
    assert explicit["settings"]["precision"] == "fp32"
    train = record(level="train")
    assert train["settings"]["precision"] == "fp32" and "network_precision" not in train
    with pytest.raises(ValueError, match="precision bf16: registration's is smgicnet's option"):
        BidsAppSettings(bids_dir=Path("/b"), output_dir=Path("/o"), analysis_level="participant", precision="bf16")


def test_group_refuses_to_merge_runs_of_one_method_with_different_settings(small_model, tmp_path):
    from smgic_pydra.workflows.bids_cohort import read_group_tables, write_participant_record

    out = tmp_path / "out"
    written = []

    def record(moving: str, fixed: str, **options):  # one participant run's record, each later than the last
        plan = _plan(small_model, pairs=[(fixed, moving)], output_dir=out, method_options={"smgicnet": options})
        written.append(write_participant_record(plan, out))
        os.utime(written[-1], ns=(len(written) * 10**9,) * 2)
        return plan.run_key

    default = record("sub-01", "sub-02")
    record("sub-02", "sub-01")
    pairs, _ = read_group_tables(out)  # the same settings: merged (no tile tables here: failed rows, no error)
    assert len(pairs) == 4 and set(pairs["moving"]) == {"sub-01", "sub-02"}
    best = record("sub-02", "sub-01", refine_fine_steps=8)  # sub-02's pairs now, sub-01's still default's
    with pytest.raises(InputError) as err:
        read_group_tables(out)
    message = str(err.value)
    assert "\n" not in message and f"participant runs {default} and {best} ran smgicnet with different settings " \
        "(options.refine_fine_steps: 4 vs 8)" in message
    record("sub-01", "sub-02", refine_fine_steps=8)  # replaces the last default pairs: the runs left agree
    assert len(read_group_tables(out)[0]) == 4
