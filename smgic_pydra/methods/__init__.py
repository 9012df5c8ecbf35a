"""Registration methods: the registry (:mod:`.registry`), typed options (:mod:`.options`) and one module per
method family."""

from .._lazy import lazy_exports

_EXPORTS = {name: ".registry" for name in (
    "METHODS", "MethodContext", "RegistrationMethod", "get_method", "gpu_resources", "report_label", "selectable_methods")}
_EXPORTS["Option"] = ".options"
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
