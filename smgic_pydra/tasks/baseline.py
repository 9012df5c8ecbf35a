"""Pydra task: register a chunk of pairs with one ANTs baseline method (syn, synquick, affine, identity)."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["rows"])
def BaselineChunk(
    pairs: list,
    method: str,
    subjects: list,
    prepared_dirs: list,
    preparation_errors: list,
    omp_nthreads: int = 1,
    random_seed: int = 1,
    progress_dir: str = "",
) -> list:
    """Register every pair of ``pairs`` with the ANTs ``method``.

    Same inputs, rows, resume and error handling as :func:`RegisterChunk`; ``omp_nthreads`` ANTs
    threads, ``random_seed`` for ANTs' sampling.
    """
    from smgic_pydra.tasks.rows import run_chunk

    return run_chunk(method, pairs, subjects, prepared_dirs, preparation_errors, progress_dir, omp_nthreads,
                     _baseline_runner(method, omp_nthreads, random_seed))


def _baseline_runner(method: str, omp_nthreads: int, random_seed: int):
    from smgic_pydra.baselines import register_baseline
    from smgic_pydra.worldspace import PairOutputPaths

    def run(fixed, moving, paths: dict, sidecar_extra: dict) -> dict:
        row = register_baseline(method, fixed, moving, PairOutputPaths(**paths),
                                nthreads=max(omp_nthreads, 1), seed=random_seed, sidecar_extra=sidecar_extra)
        return {"seconds": row["total_seconds"], "forward_seconds": row.get("forward_seconds", row["total_seconds"]),
                "files": row["files"]}

    return run
