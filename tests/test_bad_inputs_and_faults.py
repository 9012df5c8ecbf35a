"""Bad inputs and faults: ``smgic-bids`` never trusts a file on disk that has changed.

One table, one row per fault (the README's reliability paragraph gives their number). Each row
starts from a copy of one finished participant run on the example dataset (3 subjects at 3 mm, a
small model), applies its fault, runs ``smgic-bids`` and checks the exit status, the one-line
message and what is (not) on disk afterwards.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")

FAST = ["--worker", "debug", "--no-progress", "--skip-bids-validation"]
WARP = "sub-01/anat/sub-01_from-sub01_to-sub02_desc-smgicnet_mode-image_xfm.nii.gz"
SIDECAR = "sub-01/anat/sub-01_from-sub01_to-sub02_desc-smgicnet_mode-image_xfm.json"
TILES = "reports/tiles/smgicnet"


@dataclass
class Run:
    """A copy of the finished run: raw dataset, output and work folders, model folder."""

    bids: Path
    out: Path
    work: Path
    model: Path
    root: Path

    def participant(self, *extra: str, out: Path | None = None, work: Path | None = None) -> int:
        return main([str(self.bids), str(out or self.out), "participant", "-w", str(work or self.work),
                     "--model", str(self.model), *FAST, *extra])

    def group(self, *extra: str) -> int:
        return main([str(self.bids), str(self.out), "group", "-w", str(self.work), *extra])


@pytest.fixture(scope="session")
def finished(tmp_path_factory, write_small_model) -> Run:
    """The example dataset, a small model and one finished participant run (shared by every case)."""
    root = tmp_path_factory.mktemp("finished")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    run = Run(bids, root / "out", root / "work", write_small_model(root / "models"), root)
    assert run.participant() == 0
    assert run.group() == 0
    return run


@pytest.fixture
def run(finished, tmp_path) -> Run:
    """A private copy of the finished run (links inside it kept as links)."""
    for name in ("bids", "out", "work", "models"):
        shutil.copytree(finished.root / name, tmp_path / name, symlinks=True)
    return Run(tmp_path / "bids", tmp_path / "out", tmp_path / "work", tmp_path / "models" / finished.model.name,
               tmp_path)


def md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ---- the faults -------------------------------------------------------------------------------


def corrupt_weights(run: Run, capsys):
    """4 KiB of model.safetensors flipped: refused with one line, nothing new written."""
    weights = run.model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8192:-4096] = bytes(b ^ 0xFF for b in data[-8192:-4096])
    weights.write_bytes(bytes(data))
    before = {p: md5(p) for p in files_under(run.out)}
    assert run.participant() == 2
    one_line(capsys, "model.safetensors", "SHA-256")
    assert {p: md5(p) for p in files_under(run.out)} == before


def corrupt_header_then_good_model(run: Run, capsys):
    """A model whose header is broken writes nothing, so a good model can then use the folder."""
    bad = run.root / "bad-model"
    shutil.copytree(run.model, bad)
    (bad / "model.safetensors").write_bytes(b"\xff" * 64 + (bad / "model.safetensors").read_bytes()[64:])
    (bad / "model.safetensors.sha256").unlink()
    fresh = run.root / "fresh-out"
    assert run.participant("--model", str(bad), out=fresh) == 2
    one_line(capsys, "model.safetensors")
    assert not fresh.exists()
    assert run.participant(out=fresh) == 0


def model_without_hash_warns(run: Run, capsys):
    """A model folder without a recorded hash is used, with one warning naming the file."""
    import logging

    (run.model / "model.safetensors.sha256").unlink()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("smgic_pydra.model").addHandler(handler)
    try:
        assert run.participant(out=run.root / "fresh-out") == 0
    finally:
        logging.getLogger("smgic_pydra.model").removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "model.safetensors.sha256" in warnings[0], warnings


def output_subject_is_link(run: Run, capsys):
    """OUTPUT_DIR/sub-01 -> elsewhere: refused naming the link, nothing written through it."""
    elsewhere = run.root / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(run.out / "sub-01")
    (run.out / "sub-01").symlink_to(elsewhere, target_is_directory=True)
    assert run.participant() == 2
    one_line(capsys, str(run.out / "sub-01"), "symbolic link", "outside the output folder")
    assert list(elsewhere.rglob("*")) == []


def labels_table_missing(run: Run, capsys):
    """A missing --labels table is refused before any work."""
    fresh = run.root / "fresh-out"
    assert run.participant("--labels", str(run.root / "nope.tsv"), out=fresh) == 2
    one_line(capsys, "nope.tsv", "cannot read the label table")
    assert not fresh.exists()


def labels_table_malformed(run: Run, capsys):
    """A --labels table without its columns is refused before any work."""
    table = run.root / "bad.tsv"
    table.write_text("value\tlabel\n1\tx\n")
    fresh = run.root / "fresh-out"
    assert run.participant("--labels", str(table), out=fresh) == 2
    one_line(capsys, "bad.tsv", "'index' and 'name'")
    assert not fresh.exists()


def labels_table_matches_nothing(run: Run, capsys):
    """A table none of whose labels is in the data is refused before any work (one line naming it), not NaN Dice."""
    table = run.root / "other.tsv"
    table.write_text("index\tname\n9001\tnowhere\n")
    assert run.participant("--labels", str(table), out=run.root / "fresh-out") == 2
    one_line(capsys, str(table), "no label of the table occurs in the labels of sub-01")
    assert not (run.root / "fresh-out").exists()


def labels_table_with_bom(run: Run, capsys):
    """A label table saved with a UTF-8 byte-order mark is read (the BOM is not part of the header)."""
    table = run.root / "bom.tsv"
    table.write_bytes(b"\xef\xbb\xbf" + (run.bids / "derivatives" / "smriprep" / "dseg.tsv").read_bytes())
    assert run.participant("--labels", str(table), out=run.root / "fresh-out") == 0


OTHER_WARP = "sub-02/anat/sub-02_from-sub02_to-sub03_desc-smgicnet_mode-image_xfm.nii.gz"
OTHER_SIDECAR = "sub-02/anat/sub-02_from-sub02_to-sub03_desc-smgicnet_mode-image_xfm.json"


def changed_input_is_redone(run: Run, capsys):
    """New data in sub-01's preprocessed T1w (same path): its pairs are redone, also with a fresh -w; the others not."""
    t1 = run.bids / "derivatives/smriprep/sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"
    img = nib.load(t1)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj) * 0.5, img.affine, img.header), t1)
    before, other = md5(run.out / WARP), (run.out / OTHER_SIDECAR).stat().st_mtime_ns
    assert run.participant(work=run.root / "fresh-work") == 0
    assert md5(run.out / WARP) != before
    assert json.loads((run.out / SIDECAR).read_text())["inputs_sha256"]["moving"]["t1w"] == sha256(t1)
    assert (run.out / OTHER_SIDECAR).stat().st_mtime_ns == other
    redone = md5(run.out / WARP)
    assert run.participant() == 0  # the old work folder too: same new result, nothing redone
    assert md5(run.out / WARP) == redone and (run.out / OTHER_SIDECAR).stat().st_mtime_ns == other


