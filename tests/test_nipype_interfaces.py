"""Nipype 1 interfaces: the same files (bit for bit) and metrics as the Pydra workflow; our warp used by
nipype.interfaces.ants.ApplyTransforms in an fMRIPrep-style workflow."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


ROLES = ("warp", "inverse_warp", "warped", "warped_labels", "jacobian")
METRICS = ("dice_mean", "folding_percent", "log_jacobian_std", "inverse_consistency_mm")


def _pair_dirs(prepared_dirs, subject_ids, pairs):
    by_id = dict(zip(subject_ids, prepared_dirs))
    return [by_id[f] for f, _ in pairs], [by_id[m] for _, m in pairs], [m for _, m in pairs]


def init_pairs_wf(base_dir, subjects, pairs, model):
    """Prepare every subject (MapNode), register every pair with SM-GICNet (MapNode), evaluate it (MapNode)."""
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from smgic_pydra.interfaces import PairMetrics, PrepareSubject, SMGICNetRegistration

    wf = pe.Workflow(name="pairs", base_dir=str(base_dir))
    wf.config["execution"]["remove_unnecessary_outputs"] = False  # keep every output for the comparison
    prep = pe.MapNode(PrepareSubject(model=model), iterfield=["t1w", "mask", "labels", "subject_id"], name="prep")
    prep.inputs.t1w, prep.inputs.mask = [s["t1w"] for s in subjects], [s["mask"] for s in subjects]
    prep.inputs.labels, prep.inputs.subject_id = [s["labels"] for s in subjects], [s["subject"] for s in subjects]
    select = pe.Node(niu.Function(function=_pair_dirs, input_names=["prepared_dirs", "subject_ids", "pairs"],
                                  output_names=["fixed_dirs", "moving_dirs", "moving_ids"]), name="select")
    select.inputs.subject_ids, select.inputs.pairs = [s["subject"] for s in subjects], pairs
    register = pe.MapNode(SMGICNetRegistration(model=model, num_threads=1), iterfield=["fixed_dir", "moving_dir"],
                          name="register")
    metrics = pe.MapNode(PairMetrics(method="smgicnet"),
                         iterfield=["fixed_dir", "warp", "inverse_warp", "warped_labels", "moving"], name="metrics")
    wf.connect([
        (prep, select, [("prepared_dir", "prepared_dirs")]),
        (select, register, [("fixed_dirs", "fixed_dir"), ("moving_dirs", "moving_dir")]),
        (select, metrics, [("fixed_dirs", "fixed_dir"), ("moving_ids", "moving")]),
        (register, metrics, [("warp", "warp"), ("inverse_warp", "inverse_warp"), ("warped_labels", "warped_labels")]),
    ])  # fmt: skip
    return wf


def _content(path) -> bytes:
    """A .nii.gz file's uncompressed bytes (the gzip header holds a time stamp and the temporary file's name)."""
    return gzip.decompress(Path(path).read_bytes())


@pytest.mark.slow
def test_nipype_mapnode_multiproc_gives_the_pydra_workflows_files_and_metrics(tmp_path, write_cohort, write_small_model, unordered_pairs):
    from smgic_pydra.workflows import CohortPlan, run_cohort

    subjects = write_cohort(tmp_path / "raw", 3)
    model = str(write_small_model(tmp_path / "models"))
    pairs = unordered_pairs([s["subject"] for s in subjects])
    plan = CohortPlan(subjects=subjects, pairs=pairs, methods=["smgicnet"], work_dir=tmp_path / "work", model=model,
                      output_dir=tmp_path / "pydra", pairs_per_job=4, omp_nthreads=1, outputs="full")  # as Nipype writes
    pydra_rows = {(r["fixed"], r["moving"]): r for r in run_cohort(plan, worker="cf", n_procs=2,
                                                                     show_progress=False).rows}

    wf = init_pairs_wf(tmp_path / "nipype", subjects, pairs, model)
    graph = wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})
    nodes = {n.name: n for n in graph.nodes()}
    registered, evaluated = nodes["register"].result.outputs, nodes["metrics"].result.outputs
    assert len(pydra_rows) == len(pairs) == 3
    for i, (fixed, moving) in enumerate(pairs):
        ours = plan.pair_paths(fixed, moving, "smgicnet")
        for role in ROLES:
            assert _content(getattr(registered, role)[i]) == _content(getattr(ours, role)), (fixed, moving, role)
        row = pydra_rows[(fixed, moving)]
        assert row["error"] == ""
        for name in METRICS:
            assert getattr(evaluated, name)[i] == pytest.approx(row[name], rel=1e-12, abs=1e-12), name


def _example():
    path = Path(__file__).resolve().parents[1] / "workflows" / "nipype_pipeline.py"
    spec = importlib.util.spec_from_file_location("nipype_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ants_apply_transforms_uses_our_warp_in_a_nipype_workflow(tmp_path, ants_tools_on_path, write_cohort, write_small_model):
    """workflows/nipype_pipeline.py: SM-GICNet's warp handed to nipype's ants.ApplyTransforms gives our warped
    image and labels (antsApplyTransforms is the independent resampler); ApplyWarp reproduces them too."""
    from smgic_pydra.interfaces import ApplyWarp

    fixed, moving = write_cohort(tmp_path / "raw", 2)
    wf = _example().init_smgicnet_wf(model=str(write_small_model(tmp_path / "models")))
    wf.base_dir = str(tmp_path / "nipype")
    inputs = wf.get_node("inputnode").inputs
    inputs.fixed_t1w, inputs.fixed_mask, inputs.fixed_id = fixed["t1w"], fixed["mask"], fixed["subject"]
    inputs.moving_t1w, inputs.moving_mask = moving["t1w"], moving["mask"]
    inputs.moving_labels, inputs.moving_id = moving["labels"], moving["subject"]
    nodes = {n.name: n.result.outputs for n in wf.run().nodes()}  # nipype drops the identity nodes when it runs
    out = nodes["register"]

    ours, by_ants = (np.asarray(nib.load(p).dataobj) for p in (out.warped, nodes["ants_t1w"].output_image))
    scale = np.abs(ours).max()
    assert np.mean(np.abs(ours - by_ants) > 1e-3 * scale) < 1e-3
    labels, ants_labels = (np.asarray(nib.load(p).dataobj) for p in (out.warped_labels,
                                                                       nodes["ants_labels"].output_image))
    assert labels.shape == ants_labels.shape == nib.load(fixed["t1w"]).shape and labels.any()
    assert np.mean(labels == ants_labels) > 0.99  # label-aware vs ANTs' GenericLabel: a few boundary voxels
    again = ApplyWarp(in_file=moving["labels"], reference=fixed["t1w"], warp=out.warp, interpolation="labels")
    (tmp_path / "apply").mkdir()
    result = again.run(cwd=str(tmp_path / "apply"))
    np.testing.assert_array_equal(np.asarray(nib.load(result.outputs.out_file).dataobj), labels)


def test_ants_baseline_interface_identity_has_closed_form_outputs(tmp_path, write_cohort, write_small_model):
    """ANTsBaseline(identity) on two prepared copies of one subject: zero warps, Dice 1, no folding, 0 mm."""
    from smgic_pydra.interfaces import ANTsBaseline, PairMetrics, PrepareSubject

    subject = write_cohort(tmp_path / "raw", 1)[0]
    model = str(write_small_model(tmp_path / "models"))
    dirs = []
    for name in ("sub-01", "sub-02"):
        (tmp_path / name).mkdir()
        prep = PrepareSubject(t1w=subject["t1w"], mask=subject["mask"], labels=subject["labels"], subject_id=name,
                              model=model).run(cwd=str(tmp_path / name))
        dirs.append(prep.outputs.prepared_dir)
    (tmp_path / "reg").mkdir()
    reg = ANTsBaseline(method="identity", fixed_dir=dirs[0], moving_dir=dirs[1]).run(cwd=str(tmp_path / "reg")).outputs
    assert not np.asarray(nib.load(reg.warp).dataobj).any() and Path(reg.sidecar).name.startswith("sub-02_to-sub-01")
    (tmp_path / "metrics").mkdir()
    metrics = PairMetrics(fixed_dir=dirs[0], warp=reg.warp, inverse_warp=reg.inverse_warp, moving_dir=dirs[1],
                          warped_labels=reg.warped_labels).run(cwd=str(tmp_path / "metrics")).outputs
    assert metrics.dice_mean == 1.0 and metrics.folding_percent == 0.0 and metrics.inverse_consistency_mm == 0.0
    assert metrics.labels_lost == 0.0  # the identity keeps every label of the moving image
    with pytest.raises(Exception, match="method"):
        ANTsBaseline(method="smgicnet")
