"""The refinement's three stages (6, 3 and 1.5 mm grids for the 128^3 model): which run, in which order, on which
grid, against the same stages run one at a time as single-stage refinements."""

import torch

from smgic_pydra.pipeline_settings import PipelineSettings, RefineSettings, quality_options
from smgic_pydra.refinement import refine_velocity


def test_stages_that_run_by_default_for_best_and_without_main_steps():
    assert RefineSettings().stages == (("_pre", 4, 8), ("", 2, 12), ("_fine", 1, 4))
    assert PipelineSettings.from_options(quality_options("best")).refine.stages == (
        ("_pre", 4, 8), ("", 2, 12), ("_fine", 1, 8))
    assert RefineSettings(steps=0).stages == ()  # the network alone: no stage at all
    assert RefineSettings(pre_steps=0, fine_steps=0, factor=3).stages == (("", 3, 12),)


def test_three_stages_equal_the_three_single_stage_refinements_in_turn():
    """pre (grid pooled by 2 x factor), main (factor), fine (the images' grid): the same velocity, bit for bit, as
    three refinements of one stage each, run coarse to fine with those factors; each stage's objective drops."""
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool3d(torch.rand(2, 1, 20, 20, 20), 5, 1)  # (2, 1, 16, 16, 16)
    fixed, moving = smooth[:1], smooth[1:]
    velocity = torch.zeros(1, 3, 16, 16, 16)
    settings = RefineSettings(steps=3, pre_steps=2, fine_steps=2, window=3)
    refined, record = refine_velocity(velocity, fixed, moving, settings)
    one = {"pre_steps": 0, "fine_steps": 0, "window": 3}
    expected = velocity
    for factor, steps in ((4, 2), (2, 3), (1, 2)):
        expected, _ = refine_velocity(expected, fixed, moving, RefineSettings(steps=steps, factor=factor, **one))
    torch.testing.assert_close(refined, expected, rtol=0, atol=0)
    for stage in ("_pre", "", "_fine"):
        assert record[f"loss_after{stage}"] < record[f"loss_before{stage}"], stage
    assert not torch.equal(refined, velocity)
