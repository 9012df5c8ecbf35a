"""Lazy package exports (PEP 562): a package's public names resolve on first use, so importing a light
submodule (the CLI's parser, the method registry) does not import torch, nibabel or h5py."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public ``name`` lives in submodule ``exports[name]``
    (relative, e.g. ``".grid"``)."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
