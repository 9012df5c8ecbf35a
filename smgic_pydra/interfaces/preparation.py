"""Nipype interface: prepare one subject on a model's network grid (:func:`smgic_pydra.preparation.prepare_subject`)."""

from __future__ import annotations

import os

from nipype.interfaces.base import BaseInterfaceInputSpec, Directory, File, SimpleInterface, TraitedSpec, isdefined, traits

from ..preparation.skullstrip import SKULL_STRIP_METHODS


class _PrepareSubjectInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="T1w image (NIfTI or MGZ, any orientation); skull-stripped "
               "unless skull_strip is a tool")
    mask = File(exists=True, desc="brain mask on the T1w's grid (brain where > 0)")
    labels = File(exists=True, desc="integer label map on the T1w's grid (for Dice)")
    subject_id = traits.Str(mandatory=True, desc="subject label, e.g. sub-01")
    model = Directory(exists=True, desc="model folder whose network grid the subject is placed on "
                      "(default: the packaged model)")
    skull_strip = traits.Enum(*SKULL_STRIP_METHODS, usedefault=True, desc="skull stripping when there is no mask")


class _PrepareSubjectOutputSpec(TraitedSpec):
    prepared_dir = Directory(exists=True, desc="the prepared subject (input of RegisterPair and PairMetrics)")


class PrepareSubject(SimpleInterface):
    """Prepare a subject (brain mask, intensities in [0, 1], network grid on the brain) in the node's folder,
    as the Pydra task :func:`smgic_pydra.tasks.PrepareSubject` does (which returns errors as data; this raises)."""

    input_spec = _PrepareSubjectInputSpec
    output_spec = _PrepareSubjectOutputSpec

    def _run_interface(self, runtime):
        from ..config import SMGICNetConfig
        from ..inference import resolve_model_files
        from ..preparation import prepare_subject

        model = self.inputs.model if isdefined(self.inputs.model) else None
        cfg = SMGICNetConfig.from_json(resolve_model_files(model)[1].read_text())
        optional = {k: getattr(self.inputs, k) if isdefined(getattr(self.inputs, k)) else None for k in ("mask", "labels")}
        out_dir = os.path.join(runtime.cwd, self.inputs.subject_id)
        prepare_subject(self.inputs.t1w, out_dir, cfg, mask_path=optional["mask"], labels_path=optional["labels"],
                        skull_strip=self.inputs.skull_strip, subject_id=self.inputs.subject_id)
        self._results["prepared_dir"] = out_dir
        return runtime
