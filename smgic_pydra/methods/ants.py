"""The ANTs methods (``syn``, ``synquick``, ``affine``) and ``identity`` as registry runners (:mod:`smgic_pydra.baselines`)."""

from __future__ import annotations

from .registry import MethodContext, Runner


def make_runner(context: MethodContext, method: str) -> Runner:
    """Run the ANTs preset ``method`` with ``context.threads`` ITK threads and ``context.seed``."""
    from ..baselines import register_baseline
    from ..worldspace import PairOutputPaths
    from .native import chunk_row

    def run(fixed, moving, paths: dict, sidecar_extra: dict) -> dict:
        row = register_baseline(method, fixed, moving, PairOutputPaths(**paths), nthreads=max(context.threads, 1),
                                seed=context.seed, sidecar_extra=sidecar_extra)
        return chunk_row(row)

    return run
