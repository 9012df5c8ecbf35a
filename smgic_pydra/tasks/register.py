"""Pydra task: register a chunk of pairs with SM-GICNet, loading the model once per chunk."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["rows"])
def RegisterChunk(
    pairs: list,
    subjects: list,
    prepared_dirs: list,
    preparation_errors: list,
    model: str = "",
    model_sha256: str = "",
    device: str = "cpu",
    omp_nthreads: int = 0,
    progress_dir: str = "",
) -> list:
    """Register every pair of ``pairs`` (pair specs, see :mod:`smgic_pydra.tasks.rows`) with SM-GICNet.

    subjects / prepared_dirs / preparation_errors: parallel lists from :func:`PrepareSubject`
    (an empty dir means the subject failed with that error). model: a model folder or ``""`` for
    the packaged default; model_sha256: its weights' expected SHA-256 (``""``: the folder's record).
    Pairs whose outputs are already complete and unchanged are not redone (resume). A pair
    that fails gives an error row; the chunk never aborts. Returns one row per pair.
    """
    from smgic_pydra.tasks.rows import run_chunk

    return run_chunk("smgicnet", pairs, subjects, prepared_dirs, preparation_errors, progress_dir,
                     omp_nthreads, _smgicnet_runner(model, device, model_sha256))


def _smgicnet_runner(model: str, device: str, model_sha256: str = ""):
    """A ``(fixed, moving, paths, sidecar_extra) -> row`` function that loads the model on first use only
    (refusing weights whose SHA-256 is not ``model_sha256``, when given)."""
    from smgic_pydra.inference import load_model, register_pair
    from smgic_pydra.worldspace import PairOutputPaths

    bundle = {}

    def run(fixed, moving, paths: dict, sidecar_extra: dict) -> dict:
        if "model" not in bundle:
            bundle["model"] = load_model(model or None, device=device, expected_sha256=model_sha256 or None)
        row = register_pair(bundle["model"], fixed, moving, PairOutputPaths(**paths), sidecar_extra)
        return {"seconds": row["total_seconds"], "forward_seconds": row["forward_seconds"], "files": row["files"]}

    return run
