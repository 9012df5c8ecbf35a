"""--outputs compact: one file per unordered pair, from which both orders' dense ANTs warps are exported
bit for bit as --outputs all writes them (references: the bytes of the files ``all`` writes; ANTs)."""

import json

import numpy as np
import pytest

from smgic_pydra.bids.derivatives import pair_output_paths
from smgic_pydra.inference import load_model, smgicnet_pair
from smgic_pydra.pipeline_settings import PipelineSettings, RefineSettings
from smgic_pydra.preparation import prepare_subject
from smgic_pydra.worldspace.compact import read_compact
from smgic_pydra.worldspace.export import export_pair


@pytest.mark.parametrize("settings, grid_divisor", [
    (PipelineSettings(affine=True, refine=RefineSettings(steps=2)), 1),
    # --quality fast on half the grid: the mapping lives on the cascade's level-3 grid
    (PipelineSettings(affine=True, network_grid="half", refine=RefineSettings(steps=0)), 2),
], ids=["refined", "half-grid"])
def test_compact_mapping_exports_the_warps_of_all_bit_for_bit(tmp_path, write_cohort, write_small_model, settings,
                                                               grid_divisor):
    ants = pytest.importorskip("ants")
    bundle = load_model(write_small_model(tmp_path / "model"))
    subjects = write_cohort(tmp_path / "bids", 2)
    prepared = {s["subject"]: prepare_subject(s["t1w"], tmp_path / "prep" / s["subject"], bundle.cfg,
                                              labels_path=s["labels"], subject_id=s["subject"]) for s in subjects}
    a, b = sorted(prepared)
    for fixed, moving in ((a, b), (b, a)):
        pair = smgicnet_pair(bundle, prepared[fixed], prepared[moving], {}, settings)
        assert np.abs(pair.forward).max() > 0.5  # a real deformation, not the identity
        pair.write(pair_output_paths(tmp_path / "all", moving, fixed, "smgicnet"), "all")
        pair.write(pair_output_paths(tmp_path / "compact", moving, fixed, "smgicnet"), "compact")
    compact_files = sorted((tmp_path / "compact").rglob("*.h5"))
    assert [p.name for p in compact_files] == [f"{a}_from-{a.replace('-', '')}_to-{b.replace('-', '')}"
                                               "_desc-smgicnet_mode-velocity_xfm.h5"]
    mapping = read_compact(compact_files[0])
    assert mapping.velocity.dtype == np.float32 and mapping.velocity.shape == (3, *(n // grid_divisor for n in bundle.cfg.grid_shape))
    for fixed, moving in ((a, b), (b, a)):
        dense = pair_output_paths(tmp_path / "all", moving, fixed, "smgicnet")
        compact = pair_output_paths(tmp_path / "compact", moving, fixed, "smgicnet")
        assert not compact.warp.exists()
        written = export_pair(tmp_path / "compact", fixed, moving)
        assert set(written) == {"warp", "inverse_warp", "affine"}
        for role in written:
            assert getattr(compact, role).read_bytes() == getattr(dense, role).read_bytes(), role
        meta = json.loads(compact.sidecar.read_text())
        assert meta["output_policy"] == "compact" and set(meta["files"]) == {"compact", "warp", "inverse_warp", "affine"}
        assert set(meta["outputs"]) == set(meta["files"].values())
    # ANTs composes the two exported orders to (nearly) the identity: they are each other's inverse
    fixed_img = ants.image_read(str(subjects[0]["t1w"]))
    points = ants.transform_index_to_physical_point(fixed_img, [10, 12, 11])
    there = ants.apply_transforms_to_points(3, __import__("pandas").DataFrame([points], columns=list("xyz")),
                                            [str(pair_output_paths(tmp_path / "compact", a, b, "smgicnet").warp)])
    back = ants.apply_transforms_to_points(3, there, [str(pair_output_paths(tmp_path / "compact", b, a, "smgicnet").warp)])
    assert np.max(np.abs(back.to_numpy() - np.asarray([points]))) < 0.5
