"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

ANTS_TOOLS = ("antsApplyTransforms",)


@pytest.fixture
def ants_tools_on_path(tmp_path, monkeypatch):
    """The ANTs command-line tools the tests use: the real binaries when installed; else antspyx's compiled
    ones (the same ANTs 2.5 code, ``ants.internal.get_lib_fn(name)(argv)``) as executables of those names on
    PATH, so command-line wrappers (nipype.interfaces.ants) run real ANTs. Returns name -> path.
    (antspyx ships no executables; its compiled tools do not answer ``--version``.)"""
    missing = [name for name in ANTS_TOOLS if shutil.which(name) is None]
    if missing:
        pytest.importorskip("ants")
        folder = tmp_path / "ants-bin"
        folder.mkdir()
        for name in missing:
            exe = folder / name
            exe.write_text(f"#!{sys.executable}\nimport sys\nfrom ants.internal import get_lib_fn\n\n"
                           f"sys.exit(get_lib_fn({name!r})(sys.argv[1:]))\n")
            exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return {name: shutil.which(name) for name in ANTS_TOOLS}
