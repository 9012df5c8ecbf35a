"""Session fixture: a real single-node SLURM cluster on localhost (scripts/slurm-cluster).

Import it in a test module (``from slurm_cluster import slurm_cluster``) or in conftest.py. The
fixture starts the cluster when it is not up (it needs root and Debian's ``slurm-wlm`` and
``munge``; otherwise the tests skip, saying why), sets ``SLURM_CONF`` for the SLURM commands, and
at the end stops it only if a fixture started it and no other pytest process (xdist) still uses it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-cluster"
STATE = Path(os.environ.get("SMGIC_SLURM_STATE", "/tmp/smgic-slurm"))
_USERS = STATE / "fixture-users"  # number of pytest processes using the cluster
_OWNED = STATE / "fixture-started"  # present when a fixture (not a person) started the cluster


@contextmanager
def _state_lock() -> Iterator[None]:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "fixture.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _script(command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SMGIC_SLURM_STATE=str(STATE))
    return subprocess.run([str(SCRIPT), command], capture_output=True, text=True, env=env, timeout=120)


def _skip_reason() -> str | None:
    missing = [tool for tool in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(tool) is None]
    if missing:
        return f"SLURM not installed (missing {', '.join(missing)}): apt-get install -y slurm-wlm munge"
    if os.geteuid() != 0:
        return "starting the test SLURM cluster needs root (munged, slurmd)"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """Yield the cluster's slurm.conf path, with ``SLURM_CONF`` set in ``os.environ``."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with _state_lock():
        if _script("status").returncode != 0:
            started = _script("start")
            if started.returncode != 0:
                pytest.fail(f"scripts/slurm-cluster start failed: {started.stderr.strip()}")
            _OWNED.touch()
            _USERS.write_text("0")  # a cluster that was down has no users (counts of crashed runs)
        users = int(_USERS.read_text()) if _USERS.exists() else 0
        _USERS.write_text(str(users + 1))
    conf = STATE / "slurm.conf"
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield conf
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        with _state_lock():
            users = max(int(_USERS.read_text()) - 1, 0) if _USERS.exists() else 0
            _USERS.write_text(str(users))
            if users == 0 and _OWNED.exists():
                _script("stop")
                _OWNED.unlink()
