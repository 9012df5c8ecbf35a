"""SM-GICNet as a registry runner: the model is loaded on first use and reused for the whole tile."""

from __future__ import annotations

from .registry import MethodContext, Runner


def make_runner(context: MethodContext, method: str = "smgicnet") -> Runner:
    """Register with the model ``context.model`` (``""``: packaged; refused unless its weights' SHA-256 is
    ``context.model_sha256``, when given) on ``context.device``.

    ``context.options`` are the pipeline's stages
    (:meth:`smgic_pydra.pipeline_settings.PipelineSettings.from_options`: affine, refinement); they go
    to :func:`smgic_pydra.inference.smgicnet_pair` and into the sidecar (``method_options``).
    """
    from ..inference import load_model, smgicnet_pair
    from ..pipeline_settings import PipelineSettings

    bundle = {}
    options = dict(context.options)
    settings = PipelineSettings.from_options(options)

    def run(fixed, moving, sidecar_extra: dict):
        if "model" not in bundle:
            bundle["model"] = load_model(context.model or None, device=context.device,
                                         expected_sha256=context.model_sha256 or None)
        extra = {**sidecar_extra, "method_options": options}
        return smgicnet_pair(bundle["model"], fixed, moving, extra, settings)

    return run
