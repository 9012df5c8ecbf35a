"""Running bids-validator-deno offline and turning its JSON into issues / one-line errors."""

from __future__ import annotations

import json

import pytest

from smgic_pydra.bids import check_dataset, validate_dataset
from smgic_pydra.io.errors import InputError


def test_errors_become_one_line_input_error(tmp_path):
    ds = tmp_path / "ds"
    (ds / "sub-01" / "anat").mkdir(parents=True)
    (ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz").write_bytes(b"")  # empty image, no dataset_description.json
    codes = {e.code for e in validate_dataset(ds)}
    assert {"MISSING_DATASET_DESCRIPTION", "EMPTY_FILE"} <= codes
    with pytest.raises(InputError) as info:
        check_dataset(ds)
    message = str(info.value)
    assert message.startswith(f"{ds}: BIDS validation failed") and "\n" not in message
    (ds / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0"}))
    assert all(i.severity in ("error", "warning") for i in validate_dataset(ds, errors_only=False))
    with pytest.raises(InputError, match="not a folder"):
        validate_dataset(tmp_path / "missing")
