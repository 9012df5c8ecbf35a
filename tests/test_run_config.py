"""The settings have one source: the parser's defaults are BidsAppSettings'."""

from __future__ import annotations

from pathlib import Path

import pytest

from smgic_pydra.cli.parser import parse_settings
from smgic_pydra.settings import BidsAppSettings


@pytest.mark.parametrize("level", ["participant", "group", "train", "export"])
def test_parser_defaults_are_the_settings_defaults(level):
    argv = ["/b", "/o", level]
    expected = BidsAppSettings(bids_dir=Path("/b"), output_dir=Path("/o"), analysis_level=level,
                               work_dir=Path("work").absolute(), command=argv)
    assert parse_settings(argv) == expected

