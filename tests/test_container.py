"""The smgic-bids container image (Containerfile, scripts/container) runs as any user with no network and a
read-only dataset, and gives the numbers of the same run outside it.

Needs podman (Debian: podman runc mmdebstrap, which scripts/setup-env installs as root); skipped without it.
The image is built by the module fixture (``scripts/container build``), unless ``SMGIC_CONTAINER_IMAGE``
names one already built (``scripts/container test`` builds it, then sets that).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from smgic_pydra import __version__
from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset

ROOT = Path(__file__).resolve().parents[1]
CONTAINER = ROOT / "scripts" / "container"
# the example run: the smallest that still runs every stage (affine, network, refinement, group reports)
RUN_ARGS = ["--method", "smgicnet", "--refine", "2", "--pairs", "all", "--nprocs", "1", "--no-progress",
            "--random-seed", "3"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed (scripts/setup-env as root)"),
    pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed"),
]


def run_image(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``podman run --rm`` with this machine's flags (scripts/container run)."""
    return subprocess.run([str(CONTAINER), "run", "--rm", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    name = os.environ.get("SMGIC_CONTAINER_IMAGE")
    if not name:
        subprocess.run([str(CONTAINER), "build"], check=True, timeout=3600)
        name = "smgic-pydra:latest"
    return name


def test_version_help_and_non_root_user(image):
    version = run_image("--network", "none", image, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"smgic-bids {__version__}"
    usage = run_image("--network", "none", image, "--help")
    assert usage.returncode == 0 and "participant" in usage.stdout and "--pairs" in usage.stdout
    user = run_image("--entrypoint", "id", image, "-u")
    assert user.returncode == 0 and user.stdout.strip() != "0"


def test_example_dataset_offline_read_only_matches_host(image, tmp_path):
    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=0, voxel_mm=3.0)
    host_out, host_work = tmp_path / "host" / "out", tmp_path / "host" / "work"
    smgic_bids = str(Path(sys.executable).parent / "smgic-bids")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for level in ("participant", "group"):
        done = subprocess.run([smgic_bids, str(bids), str(host_out), level, "-w", str(host_work), *RUN_ARGS],
                              capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]

    # as fMRIPrep's docs tell users: -u $(id -u):$(id -g); as root, a user the image does not know
    if os.getuid() == 0:
        user, userns = "4321:4321", []
    else:
        user, userns = f"{os.getuid()}:{os.getgid()}", ["--userns", "keep-id"]
    out, work = tmp_path / "image" / "out", tmp_path / "image" / "work"
    for folder in (out, work):
        folder.mkdir(parents=True)
        if os.getuid() == 0:
            os.chown(folder, 4321, 4321)
    mounts = ["-v", f"{bids}:/data:ro", "-v", f"{out}:/out", "-v", f"{work}:/work"]
    for level in ("participant", "group"):
        done = run_image("--network", "none", "-u", user, *userns, "-e", "OMP_NUM_THREADS=1", *mounts, image,
                         "/data", "/out", level, "-w", "/work", *RUN_ARGS)
        assert done.returncode == 0, done.stderr[-2000:]

    host = pd.read_csv(host_out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    inside = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    key = ["method", "moving", "fixed"]
    host, inside = host.sort_values(key).reset_index(drop=True), inside.sort_values(key).reset_index(drop=True)
    assert len(host) == 2 and set(host["method"]) == {"smgicnet", "identity"}  # the one unordered pair
    assert (host["error"] == "").all() and (inside["error"] == "").all()
    pd.testing.assert_frame_equal(inside[key], host[key])
    print("\nmean Dice, host / image: " + ", ".join(
        f"{m} {h:.6f} / {i:.6f}" for m, h, i in zip(host["method"], host["dice_mean"], inside["dice_mean"])))
    assert (inside["dice_mean"].round(4) == host["dice_mean"].round(4)).all()
    smgicnet = host["method"] == "smgicnet"
    assert host.loc[smgicnet, "dice_mean"].item() > host.loc[~smgicnet, "dice_mean"].item()  # it registered
    assert (out / "reports" / "index.html").is_file()
    warp = next(out.glob("sub-01/anat/*_from-sub01_to-sub02_desc-smgicnet_mode-image_xfm.nii.gz"))
    assert warp.stat().st_uid == (4321 if os.getuid() == 0 else os.getuid())
