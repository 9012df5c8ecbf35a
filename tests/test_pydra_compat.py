"""The Pydra compatibility module: one tested Pydra version, refused in one line otherwise."""

import pytest

from smgic_pydra import pydra_compat
from smgic_pydra.io.errors import MissingToolError


def test_installed_pydra_is_the_tested_one():
    import importlib.metadata as md

    assert md.version("pydra") == pydra_compat.TESTED_VERSION
    pydra_compat.check_pydra_version()


def test_an_untested_pydra_version_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(pydra_compat, "TESTED_VERSION", "9.9")
    with pytest.raises(MissingToolError, match=r"^pydra==9\.9 is not available: pydra 1\.0a12 is installed") as err:
        pydra_compat.check_pydra_version()
    assert "\n" not in str(err.value) and "pip install 'pydra==9.9'" in str(err.value)
