"""The ANTs methods (``syn``, ``synquick``, ``affine``) and ``identity`` as registry runners (:mod:`smgic_pydra.baselines`)."""

from __future__ import annotations

from .registry import MethodContext, Runner


def make_runner(context: MethodContext, method: str) -> Runner:
    """Run the ANTs preset ``method`` with ``context.threads`` ITK threads and ``context.seed``."""
    from ..baselines import baseline_prepared_pair

    def run(fixed, moving, sidecar_extra: dict):
        return baseline_prepared_pair(method, fixed, moving, nthreads=max(context.threads, 1), seed=context.seed,
                                      sidecar_extra=sidecar_extra)

    return run
