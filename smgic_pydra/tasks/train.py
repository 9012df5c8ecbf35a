"""Pydra tasks: train SM-GICNet on prepared subjects (resumable), and package the trained model with its card.

``TrainModel`` is the one long, GPU-bound job of a training workflow (the SLURM worker gives the
node ``train`` a GPU with ``--device cuda``). It keeps its checkpoints and logs in ``run_dir``,
outside pydra's per-job folder, so a killed job that is started again continues from its last
checkpoint instead of starting over.
"""

from __future__ import annotations

from pydra.compose import python

from ..defaults import CHECKPOINT_EVERY, VALIDATE_EVERY

PROCESS_LOG = "processes.jsonl"
"""One JSON line per process that trained in a run folder: where it started and on which device."""


@python.define(outputs=["checkpoint"])
def TrainModel(subjects: list, prepared_dirs: list, preparation_errors: list, train_ids: list, validation_ids: list,
               run_dir: str, config_json: str, plan_json: str, init_weights: str = "", device: str = "cpu",
               precision: str = "fp32", checkpoint_every: int = CHECKPOINT_EVERY, validate_every: int = VALIDATE_EVERY,
               label_values: list | None = None) -> str:
    """Train (or continue training in ``run_dir``) and return the final checkpoint folder.

    subjects / prepared_dirs / preparation_errors: the outputs of :func:`PrepareSubject`, in order.
    train_ids / validation_ids: subject keys of each side (validation may be empty). config_json:
    :meth:`SMGICNetConfig.to_json`; plan_json: a :class:`TrainPlan` as JSON; init_weights: a
    ``model.safetensors`` to start from (``""``: random). label_values: labels of the validation
    Dice (None or empty: every positive label present). Raises :class:`TrainingError` (one line)
    when a subject could not be prepared or the settings are bad.
    """
    import json
    import os
    import platform
    from datetime import datetime, timezone
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.preparation import PreparedSubject
    from smgic_pydra.training import RunOptions, Trainer, TrainingError, TrainPlan, latest_checkpoint
    from smgic_pydra.training.trainer import CHECKPOINT_DIR
    from smgic_pydra.training.validation import Validator

    failed = [e for e in preparation_errors if e]
    if failed:
        raise TrainingError(f"{len(failed)} subject(s) could not be prepared: {'; '.join(failed)}")
    by_id = dict(zip(subjects, prepared_dirs))

    def items(ids):
        loaded = [PreparedSubject.load(by_id[i]) for i in ids]
        return [(torch.from_numpy(s.image), None if s.labels is None else torch.from_numpy(s.labels)) for s in loaded]

    cfg = SMGICNetConfig.from_json(config_json)
    plan = TrainPlan.from_dict(json.loads(plan_json))
    training = items(train_ids)
    validator = Validator(items(validation_ids), cfg, label_values or None, partners=training,
                          seed=plan.seed) if validation_ids else None
    options = RunOptions(device=device, precision=precision, checkpoint_every=checkpoint_every,
                         validate_every=validate_every, progress=False)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if latest_checkpoint(run / CHECKPOINT_DIR) is not None:
        trainer = Trainer.resume(run, training, options, validator=validator)
    else:
        init = load_file(init_weights) if init_weights else None
        trainer = Trainer(cfg, training, run, plan, options, init_weights=init, validator=validator)
    with open(run / PROCESS_LOG, "a") as log:
        log.write(json.dumps({"started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "from_global_step": trainer.state.global_step, "device": str(trainer.device),
                              "precision": precision, "host": platform.node(), "pid": os.getpid()}) + "\n")
    trainer.run()
    return str(latest_checkpoint(run / CHECKPOINT_DIR))


