"""Pydra task: register a chunk of pairs with one method of the registry (:mod:`smgic_pydra.methods`)."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["rows"])
def RegisterChunk(
    pairs: list,
    subjects: list,
    prepared_dirs: list,
    preparation_errors: list,
    method: str = "smgicnet",
    model: str = "",
    model_sha256: str = "",
    device: str = "cpu",
    omp_nthreads: int = 0,
    random_seed: int = 1,
    options: dict | None = None,
    progress_dir: str = "",
) -> list:
    """Register every pair of ``pairs`` (pair specs, see :mod:`smgic_pydra.tasks.rows`) with ``method``.

    subjects / prepared_dirs / preparation_errors: parallel lists from :func:`PrepareSubject`
    (an empty dir means the subject failed with that error). model: a model folder or ``""`` for
    the packaged default (SM-GICNet, loaded once per chunk); model_sha256: its weights' expected
    SHA-256 (``""``: the folder's record). device: where GPU-capable methods run. omp_nthreads:
    threads per job (0: torch's default). random_seed: ANTs / FireANTs seed. options: the method's
    options (overriding its registry defaults). Pairs whose outputs are already complete and
    unchanged are not redone (resume). A pair that fails gives an error row; the chunk never
    aborts. Returns one row per pair.
    """
    from smgic_pydra.methods import MethodContext, get_method
    from smgic_pydra.tasks.rows import run_chunk

    entry = get_method(method)
    context = MethodContext(model=model, model_sha256=model_sha256, device=device, threads=omp_nthreads,
                            seed=random_seed, options=entry.merged_options(options))
    return run_chunk(method, pairs, subjects, prepared_dirs, preparation_errors, progress_dir, omp_nthreads,
                     entry.make_runner(context))


BaselineChunk = RegisterChunk
"""The same task (the ANTs baselines are registry methods too); the name is kept for existing scripts."""
