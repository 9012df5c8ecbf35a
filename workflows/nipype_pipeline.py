#!/usr/bin/env python
"""SM-GICNet dropped into a Nipype 1 pipeline, fMRIPrep style: our interfaces register, ANTs applies the warp.

Usage: python workflows/nipype_pipeline.py FIXED_T1W MOVING_T1W -o OUT_DIR [--fixed-mask F] [--moving-mask M]
       [--moving-labels L] [--model DIR] [--device cpu] [-w WORK_DIR] [--nprocs 2]
The T1w images are skull-stripped, or come with brain masks. The pipeline: prepare both subjects
(:class:`smgic_pydra.interfaces.PrepareSubject`), register moving -> fixed with SM-GICNet
(:class:`SMGICNetRegistration`: warps, warped image and labels, Jacobian, sidecar), then hand the
forward warp to ``nipype.interfaces.ants.ApplyTransforms`` (the ``antsApplyTransforms`` binary) to
bring the moving T1w (and labels) onto the fixed image, as any ANTs-based pipeline would with its
own transforms. A DataSink collects everything in OUT_DIR. Needs the ``antsApplyTransforms``
executable on PATH (ANTs; the antspyx wheel ships the compiled tool but no executable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def init_smgicnet_wf(name: str = "smgicnet_wf", model: str | None = None, device: str = "cpu", num_threads: int = 1,
                     with_labels: bool = True):
    """A Nipype workflow: inputnode (fixed_t1w, fixed_mask, fixed_id, moving_t1w, moving_mask, moving_labels,
    moving_id) -> PrepareSubject x 2 -> SMGICNetRegistration -> ants.ApplyTransforms (T1w, and labels with
    ``GenericLabel`` when ``with_labels``) -> outputnode (our outputs and ANTs' resampled images).

    Leave ``*_mask`` / ``moving_labels`` unconnected when absent (the T1w is then taken as skull-stripped).
    """
    from nipype.interfaces import ants
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from smgic_pydra.interfaces import PrepareSubject, SMGICNetRegistration

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["fixed_t1w", "fixed_mask", "fixed_id", "moving_t1w",
                                                      "moving_mask", "moving_labels", "moving_id"]), name="inputnode")
    outputs = ["warp", "inverse_warp", "warped", "warped_labels", "jacobian", "sidecar", "ants_warped",
               "ants_warped_labels"]
    outputnode = pe.Node(niu.IdentityInterface(fields=outputs), name="outputnode")
    model_args = {"model": model} if model else {}
    prep_fixed = pe.Node(PrepareSubject(**model_args), name="prep_fixed")
    prep_moving = pe.Node(PrepareSubject(**model_args), name="prep_moving")
    register = pe.Node(SMGICNetRegistration(device=device, num_threads=num_threads, **model_args), name="register",
                       n_procs=num_threads)
    # the warp is an ITK displacement field holding the whole mapping: ANTs applies it alone
    ants_t1w = pe.Node(ants.ApplyTransforms(dimension=3, interpolation="Linear", float=True), name="ants_t1w")
    wf.connect([
        (inputnode, prep_fixed, [("fixed_t1w", "t1w"), ("fixed_mask", "mask"), ("fixed_id", "subject_id")]),
        (inputnode, prep_moving, [("moving_t1w", "t1w"), ("moving_mask", "mask"), ("moving_labels", "labels"),
                                  ("moving_id", "subject_id")]),
        (prep_fixed, register, [("prepared_dir", "fixed_dir")]),
        (prep_moving, register, [("prepared_dir", "moving_dir")]),
        (inputnode, ants_t1w, [("moving_t1w", "input_image"), ("fixed_t1w", "reference_image")]),
        (register, ants_t1w, [("warp", "transforms")]),
        (register, outputnode, [(k, k) for k in ("warp", "inverse_warp", "warped", "jacobian", "sidecar")]),
        (ants_t1w, outputnode, [("output_image", "ants_warped")]),
    ])  # fmt: skip
    if with_labels:
        ants_labels = pe.Node(ants.ApplyTransforms(dimension=3, interpolation="GenericLabel"), name="ants_labels")
        wf.connect([
            (inputnode, ants_labels, [("moving_labels", "input_image"), ("fixed_t1w", "reference_image")]),
            (register, ants_labels, [("warp", "transforms")]),
            (register, outputnode, [("warped_labels", "warped_labels")]),
            (ants_labels, outputnode, [("output_image", "ants_warped_labels")]),
        ])  # fmt: skip
    return wf


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fixed_t1w", type=Path)
    p.add_argument("moving_t1w", type=Path)
    p.add_argument("-o", "--out-dir", type=Path, required=True)
    p.add_argument("--fixed-mask", type=Path)
    p.add_argument("--moving-mask", type=Path)
    p.add_argument("--moving-labels", type=Path)
    p.add_argument("--model", default=None, help="model folder (default: the packaged model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("-w", "--work-dir", type=Path, default=Path("work"))
    p.add_argument("--nprocs", type=int, default=2)
    args = p.parse_args(argv)

    from nipype.interfaces.io import DataSink
    from nipype.pipeline import engine as pe

    wf = init_smgicnet_wf(model=args.model, device=args.device, with_labels=args.moving_labels is not None)
    wf.base_dir = str(args.work_dir.absolute())
    inputs = wf.get_node("inputnode").inputs
    inputs.fixed_t1w, inputs.moving_t1w = str(args.fixed_t1w.absolute()), str(args.moving_t1w.absolute())
    inputs.fixed_id, inputs.moving_id = "fixed", "moving"
    for name in ("fixed_mask", "moving_mask", "moving_labels"):
        if getattr(args, name) is not None:
            setattr(inputs, name, str(getattr(args, name).absolute()))
    sink = pe.Node(DataSink(base_directory=str(args.out_dir.absolute()), parameterization=False), name="sink")
    outputnode = wf.get_node("outputnode")
    for field in outputnode.outputs.copyable_trait_names():
        if field in ("warped_labels", "ants_warped_labels") and args.moving_labels is None:
            continue
        wf.connect(outputnode, field, sink, f"smgicnet.@{field}")
    wf.run(plugin="MultiProc", plugin_args={"n_procs": args.nprocs})
    print(f"outputs in {args.out_dir / 'smgicnet'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