@python.define(outputs=["model_dir"])
def PackageModel(checkpoint: str, run_dir: str, output_dir: str, record: dict, split_rows: list,
                 bids_dir: str) -> str:
    """Write the trained model folder ``output_dir`` all or nothing, then its ``dataset_description.json``.

    Files: ``model.safetensors``, its SHA-256 ``model.safetensors.sha256`` and ``config.json`` (from ``checkpoint``), ``MODEL_CARD.md``,
    ``training.json`` (``record`` completed with the run, the weights' SHA-256 and the versions),
    ``split.tsv``, ``training_log.csv``, ``validation_log.csv``, ``training_summary.csv``,
    ``training_curves.png`` and ``index.html`` (:mod:`smgic_pydra.reports.training_page`). The folder
    is a valid ``--model`` for ``smgic-bids``.
    """
    import csv
    import json
    import shutil
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    import smgic_pydra
    from smgic_pydra.bids.derivatives import MODEL_BIDSIGNORE, write_dataset_description
    from smgic_pydra.inference.model_io import CONFIG_NAME, HASH_NAME, WEIGHTS_NAME, weights_hash_text
    from smgic_pydra.io.atomic import atomic_paths, json_text
    from smgic_pydra.training.checkpoint import weights_sha256
    from smgic_pydra.training.curves import plot_curves, read_log, stage_summary, write_summary
    from smgic_pydra.reports.training_page import write_training_page
    from smgic_pydra.training.model_card import render_model_card
    from smgic_pydra.training.split import SPLIT_COLUMNS
    from smgic_pydra.training.trainer import LOG_FILE, VALIDATION_LOG_FILE
    from smgic_pydra.training.validation import VALIDATION_COLUMNS
    from smgic_pydra.tasks.train import PROCESS_LOG

    run, source, out = Path(run_dir), Path(checkpoint), Path(output_dir)
    log, validation = read_log(run / LOG_FILE), read_log(run / VALIDATION_LOG_FILE)
    processes = [json.loads(line) for line in (run / PROCESS_LOG).read_text().splitlines() if line.strip()]
    summary = stage_summary(log, validation)
    first_step = min((int(r["global_step"]) for r in log), default=1) - 1
    baseline = next((v for v in validation if int(v["global_step"]) == first_step), None)
    weights = load_file(str(source / WEIGHTS_NAME))
    record = {
        **record,
        "run": {"device": processes[-1]["device"], "precision": processes[-1]["precision"],
                "processes": len(processes),
                "seconds": sum(r["seconds"] for r in log) + sum(v["seconds"] for v in validation)},
        "weights_sha256": weights_sha256(source),
        "parameters": sum(int(t.numel()) for t in weights.values()),
        "versions": {"smgic_pydra": smgic_pydra.__version__, "torch": torch.__version__},
    }
    names = [WEIGHTS_NAME, HASH_NAME, CONFIG_NAME, LOG_FILE, VALIDATION_LOG_FILE, "training_summary.csv",
             "training_curves.png", "split.tsv", "training.json", "MODEL_CARD.md", "index.html"]
    with atomic_paths([out / n for n in names]) as temps:
        tmp = dict(zip(names, temps))
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            shutil.copyfile(source / name, tmp[name])
        tmp[HASH_NAME].write_text(weights_hash_text(record["weights_sha256"]))
        shutil.copyfile(run / LOG_FILE, tmp[LOG_FILE])
        if (run / VALIDATION_LOG_FILE).is_file():
            shutil.copyfile(run / VALIDATION_LOG_FILE, tmp[VALIDATION_LOG_FILE])
        else:  # no validation participants: the header only
            tmp[VALIDATION_LOG_FILE].write_text(",".join(VALIDATION_COLUMNS) + "\n")
        write_summary(summary, tmp["training_summary.csv"])
        plot_curves(log, validation, tmp["training_curves.png"])
        with open(tmp["split.tsv"], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=SPLIT_COLUMNS, delimiter="\t")
            writer.writeheader()
            writer.writerows(split_rows)
        tmp["training.json"].write_text(json_text(record))
        tmp["MODEL_CARD.md"].write_text(render_model_card(record, summary, baseline))
        write_training_page(tmp["index.html"], record, summary, validation, split_rows, tmp["training_curves.png"])
    write_dataset_description(out, smgic_pydra.__version__, record["weights_sha256"], record["plan"]["seed"],
                              bids_dir, name="smgic-pydra trained model", ignore=MODEL_BIDSIGNORE)
    return str(out)
