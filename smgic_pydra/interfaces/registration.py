"""Nipype interfaces: register a prepared pair with a registry method (SM-GICNet, ANTs, FireANTs).

The same runner as the Pydra task :func:`smgic_pydra.tasks.RegisterTile` (the method's
``make_runner`` from :mod:`smgic_pydra.methods.registry`), so the files are the same bit for bit.
Outputs go to the node's folder, named ``<moving>_to-<fixed>_desc-<method>_<role>``.
"""

from __future__ import annotations

import os

from nipype.interfaces.base import BaseInterfaceInputSpec, Directory, File, SimpleInterface, TraitedSpec, isdefined, traits

from ..methods.registry import METHODS
from ..pipeline_settings import QUALITY_PRESETS, quality_options

FILE_NAMES = {"warp": "xfm.nii.gz", "inverse_warp": "inversexfm.nii.gz", "warped": "T1w.nii.gz",
              "warped_labels": "dseg.nii.gz", "jacobian": "jacobian.nii.gz", "sidecar": "xfm.json"}
"""output role -> file name suffix."""


class _RegisterPairInputSpec(BaseInterfaceInputSpec):
    fixed_dir = Directory(exists=True, mandatory=True, desc="prepared fixed subject (PrepareSubject)")
    moving_dir = Directory(exists=True, mandatory=True, desc="prepared moving subject (PrepareSubject)")
    method = traits.Enum(*METHODS, usedefault=True, desc="registration method (smgic_pydra.methods.registry)")
    model = Directory(exists=True, desc="SM-GICNet model folder (default: the packaged model)")
    device = traits.Str("cpu", usedefault=True, desc="cpu, cuda or cuda:N (GPU-capable methods)")
    num_threads = traits.Int(1, usedefault=True, desc="threads (torch; ITK for ANTs)")
    random_seed = traits.Int(1, usedefault=True, desc="seed of ANTs' sampling and FireANTs (>= 1)")
    options = traits.Dict(desc="the method's options (overriding its registry defaults), recorded in the sidecar")


class _RegisterPairOutputSpec(TraitedSpec):
    warp = File(exists=True, desc="forward warp, ITK/ANTs 5-D displacement (LPS mm), fixed -> moving, fixed grid")
    inverse_warp = File(exists=True, desc="inverse warp, moving -> fixed, moving grid")
    warped = File(exists=True, desc="moving T1w warped onto the fixed grid (linear)")
    warped_labels = File(desc="moving labels warped onto the fixed grid (label-aware); only with moving labels")
    jacobian = File(exists=True, desc="det(I + du/dx) of the forward warp, fixed grid")
    sidecar = File(exists=True, desc="JSON sidecar: method, inputs, model hash, options, seed, times")
    forward_seconds = traits.Float(desc="registration time (s), without reading and writing")


class RegisterPair(SimpleInterface):
    """Register the moving subject to the fixed one with ``method`` and write, into the node's folder, the
    forward and inverse warps, the warped T1w, the warped labels (when the moving subject has labels),
    the Jacobian map and the JSON sidecar (:data:`FILE_NAMES`); no ``.mat`` or ``.h5``: the warps hold
    the whole mapping, affine included."""

    input_spec = _RegisterPairInputSpec
    output_spec = _RegisterPairOutputSpec

    def _run_interface(self, runtime):
        from ..methods import MethodContext, get_method
        from ..preparation import PreparedSubject
        from ..devices import limit_threads
        from ..worldspace import PairOutputPaths

        entry = get_method(self.inputs.method)
        options = {**self._preset_options(), **(self.inputs.options if isdefined(self.inputs.options) else {})}
        context = MethodContext(model=self.inputs.model if isdefined(self.inputs.model) else "",
                                device=self.inputs.device, threads=self.inputs.num_threads,
                                seed=self.inputs.random_seed, options=entry.merged_options(options))
        limit_threads(self.inputs.num_threads)
        fixed, moving = PreparedSubject.load(self.inputs.fixed_dir), PreparedSubject.load(self.inputs.moving_dir)
        stem = f"{moving.subject_id}_to-{fixed.subject_id}_desc-{entry.name}_"
        paths = PairOutputPaths(**{role: os.path.join(runtime.cwd, stem + name) for role, name in FILE_NAMES.items()})
        row = entry.make_runner(context)(fixed, moving, {}).write_row(paths)
        self._results.update(row["files"])
        self._results["forward_seconds"] = row["forward_seconds"]
        return runtime

    def _preset_options(self) -> dict:
        """Options under ``options`` (none here; SM-GICNet's ``quality`` preset)."""
        return {}


class _SMGICNetInputSpec(_RegisterPairInputSpec):
    method = traits.Enum("smgicnet", usedefault=True, desc="always smgicnet")
    quality = traits.Enum(*QUALITY_PRESETS, usedefault=True,  # its default is the first: "default"
                          desc="preset under options: default, fast (no refinement; half grid for >= 2.85 mm) or best "
                               "(8 refinement steps on the 1.5 mm grid instead of 4)")


class SMGICNetRegistration(RegisterPair):
    """:class:`RegisterPair` with SM-GICNet (symmetric diffeomorphic network; ``model``, ``device``, ``quality``)."""

    input_spec = _SMGICNetInputSpec

    def _preset_options(self) -> dict:
        return quality_options(self.inputs.quality)


class _ANTsBaselineInputSpec(_RegisterPairInputSpec):
    method = traits.Enum(*(n for n, m in METHODS.items() if m.runner == METHODS["syn"].runner), mandatory=True,
                         desc="ANTs preset (syn, synquick, affine) or identity")


class ANTsBaseline(RegisterPair):
    """:class:`RegisterPair` with an ANTs baseline (antspyx, the scripts' stages and defaults)."""

    input_spec = _ANTsBaselineInputSpec
