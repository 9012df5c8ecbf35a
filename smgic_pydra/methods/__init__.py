"""Registration methods: the registry (:mod:`.registry`) and one module per method family."""

from .registry import METHODS, MethodContext, RegistrationMethod, get_method, gpu_resources, report_label, selectable_methods

__all__ = ["METHODS", "MethodContext", "RegistrationMethod", "get_method", "gpu_resources", "report_label",
           "selectable_methods"]
