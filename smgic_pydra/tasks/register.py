"""Pydra task: one tile of the pair matrix with one method of the registry (:mod:`smgic_pydra.methods`),
registration, outputs and evaluation fused (:mod:`smgic_pydra.tasks.tile`)."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["summary"])
def RegisterTile(
    tile: dict,
    subjects: list,
    prepared_dirs: list,
    preparation_errors: list,
    inputs: dict,
    settings: dict,
    output_dir: str,
    journal_dir: str,
    method: str = "smgicnet",
    options: dict | None = None,
    model: str = "",
    model_sha256: str = "",
    device: str = "cpu",
    omp_nthreads: int = 0,
    random_seed: int = 1,
    outputs: str = "all",
    reportlets: bool = False,
    labels_table: str = "",
    verify_outputs: bool = False,
    token: str = "",
) -> dict:
    """Register, write and evaluate every pair of ``tile`` with ``method`` (see :func:`~smgic_pydra.tasks.tile.run_tile`).

    subjects / prepared_dirs / preparation_errors: parallel lists from :func:`PrepareSubject` (an
    empty dir means the subject failed with that error). inputs: subject -> SHA-256 of its input
    files by role; settings: the method's settings (``CohortPlan.method_settings``, its options keyed again
    here: the precision that runs on this machine): with ``inputs`` they make each pair's content key. model: a model folder or ``""`` (packaged;
    loaded once per tile, only when a pair needs it); model_sha256: its weights' expected SHA-256.
    device: where GPU-capable methods run. omp_nthreads: threads (0: torch's default).
    random_seed: ANTs / FireANTs seed. options: the method's options (over its registry
    defaults). outputs: ``all``, ``warps`` or ``metrics``. journal_dir: where the tile's journal
    goes (``<method>__<tile id>.jsonl``). token: this run's token (pydra never returns a cached
    tile: the tile itself decides per pair what is done). Returns the tile's summary.
    """
    from pathlib import Path

    from smgic_pydra.methods import MethodContext, get_method
    from smgic_pydra.devices import limit_threads
    from smgic_pydra.tasks.tile import run_tile

    limit_threads(omp_nthreads)
    entry = get_method(method)
    context = MethodContext(model=model, model_sha256=model_sha256, device=device, threads=omp_nthreads,
                            seed=random_seed, options=entry.merged_options(options))
    if "options" in settings:  # keyed with what runs on this node (a SLURM node's CPU may differ from the plan's)
        settings = {**settings, "options": entry.keyed_options(options, device)}
    return run_tile(method, tile, lambda: entry.make_runner(context), subjects=subjects, prepared_dirs=prepared_dirs,
                    preparation_errors=preparation_errors, inputs=inputs, settings=settings, output_dir=output_dir,
                    outputs=outputs, reportlets=reportlets, labels_table=labels_table,
                    journal=str(Path(journal_dir) / f"{method}__{tile['id']}.jsonl"), verify_outputs=verify_outputs)
