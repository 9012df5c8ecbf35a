"""Workflow factories over the per-step tasks (niworkflows style): one pair registered and evaluated
(:func:`init_pair_wf`), and every subject registered to one reference with the reference's labels
brought back to each subject (:func:`init_to_reference_wf`).

Each factory returns a Pydra 1.0 workflow *task class* with typed inputs and outputs; instantiate it
with the files and run it (``init_pair_wf("synquick")(fixed_image=..., ...)(cache_root=...)``) or add
it to a larger workflow. For thousands of pairs use the cohort engine (:func:`init_cohort_wf`): its
tiles run the same methods and metric functions and give the same warps and metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydra.compose import workflow

from ..tasks import (ANTsRegistration, ApplyWarp, FireANTsRegistration, InverseConsistency, JacobianFolding, LabelDice,
                     LabelVolumes, SMGICNetRegistration)
from ..tasks.filetypes import PACKAGED_MODEL, Image, Json, NiftiGz, Tsv
from ..tasks.registration import ANTS_PRESETS

PAIR_METHODS = ("smgicnet", *ANTS_PRESETS, "fireants")
"""The registry methods with a per-step registration task."""


def factory_parameters(method: str, **parameters) -> str:
    """The factory's parameters as JSON: a workflow input, so that Pydra's cache key of the workflow depends on them
    (two factories' workflows have the same code and would otherwise share cached results)."""
    return json.dumps({"method": method, **{k: str(v) if isinstance(v, Path) else v for k, v in parameters.items()}},
                      sort_keys=True)


def registration_task(method: str, model=None, options: dict | None = None, device: str = "cpu",
                      num_threads: int = 1, random_seed: int = 1):
    """``make(fixed_image, moving_image, fixed_mask, moving_mask) -> registration task`` for a registry method
    (smgicnet, the ANTs presets, fireants); its options over the registry's defaults. model: a model folder (made
    absolute now: the tasks run in their own folders) or None (the packaged model, a folder too: its content is in
    the cache key)."""
    model = PACKAGED_MODEL if model is None else Path(model).absolute()
    if method not in PAIR_METHODS:
        raise ValueError(f"no per-step registration task for method {method!r}; choose from {list(PAIR_METHODS)}")
    if method == "smgicnet":
        return lambda **files: SMGICNetRegistration(**files, model=model, options=options, device=device,
                                                    num_threads=num_threads)
    if method == "fireants":
        return lambda **files: FireANTsRegistration(**files, options=options, device=device, num_threads=num_threads,
                                                    random_seed=random_seed)
    if options:
        raise ValueError(f"the ANTs preset {method} takes no options, got {sorted(options)}")
    return lambda **files: ANTsRegistration(**files, preset=method, num_threads=num_threads, random_seed=random_seed)


def init_pair_wf(method: str = "smgicnet", *, model=None, options: dict | None = None, device: str = "cpu",
                 num_threads: int = 1, random_seed: int = 1, labels: list[int] | None = None):
    """Register moving to fixed with ``method``, warp the moving labels (genericLabel) and evaluate the pair.

    Inputs: ``fixed_image``, ``moving_image`` (T1w, .nii/.nii.gz), ``fixed_mask``, ``moving_mask`` (brain
    masks on their images' grids), ``fixed_labels``, ``moving_labels`` (integer label maps on their
    grids). labels: the label values Dice scores (default: every label of the fixed labels). The input
    ``parameters`` (JSON of the factory's arguments, set by the factory) makes them part of the cache key.
    Outputs: ``forward_warp`` (fixed -> moving, fixed grid), ``inverse_warp`` (moving grid), ``sidecar``,
    ``warped_image``, ``warped_labels`` (on the fixed grid), ``mean_dice``, ``hd95_mm`` (mean HD95, mm),
    ``dice_table`` (TSV per label: Dice, HD95),
    ``folding_percent`` (% of fixed-brain voxels with det J <= 0), ``log_jacobian_std``,
    ``inverse_consistency_mm`` (mean, fixed brain) and ``inverse_consistency_p95_mm``.
    """
    make = registration_task(method, model, options, device, num_threads, random_seed)
    config = factory_parameters(method, model=model and Path(model).absolute(), options=options, device=device,
                                num_threads=num_threads, random_seed=random_seed, labels=labels)

    @workflow.define(outputs=["forward_warp", "inverse_warp", "sidecar", "warped_image", "warped_labels", "mean_dice",
                              "hd95_mm", "dice_table", "folding_percent", "log_jacobian_std", "inverse_consistency_mm",
                              "inverse_consistency_p95_mm"])
    def PairWorkflow(fixed_image: Image, moving_image: Image, fixed_mask: Image, moving_mask: Image,
                     fixed_labels: Image, moving_labels: Image,
                     parameters: str = config) -> tuple[NiftiGz, NiftiGz, Json, NiftiGz, NiftiGz, float, float, Tsv,
                                                        float, float, float, float]:
        reg = workflow.add(make(fixed_image=fixed_image, moving_image=moving_image, fixed_mask=fixed_mask,
                                moving_mask=moving_mask), name="register")
        warped = workflow.add(ApplyWarp(input_image=moving_labels, reference_image=fixed_image,
                                        transforms=reg.forward_warp, interpolation="genericLabel"),
                              name="warp_labels")
        dice = workflow.add(LabelDice(reference_labels=fixed_labels, warped_labels=warped.output_image, labels=labels),
                            name="dice")
        folding = workflow.add(JacobianFolding(warp=reg.forward_warp, mask=fixed_mask), name="folding")
        consistency = workflow.add(InverseConsistency(forward_warp=reg.forward_warp, inverse_warp=reg.inverse_warp,
                                                      mask=fixed_mask), name="inverse_consistency")
        return (reg.forward_warp, reg.inverse_warp, reg.sidecar, reg.warped_image, warped.output_image, dice.mean_dice,
                dice.mean_hd95_mm, dice.table, folding.folding_percent, folding.log_jacobian_std, consistency.mean_mm,
                consistency.p95_mm)

    return PairWorkflow


def init_to_reference_wf(method: str = "smgicnet", *, model=None, options: dict | None = None, device: str = "cpu",
                         num_threads: int = 1, random_seed: int = 1):
    """Register every subject (moving) to one reference (fixed) and bring the reference's labels (an atlas)
    back onto each subject through the inverse warp (genericLabel); count each subject's label volumes.

    Inputs: ``reference_image``, ``reference_mask``, ``reference_labels`` (on the reference grid),
    ``images`` and ``masks`` (lists, one per subject, in the same order). Outputs, lists in subject
    order: ``forward_warps`` (reference grid), ``inverse_warps`` (each subject's grid),
    ``subject_labels`` (the reference labels on each subject's grid) and ``volumes`` (TSVs: label,
    voxels, volume_mm3 of each subject's labels).
    """
    make = registration_task(method, model, options, device, num_threads, random_seed)
    config = factory_parameters(method, model=model and Path(model).absolute(), options=options, device=device,
                                num_threads=num_threads, random_seed=random_seed)

    @workflow.define(outputs=["forward_warp", "inverse_warp", "subject_labels", "volumes"])
    def SubjectToReference(reference_image: Image, reference_mask: Image, reference_labels: Image, image: Image,
                           mask: Image, parameters: str = config) -> tuple[NiftiGz, NiftiGz, NiftiGz, Tsv]:
        reg = workflow.add(make(fixed_image=reference_image, moving_image=image, fixed_mask=reference_mask,
                                moving_mask=mask), name="register")
        labels = workflow.add(ApplyWarp(input_image=reference_labels, reference_image=image,
                                        transforms=reg.inverse_warp, interpolation="genericLabel"),
                              name="propagate_labels")
        volumes = workflow.add(LabelVolumes(labels=labels.output_image), name="volumes")
        return reg.forward_warp, reg.inverse_warp, labels.output_image, volumes.table

    @workflow.define(outputs=["forward_warps", "inverse_warps", "subject_labels", "volumes"])
    def ToReferenceWorkflow(reference_image: Image, reference_mask: Image, reference_labels: Image, images: list[Image],
                            masks: list[Image], parameters: str = config) -> tuple[list[NiftiGz], list[NiftiGz],
                                                                                     list[NiftiGz], list[Tsv]]:
        each = workflow.add(
            SubjectToReference(reference_image=reference_image, reference_mask=reference_mask,
                               reference_labels=reference_labels, parameters=parameters)
            .split(("image", "mask"), image=images, mask=masks).combine(("image", "mask")),
            name="subject")
        return each.forward_warp, each.inverse_warp, each.subject_labels, each.volumes

    return ToReferenceWorkflow


__all__ = ["init_pair_wf", "init_to_reference_wf", "registration_task"]