def changed_setting_is_redone(run: Run, capsys):
    """A setting of the pair's key (here the skull stripping of subjects without masks) redoes the pairs."""
    from smgic_pydra.workflows.cohort import CohortPlan

    plan = CohortPlan(subjects=[], pairs=[], methods=["smgicnet"], work_dir=run.work, output_dir=run.out,
                      model=str(run.model))
    changed = CohortPlan(subjects=[], pairs=[], methods=["smgicnet"], work_dir=run.work, output_dir=run.out,
                         model=str(run.model), skull_strip="deepbet")
    for method in ("smgicnet", "identity"):
        assert plan.method_settings(method) != changed.method_settings(method)
    assert plan.method_settings("identity") == CohortPlan(
        subjects=[], pairs=[], methods=["identity"], work_dir=run.work, output_dir=run.out,
        device="cuda").method_settings("identity")


def deleted_prepared_subject(run: Run, capsys):
    """A deleted WORK/prepared/<grid>/sub-02 is prepared again; no pair fails and none is redone."""
    (folder,) = run.work.glob("prepared/*/sub-02")
    shutil.rmtree(folder)
    before = {p: md5(p) for p in files_under(run.out / "sub-01")}
    assert run.participant() == 0
    assert (folder / "prepared.json").is_file()
    assert {p: md5(p) for p in files_under(run.out / "sub-01")} == before


