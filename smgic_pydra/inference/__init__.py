"""Inference with a trained SM-GICNet: model files, and registration of prepared pairs to native space."""

from .model_io import ModelBundle, default_model_dir, load_model, resolve_model_files
from .register import PairFields, PipelineSettings, pair_fields, skull_stripped_native, smgicnet_pair

__all__ = [
    "ModelBundle",
    "default_model_dir",
    "load_model",
    "PairFields",
    "PipelineSettings",
    "pair_fields",
    "smgicnet_pair",
    "resolve_model_files",
    "skull_stripped_native",
]
