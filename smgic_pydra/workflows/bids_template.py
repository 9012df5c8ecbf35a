"""``smgic-bids ... --pairs template:NAME[:res-N]``: every selected subject registered to a TemplateFlow template.

participant: the template is found under ``TEMPLATEFLOW_HOME`` before any work (a missing file is one
line, :func:`~smgic_pydra.bids.templates.find_template`), then each selected subject (its brain mask
from the derivatives) is registered with the one ``--method`` to the template (the fixed image, with
its brain mask), writing the files of :mod:`.to_template` into ``OUTPUT_DIR/sub-X[/ses-Y]/anat``.
A subject whose files exist with the same content key (SHA-256 of its inputs, the template's files,
the method, its options with the network precision that runs on ``--device``, the model's weights and config and
the seed, recorded in the forward warp's sidecar) is not redone. A failing subject is a failed line; the others finish.

group: per template, ``reports/tpl-NAME_desc-mean_T1w.nii.gz`` (the voxel-wise mean of the subjects'
``space-NAME`` T1w), ``reports/tpl-NAME_desc-logjacobian_maps.nii.gz`` (4-D: one log-Jacobian map in
template space per subject, in the order of ``reports/tpl-NAME_subjects.tsv``) and, when the template
has labels, ``reports/tpl-NAME_label_volumes.tsv`` (subject, index, name, voxels, volume_mm3 of the
template's labels propagated to each subject's space).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from ..bids import derivatives
from ..bids.templates import PREFIX, find_template, template_output_names
from ..io.errors import InputError, display_path

SIDECAR_KEY = "template_run"


def is_template_run(pairs: str) -> bool:
    """Whether ``--pairs`` names a template (``template:NAME[:res-N]``)."""
    return str(pairs).startswith(PREFIX)


def _content_key(subject, template, method: str, options: dict, model: dict | None, seed: int) -> str:
    """options: :meth:`~smgic_pydra.methods.RegistrationMethod.keyed_options`; model: :func:`~.cohort.model_identity`
    (None: the method uses none)."""
    from ..io.hashing import sha256_file, sha256_json

    inputs = [subject.preproc_t1w or subject.t1w, subject.mask, template.t1w, template.mask, template.dseg]
    return sha256_json({"inputs": [sha256_file(p) if p else None for p in inputs], "method": method,
                        "options": options, "model": model, "seed": seed})


def _done(anat: Path, names: dict, key: str) -> bool:
    sidecar = anat / names["forward"].replace(".nii.gz", ".json")
    if not sidecar.is_file() or not all((anat / n).is_file() for r, n in names.items() if r != "labels"):
        return False
    try:
        return json.loads(sidecar.read_text()).get(SIDECAR_KEY, {}).get("content_key") == key
    except ValueError:
        return False


def run_template_participant(settings) -> list[str]:
    """The participant level of a template run (see the module docstring); returns the failed subjects' lines."""
    from .. import __version__
    from ..bids.layout import collect_subjects, require_brain_masks
    from ..io.atomic import save_json
    from ..methods import get_method
    from ..settings import write_run_config
    from .cohort import model_identity
    from .to_template import register_to_template

    s = settings
    template = find_template(s.pairs)  # before any work
    methods = [m for m in s.methods if m != "identity"]
    if len(methods) != 1:
        raise InputError("--method", f"a template run takes one registration method, got {', '.join(methods)}")
    method = methods[0]
    if not s.skip_bids_validation:
        from ..bids.validation import check_dataset

        check_dataset(s.bids_dir)
    subjects = collect_subjects(s.bids_dir, s.participant_label, s.session_label, bids_filters=s.bids_filter_file)
    if require_brain_masks(subjects, s.skull_strip) != "none" or any(x.mask is None for x in subjects):
        raise InputError("--skull-strip", "a template run needs each subject's brain mask from the derivatives "
                         "(computing masks is not supported with --pairs template: yet)")
    entry = get_method(method)
    options = entry.keyed_options(s.method_options.get(method), s.device)  # here, where it runs
    model = model_identity(s.model) if entry.uses_model else None
    if s.plan_only:
        print(f"smgic-bids: {len(subjects)} subject(s) to {template.name} (res-{template.resolution}) with {method}")
        return []
    derivatives.write_dataset_description(s.output_dir, __version__, None if model is None else model["weights_sha256"],
                                          s.random_seed, s.bids_dir)
    write_run_config(s)
    failed = []
    for subject in subjects:
        prefix = derivatives.file_prefix(subject)
        anat = derivatives.subject_anat_dir(s.output_dir, subject)
        names = template_output_names(prefix, template.name)
        key = _content_key(subject, template, method, options, model, s.random_seed)
        if _done(anat, names, key):
            continue
        try:
            files = register_to_template(subject.preproc_t1w or subject.t1w, subject.mask, template, anat, prefix,
                                         method=method, model=s.model, options=s.method_options.get(method),
                                         device=s.device, num_threads=s.omp_nthreads, random_seed=s.random_seed)
        except Exception as exc:  # errors are data: the others finish
            failed.append(f"{prefix} to {template.name}: {' '.join(str(exc).split())}")
            continue
        sidecar = json.loads(files["sidecar"].read_text())
        sidecar[SIDECAR_KEY] = {"content_key": key, "template": template.name, "resolution": template.resolution,
                                "method": method, "subject": prefix,
                                "labels_tsv": str(template.labels_tsv) if template.labels_tsv else None}
        save_json(sidecar, files["sidecar"])
    print(f"smgic-bids: {len(subjects) - len(failed)}/{len(subjects)} subject(s) registered to {template.name}; "
          f"outputs in {s.output_dir}")
    return failed


