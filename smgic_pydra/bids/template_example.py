"""A real template laid out as TemplateFlow lays it out, built from the files nilearn ships (offline).

nilearn ships the ICBM 2009a nonlinear symmetric template at 1 mm (TemplateFlow's
``MNI152NLin2009aSym``): the T1w and its grey- and white-matter probability maps
(``nilearn.datasets.MNI152_FILE_PATH``, ``GM_MNI152_FILE_PATH``, ``WM_MNI152_FILE_PATH``; uint8,
0-255 for probability 0-1). From them:

* brain mask: GM + WM probability >= 0.5, holes filled in 3-D (the ventricles and the CSF they
  enclose are inside the brain);
* tissue dseg: 1 GM, 2 WM (the larger of the two probabilities, inside the mask), 3 CSF (inside the
  mask where GM + WM < 0.5), 0 outside; its table ``tpl-NAME_dseg.tsv`` (``index``, ``name``).

Written as ``HOME/tpl-MNI152NLin2009aSym/tpl-MNI152NLin2009aSym_res-{1,2}_{T1w,desc-brain_mask,dseg,
label-GM_probseg,label-WM_probseg}.nii.gz`` (res-2: 2 mm, the means of 2 x 2 x 2 blocks of the 1 mm
T1w and probabilities, mask and dseg derived again), the ``dseg.tsv`` and ``template_description.json``,
which the ``templateflow`` client indexes like a fetched template (point ``TEMPLATEFLOW_HOME`` at HOME).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

NAME = "MNI152NLin2009aSym"
TISSUES = {1: "GM", 2: "WM", 3: "CSF"}


def _block_mean(data: np.ndarray) -> np.ndarray:
    """Means of 2 x 2 x 2 blocks (the last plane of an odd axis dropped)."""
    n = [d // 2 for d in data.shape]
    return data[:2 * n[0], :2 * n[1], :2 * n[2]].reshape(n[0], 2, n[1], 2, n[2], 2).mean(axis=(1, 3, 5))


def make_nilearn_templateflow_home(home) -> Path:
    """Write :data:`NAME` at res-1 (1 mm) and res-2 (2 mm) under ``home`` (created; files replaced); returns ``home``."""
    from nilearn import datasets
    from scipy import ndimage

    home = Path(home)
    folder = home / f"tpl-{NAME}"
    folder.mkdir(parents=True, exist_ok=True)
    t1w_img = nib.load(datasets.MNI152_FILE_PATH)
    t1w = t1w_img.get_fdata()
    gm = nib.load(datasets.GM_MNI152_FILE_PATH).get_fdata() / 255.0
    wm = nib.load(datasets.WM_MNI152_FILE_PATH).get_fdata() / 255.0
    # res-2: voxel (i, j, k) is the block of 1 mm voxels 2i..2i+1, so its centre is at 1 mm index 2i + 0.5
    to_res2 = np.array([[2.0, 0, 0, 0.5], [0, 2.0, 0, 0.5], [0, 0, 2.0, 0.5], [0, 0, 0, 1]])
    levels = {1: (t1w_img.affine, t1w, gm, wm),
              2: (t1w_img.affine @ to_res2, _block_mean(t1w), _block_mean(gm), _block_mean(wm))}
    description = {"Name": "ICBM 2009a Nonlinear Symmetric (from nilearn's copy; mask and dseg derived, see "
                   "smgic_pydra.bids.template_example)", "Identifier": NAME, "TemplateFlowVersion": "1.0.0", "res": {}}
    for res, (affine, t1, g, w) in levels.items():
        brain = ndimage.binary_fill_holes(g + w >= 0.5)
        dseg = np.where(g >= w, 1, 2) * (g + w >= 0.5)
        dseg[brain & (dseg == 0)] = 3
        for data, suffix, dtype in ((np.round(t1), "T1w", np.uint8), (brain, "desc-brain_mask", np.uint8),
                                    (dseg, "dseg", np.uint8), (g, "label-GM_probseg", np.float32),
                                    (w, "label-WM_probseg", np.float32)):
            image = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
            image.header.set_xyzt_units("mm")
            image.set_qform(affine, code=4)  # MNI152
            image.set_sform(affine, code=4)
            nib.save(image, folder / f"tpl-{NAME}_res-{res}_{suffix}.nii.gz")
        description["res"][str(res)] = {"origin": [float(v) for v in affine[:3, 3]], "shape": list(t1.shape),
                                        "zooms": [float(res)] * 3}
    (folder / f"tpl-{NAME}_dseg.tsv").write_text("index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in TISSUES.items()))
    (folder / "template_description.json").write_text(json.dumps(description, indent=2) + "\n")
    if not (home / "dataset_description.json").is_file():
        (home / "dataset_description.json").write_text(json.dumps({"Name": "TemplateFlow (local)", "BIDSVersion": "1.4.0"}) + "\n")
    return home