def truncated_warp_participant(run: Run, capsys):
    """A truncated warp is seen and its pair redone (the same bytes as before); the other pairs are not."""
    before, other = md5(run.out / WARP), (run.out / OTHER_SIDECAR).stat().st_mtime_ns
    with open(run.out / WARP, "r+b") as f:
        f.truncate(1000)
    assert run.participant() == 0
    assert md5(run.out / WARP) == before
    assert (run.out / OTHER_SIDECAR).stat().st_mtime_ns == other


def truncated_warp_group(run: Run, capsys):
    """group reports a truncated warp as a failed pair naming the file, and exits 1."""
    with open(run.out / WARP, "r+b") as f:
        f.truncate(1000)
    assert run.group() == 1
    assert str(run.out / WARP) in capsys.readouterr().err
    pairs = pd_read(run.out / "reports/pairs.csv")
    assert len(pairs) == 6 and (pairs["error"] != "").sum() == 1  # 3 pairs x (smgicnet, identity)


def same_size_damage_needs_verify(run: Run, capsys):
    """A same-size change with the old modification time is found by --verify-outputs (group and participant)."""
    import os

    warp = run.out / WARP
    stat, before = warp.stat(), md5(warp)
    data = bytearray(warp.read_bytes())
    data[-100] ^= 0xFF
    warp.write_bytes(bytes(data))
    os.utime(warp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run.group() == 0  # size and time unchanged: the cheap check cannot see it
    assert run.group("--verify-outputs") == 1
    assert str(warp) in capsys.readouterr().err
    assert run.participant("--verify-outputs") == 0  # and participant --verify-outputs redoes the pair
    assert md5(warp) == before and run.group("--verify-outputs") == 0


def _first_tile(run: Run):
    """The first smgicnet tile table and its pairs."""
    from smgic_pydra.reports.tiles import read_pairs_tables

    path = sorted((run.out / TILES).glob("*_pairs.parquet"))[0]
    return path, read_pairs_tables([path])


def tile_table_damaged(run: Run, capsys):
    """A damaged tile table fails every pair of the tile, naming the file, not an empty success."""
    path, pairs = _first_tile(run)
    path.write_bytes(b"PAR1 not parquet")
    assert run.group() == 1
    assert str(path) in capsys.readouterr().err
    summary = pd_read(run.out / "reports/group_summary.csv").set_index("method")
    assert summary.loc["smgicnet", "n_pairs"] == 3 and summary.loc["smgicnet", "n_failed"] == len(pairs)


def tile_table_deleted(run: Run, capsys):
    """A deleted tile table is a failed row per pair of the tile naming the file; the pairs still count in n_pairs."""
    path, pairs = _first_tile(run)
    path.unlink()
    assert run.group() == 1
    assert str(path) in capsys.readouterr().err
    summary = pd_read(run.out / "reports/group_summary.csv").set_index("method")
    assert summary.loc["smgicnet", "n_pairs"] == 3 and summary.loc["smgicnet", "n_failed"] == len(pairs) >= 1


def tile_table_edited(run: Run, capsys):
    """A well-formed tile table edited by hand (every Dice set to 0.99) is not reported, with or without
    --verify-outputs: its pairs fail, naming the file and its checksum record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, pairs = _first_tile(run)
    table = pq.read_table(path)
    edited = table.set_column(table.schema.get_field_index("dice_mean"), "dice_mean",
                              pa.array([0.99] * table.num_rows, pa.float64()))
    pq.write_table(edited, path)
    for extra in ((), ("--verify-outputs",)):
        assert run.group(*extra) == 1
        err = capsys.readouterr().err
        assert str(path) in err and "changed since its tile job wrote it" in err
        rows = pd_read(run.out / "reports/pairs.csv")
        assert not (rows["dice_mean"] == 0.99).any()
        summary = pd_read(run.out / "reports/group_summary.csv").set_index("method")
        assert summary.loc["smgicnet", "n_failed"] == len(pairs)


def labels_tile_table_deleted(run: Run, capsys):
    """A deleted labels tile table fails the pairs of its tile with the reason, not a bare path."""
    path, pairs = _first_tile(run)
    labels = path.with_name(path.name.replace("_pairs.parquet", "_labels.parquet"))
    labels.unlink()
    assert run.group() == 1
    err = capsys.readouterr().err
    assert f"{labels}: tile table missing; run the participant level again" in err
    summary = pd_read(run.out / "reports/group_summary.csv").set_index("method")
    assert summary.loc["smgicnet", "n_failed"] == len(pairs)


def output_dir_locked_by_another_run(run: Run, capsys):
    """Another participant run (another process, another work folder) registering sub-01 into the same
    OUTPUT_DIR: a run that needs sub-01 stops in one line naming it and the holder, before any pair;
    a run of another participant goes on."""
    import subprocess
    import sys

    lock = run.out / "reports/locks/sub-01.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom smgic_pydra.io.locks import held_locks\n"
                               f"with held_locks([{str(lock)!r}]):\n    print('held', flush=True)\n    time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted((run.out / TILES).glob("*"))
        assert run.participant(work=run.root / "other-work") == 1
        one_line(capsys, "sub-01: another participant run", f"pid {holder.pid}", str(run.out))
        assert sorted((run.out / TILES).glob("*")) == before and not (run.root / "other-work" / "runs").exists()
        assert run.participant("--participant-label", "02", work=run.root / "other-work") == 0
    finally:
        holder.kill()
        holder.wait()
    assert run.participant(work=run.root / "other-work") == 0  # released when its holder died


def status_after_kill(run: Run, capsys):
    """A status.json left "running" by a killed run is recorded as killed at the next start."""
    fresh = run.root / "fresh-work"
    assert run.participant(work=fresh) == 0
    (status_file,) = fresh.glob("runs/*/status.json")
    status = json.loads(status_file.read_text())
    status_file.write_text(json.dumps(status | {"state": "running", "updated_utc": "2026-01-01T00:00:00+00:00"}))
    assert run.participant(work=fresh) == 0
    status = json.loads(status_file.read_text())
    assert status["state"] == "finished"
    assert status["previous_run"] == {"state": "killed", "updated_utc": "2026-01-01T00:00:00+00:00"}


def heads_without_masks(run: Run, capsys):
    """No brain masks and no --skull-strip: refused up front, one line per subject; an explicit
    --skull-strip none registers the heads (their labels still scored) and the sidecars say SkullStripped false."""
    for mask in run.bids.glob("derivatives/smriprep/sub-*/anat/*_desc-brain_mask.*"):
        mask.unlink()
    fresh = run.root / "fresh-out"
    assert run.participant(out=fresh) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all("--skull-strip deepbet" in ln for ln in lines), lines
    assert [ln.split(": ")[2] for ln in lines] == [str(run.bids / f"sub-0{i}/anat/sub-0{i}_T1w.nii.gz")
                                                   for i in (1, 2, 3)]  # without a mask no derivative is used
    assert not fresh.exists()
    assert run.participant("--skull-strip", "none", out=fresh) == 0
    from smgic_pydra.reports.tiles import read_pairs_tables

    rows = read_pairs_tables(sorted(fresh.glob("reports/tiles/*/*_pairs.parquet")))
    assert len(rows) == 6 and rows["dice_mean"].notna().all() and (rows["error"] == "").all()  # labels kept
    warped = json.loads((fresh / "sub-01/anat/sub-01_space-sub02_desc-smgicnet_T1w.json").read_text())
    assert warped["SkullStripped"] is False
    assert json.loads((run.out / "sub-01/anat/sub-01_space-sub02_desc-smgicnet_T1w.json").read_text())["SkullStripped"]


def two_runs(run: Run) -> None:
    """sub-03 gets a run-1 and a run-2 T1w (raw and derivatives keep one unnumbered set)."""
    anat = run.bids / "sub-03/anat"
    for ext in (".nii.gz", ".json"):
        (anat / f"sub-03_T1w{ext}").rename(anat / f"sub-03_run-1_T1w{ext}")
        shutil.copy(anat / f"sub-03_run-1_T1w{ext}", anat / f"sub-03_run-2_T1w{ext}")


def runs_in_unused_subject(run: Run, capsys):
    """Two runs in a subject no chosen pair needs block nothing; a pair that needs it names the choice."""
    two_runs(run)
    assert run.participant("--participant-label", "01", "--pairs", "reference:02") == 0
    assert run.participant("--participant-label", "01") == 2
    one_line(capsys, "sub-03", "several runs with a T1w: 1, 2", '{"t1w": {"run": 1}}')


def run_filter_keeps_subjects_without_runs(run: Run, capsys):
    """A run filter also matches images without a run entity (pybids' Query.OPTIONAL)."""
    two_runs(run)
    filters = run.root / "filters.json"
    filters.write_text(json.dumps({"t1w": {"run": 1}}))
    assert run.participant("--bids-filter-file", str(filters), "--participant-label", "02") == 0
    assert (run.out / "sub-02/anat/sub-02_from-sub02_to-sub03run1_desc-smgicnet_mode-image_xfm.json").is_file()


def pairs_tsv_with_bom(run: Run, capsys):
    """A pairs TSV saved with a UTF-8 byte-order mark is read."""
    table = run.root / "pairs.tsv"
    table.write_bytes(b"\xef\xbb\xbfmoving\tfixed\nsub-01\tsub-02\n")
    assert run.participant("--pairs", str(table), "--participant-label", "01") == 0


def pairs_tsv_extra_field(run: Run, capsys):
    """A row with more fields than the header is refused naming the file and line."""
    table = run.root / "pairs.tsv"
    table.write_text("moving\tfixed\nsub-01\tsub-02\nsub-01\tsub-03\tsub-02\n")
    assert run.participant("--pairs", str(table), "--participant-label", "01") == 2
    one_line(capsys, f"{table}:3", "3 fields, the header has 2")


def work_dir_is_output_dir(run: Run, capsys):
    """-w equal to (or inside) OUTPUT_DIR is refused before anything is written."""
    fresh = run.root / "fresh-out"
    assert run.participant(out=fresh, work=fresh) == 2
    one_line(capsys, "work folder (-w) is or is inside OUTPUT_DIR")
    assert run.participant(out=fresh, work=fresh / "work") == 2
    assert not fresh.exists()


@contextmanager
def read_only(folder: Path):
    """``folder`` not writable, even by root (immutable attribute), for the duration of the block."""
    import os
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("running as root where chattr +i is not available")
    try:
        yield folder
    finally:
        subprocess.run(undo, check=True)


def output_dir_not_writable(run: Run, capsys):
    """An OUTPUT_DIR this user cannot write: one line, exit 2, nothing written in the work folder."""
    fresh_work = run.root / "fresh-work"
    with read_only(run.root / "locked"):
        assert run.participant(out=run.root / "locked" / "out", work=fresh_work) == 2
    one_line(capsys, str(run.root / "locked" / "out"), "output folder not writable")
    assert not fresh_work.exists()


def work_dir_not_writable(run: Run, capsys):
    """A work folder this user cannot write: one line, exit 2, nothing written in OUTPUT_DIR."""
    fresh = run.root / "fresh-out"
    with read_only(run.root / "locked-work"):
        assert run.participant(out=fresh, work=run.root / "locked-work") == 2
    one_line(capsys, str(run.root / "locked-work"), "work folder (-w) not writable")
    assert not fresh.exists()


CASES: dict[str, Callable] = {f.__name__: f for f in (
    corrupt_weights, corrupt_header_then_good_model, model_without_hash_warns, output_subject_is_link,
    labels_table_missing, labels_table_malformed, labels_table_matches_nothing, labels_table_with_bom,
    changed_input_is_redone, changed_setting_is_redone, deleted_prepared_subject, truncated_warp_participant,
    truncated_warp_group, same_size_damage_needs_verify, tile_table_damaged, tile_table_deleted, tile_table_edited,
    labels_tile_table_deleted, output_dir_locked_by_another_run, status_after_kill,
    heads_without_masks, runs_in_unused_subject, run_filter_keeps_subjects_without_runs, pairs_tsv_with_bom,
    pairs_tsv_extra_field, work_dir_is_output_dir, output_dir_not_writable, work_dir_not_writable,
)}


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pd_read(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype={"error": str}).fillna({"error": ""})


def one_line(capsys, *needles: str) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("smgic-bids: error: ")]
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_or_fault(case, run, capsys):
    CASES[case](run, capsys)


def test_readme_states_the_number_of_cases():
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert re.search(r"runs (\d+) bad inputs and faults", readme).group(1) == str(len(CASES))