def template_runs(output_dir) -> dict[str, list[dict]]:
    """Template name -> the ``template_run`` records of the subjects registered to it in ``output_dir``."""
    runs: dict[str, list[dict]] = {}
    for sidecar in sorted(Path(output_dir).glob("sub-*/**/anat/*_from-T1w_to-*_mode-image_xfm.json")):
        record = json.loads(sidecar.read_text()).get(SIDECAR_KEY)
        if record:
            runs.setdefault(record["template"], []).append({**record, "anat": str(sidecar.parent)})
    return runs


def run_template_group(output_dir) -> list[str]:
    """The group level of template runs (see the module docstring); returns the problem lines (missing files)."""
    import pandas as pd

    from ..io.atomic import save_nifti

    reports = Path(output_dir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    problems = []
    for name, records in template_runs(output_dir).items():
        images, logjacs, volumes, order = [], [], [], []
        for record in records:
            anat, names = Path(record["anat"]), template_output_names(record["subject"], name)
            missing = [anat / names[r] for r in ("t1w", "jacobian") if not (anat / names[r]).is_file()]
            if missing:
                problems.append(f"{display_path(missing[0])}: missing; run the participant level again")
                continue
            t1w = nib.load(anat / names["t1w"])
            images.append(t1w.get_fdata(dtype=np.float32))
            logjacs.append(nib.load(anat / names["jacobian"]).get_fdata(dtype=np.float32))
            order.append(record["subject"])
            labels_file = anat / names["labels"]
            if record.get("labels_tsv") and labels_file.is_file():
                table = pd.read_csv(record["labels_tsv"], sep="\t")
                labels = nib.load(labels_file)
                counts = np.bincount(np.asarray(labels.dataobj).astype(np.int64).ravel(),
                                     minlength=int(table["index"].max()) + 1)
                voxel_mm3 = float(abs(np.linalg.det(labels.affine[:3, :3])))
                volumes += [{"subject": record["subject"], "index": int(i), "name": n, "voxels": int(counts[i]),
                             "volume_mm3": counts[i] * voxel_mm3} for i, n in zip(table["index"], table["name"])]
        if not images:
            continue
        save_nifti(nib.Nifti1Image(np.mean(images, axis=0), t1w.affine), reports / f"tpl-{name}_desc-mean_T1w.nii.gz")
        save_nifti(nib.Nifti1Image(np.stack(logjacs, axis=-1), t1w.affine),
                   reports / f"tpl-{name}_desc-logjacobian_maps.nii.gz")
        pd.DataFrame({"volume": range(len(order)), "subject": order}).to_csv(
            reports / f"tpl-{name}_subjects.tsv", sep="\t", index=False)
        if volumes:
            pd.DataFrame(volumes).to_csv(reports / f"tpl-{name}_label_volumes.tsv", sep="\t", index=False)
        print(f"smgic-bids: {name}: {len(order)} subject(s); reports in {reports}")
    return problems
