"""One subject registered to a TemplateFlow template, written with NiPreps names (see :mod:`smgic_pydra.bids.templates`).

The registration is the symmetric pair pipeline of every method with the template as the fixed image
(its brain mask as the fixed mask); the files go to ``anat_dir`` as

* ``<key>_from-T1w_to-NAME_mode-image_xfm.nii.gz``: ITK/ANTs displacement on the template grid,
  template -> subject (pull-back), so ``antsApplyTransforms -i T1w -r template -t it`` gives the
  subject in template space; ``<key>_from-NAME_to-T1w_mode-image_xfm.nii.gz``: the inverse, on the
  subject's grid; ``..._xfm.json``: the registration's sidecar;
* ``<key>_space-NAME_desc-preproc_T1w.nii.gz``: the skull-stripped T1w (T1w x brain mask) in template
  space, trilinear; ``<key>_space-NAME_desc-logjacobian_map.nii.gz``: log det of the forward warp's
  Jacobian (local volume of the subject relative to the template; 0 where the determinant is <= 0);
* ``<key>_space-T1w_atlas-NAME_dseg.nii.gz``: the template's dseg in the subject's space (label-aware
  pull through the inverse warp), when the template has one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from ..bids.templates import TemplateFiles, template_output_names


def register_to_template(t1w, mask, template: TemplateFiles, anat_dir, subject_key: str, *, method: str = "smgicnet",
                         model=None, options: dict | None = None, device: str = "cpu", num_threads: int = 1,
                         random_seed: int = 1) -> dict[str, Path]:
    """Register the subject (``t1w`` with brain ``mask``) to ``template`` on ``device`` (cpu, cuda or cuda:N);
    returns role -> written file (the roles of :func:`~smgic_pydra.bids.templates.template_output_names`, plus
    ``sidecar``)."""
    from ..tasks.apply_warp import apply_warp
    from ..tasks.registration import OUTPUTS, register_files

    names = template_output_names(subject_key, template.name)
    anat_dir = Path(anat_dir)
    anat_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=anat_dir, prefix=".to-template-") as tmp:
        values = register_files(method, template.t1w, t1w, template.mask, mask, model=model, options=options,
                                device=device, num_threads=num_threads, random_seed=random_seed, out_dir=tmp)
        files = dict(zip(OUTPUTS, values))
        staged = {"forward": files["forward_warp"], "inverse": files["inverse_warp"], "t1w": files["warped_image"],
                  "sidecar": files["sidecar"]}
        det = nib.load(files["jacobian"])
        logjac = np.log(np.clip(np.asarray(det.dataobj, dtype=np.float64), 1e-12, None)) * (np.asarray(det.dataobj) > 0)
        staged["jacobian"] = Path(tmp) / "logjacobian.nii.gz"
        nib.save(nib.Nifti1Image(logjac.astype(np.float32), det.affine), staged["jacobian"])
        if template.dseg is not None:
            with contextlib.chdir(tmp):
                staged["labels"] = apply_warp(template.dseg, t1w, files["inverse_warp"], "genericLabel")
        names["sidecar"] = names["forward"].replace(".nii.gz", ".json")
        written = {}
        for role, source in staged.items():  # into place only when everything was computed
            target = anat_dir / names[role]
            shutil.move(str(source), target)
            written[role] = target
    return written
