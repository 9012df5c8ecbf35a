"""Run the BIDS validator (``bids-validator-deno``, offline) on a raw or derivatives dataset."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..io.errors import InputError, MissingToolError, display_path

VALIDATOR = "bids-validator-deno"
TIMEOUT_S = 600


@dataclass(frozen=True)
class ValidationIssue:
    """One validator finding: ``code`` (e.g. ``NOT_INCLUDED``), ``severity`` (``error``/``warning``),
    ``location`` (dataset-relative path), ``detail`` (sub-code or message)."""

    code: str
    severity: str
    location: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code} {self.location}" + (f" ({self.detail})" if self.detail else "")


def _first_line(text) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def validator_executable() -> str:
    """Path of ``bids-validator-deno`` (beside this Python first, then on PATH)."""
    beside = Path(sys.executable).parent / VALIDATOR
    if beside.is_file():
        return str(beside)
    found = shutil.which(VALIDATOR)
    if found is None:
        raise MissingToolError(VALIDATOR, "pip install 'smgic-pydra[bids]' (bids-validator-deno from PyPI)")
    return found


def validate_dataset(path, recursive: bool = False, errors_only: bool = True) -> list[ValidationIssue]:
    """Validate the dataset at ``path``; returns its issues (errors only unless ``errors_only=False``).

    recursive: also validate the derivatives datasets inside it (validator ``-r``).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(display_path(path), "not a folder: cannot validate it as a BIDS dataset")
    with tempfile.TemporaryDirectory() as tmp:  # outside the dataset, so it is not validated itself
        report = Path(tmp) / "report.json"
        cmd = [validator_executable(), str(path), "--format", "json", "-o", str(report)]
        if recursive:
            cmd.append("-r")
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        if not report.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{VALIDATOR} failed on {display_path(path)} (exit {run.returncode}): {tail[0]}")
        data = json.loads(report.read_text())
    issues = [
        ValidationIssue(
            code=str(i.get("code", "")),
            severity=str(i.get("severity", "")),
            location=str(i.get("location", "")),
            detail=_first_line(i.get("subCode") or i.get("issueMessage") or ""),
        )
        for i in data.get("issues", {}).get("issues", [])
    ]
    return [i for i in issues if i.severity == "error"] if errors_only else issues


def check_dataset(path, recursive: bool = False) -> None:
    """:class:`InputError` naming the first few validator errors when ``path`` is not valid BIDS."""
    errors = validate_dataset(path, recursive=recursive)
    if errors:
        shown = "; ".join(str(e) for e in errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise InputError(display_path(path), f"BIDS validation failed ({len(errors)} errors): {shown}")
