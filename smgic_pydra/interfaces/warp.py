"""Nipype interface: apply one of our warps to an image or a label map (the resampler the registration uses)."""

from __future__ import annotations

import os

from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits


class _ApplyWarpInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image or label map on the moving grid")
    reference = File(exists=True, mandatory=True, desc="image on the warp's grid (the fixed image)")
    warp = File(exists=True, mandatory=True, desc="ITK/ANTs displacement field on the reference grid "
                "(RegisterPair's warp: fixed -> moving)")
    interpolation = traits.Enum("linear", "nearest", "labels", usedefault=True,
                                desc="linear (float32), nearest, or labels (label-aware, no new label values)")


class _ApplyWarpOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="in_file pulled back onto the reference grid (0 outside in_file)")


class ApplyWarp(SimpleInterface):
    """``out(x) = in_file(x + u(x))`` on the reference grid, with :func:`smgic_pydra.worldspace.resample_with_displacement`."""

    input_spec = _ApplyWarpInputSpec
    output_spec = _ApplyWarpOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib
        import numpy as np

        from ..io.atomic import save_nifti
        from ..io.images import load_image
        from ..io.itk_warp import read_itk_displacement
        from ..worldspace import resample_with_displacement
        from ..worldspace.outputs import nifti_image

        disp, affine = read_itk_displacement(self.inputs.warp)
        reference = nib.load(self.inputs.reference)
        if disp.shape[:3] != reference.shape[:3] or not np.allclose(affine, reference.affine, atol=1e-3):
            raise ValueError(f"{self.inputs.warp}: the warp is not on the grid of {self.inputs.reference}")
        source = load_image(self.inputs.in_file, "labels" if self.inputs.interpolation == "labels" else "image")
        order = {"linear": 1, "nearest": 0, "labels": "labels"}[self.inputs.interpolation]
        data = resample_with_displacement(source, disp, affine, disp.shape[:3], order)
        if order == "labels":
            data = data.astype(np.int32)
        name = os.path.basename(self.inputs.in_file).split(".")[0] + "_warped.nii.gz"
        self._results["out_file"] = str(save_nifti(nifti_image(data, affine), os.path.join(runtime.cwd, name)))
        return runtime
