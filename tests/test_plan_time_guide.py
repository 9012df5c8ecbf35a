"""The ``--plan-only`` time guide against a real run, its count of the pairs a resumed run reuses, and its
one read of each input header."""

import re
import resource
import time
from pathlib import Path

import numpy as np
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.methods import get_method
from smgic_pydra.methods.stage_costs import STAGE_CPU_SECONDS
from smgic_pydra.pipeline_settings import quality_options
from smgic_pydra.workflows.plan_summary import NETWORK_VOXELS, REFERENCE_VOXELS, pair_seconds

needs_example = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


BF16_CPU, FP32_CPU = ("avx512_bf16",), ()
DEFAULT = {"fine_steps": 4, "pre_steps": 8}
"""The default refinement's other stages (besides its 12 main steps)."""


@pytest.fixture(params=[BF16_CPU, FP32_CPU], ids=["bf16-cpu", "fp32-cpu"])
def cpu_flags(request, monkeypatch):
    """The CPU's bf16 flags as the precision module reads them: a CPU with bf16 units, one without."""
    monkeypatch.setattr("smgic_pydra.network.precision.cpu_bf16_flags", lambda: request.param)
    return request.param


def test_pair_seconds_split_into_a_fixed_grid_part_and_a_per_voxel_part(cpu_flags):
    net, table = get_method("smgicnet"), "bf16" if cpu_flags else "fp32"
    assert 0 < net.grid_seconds < net.cpu_seconds
    # the registry's grid part is the defaults' on a bf16 CPU; this CPU's table scales it
    grid = net.grid_seconds * _stage_cost(table, True, 4, 12, **DEFAULT) / _stage_cost("bf16", True, 4, 12, **DEFAULT)
    assert (grid == pytest.approx(net.grid_seconds)) == bool(cpu_flags) and grid >= net.grid_seconds
    # the network's grid does not depend on the images: a 3 mm pair costs at least the grid part
    third = REFERENCE_VOXELS / 27
    per_voxel = net.cpu_seconds - net.grid_seconds
    assert pair_seconds("smgicnet", third) == pytest.approx(grid + per_voxel / 27)
    assert pair_seconds("smgicnet", REFERENCE_VOXELS) == pytest.approx(grid + per_voxel)
    # a model on a grid of 1/8 the voxels: 1/8 of the grid part; n pairs of a total voxel count: linear
    assert pair_seconds("smgicnet", 0.0, NETWORK_VOXELS / 8) == pytest.approx(grid / 8)
    assert pair_seconds("synquick", 3 * third, n_pairs=3) == pytest.approx(3 * pair_seconds("synquick", third))


def _stage_cost(table: str, affine: bool, level: int, steps: int, fine: bool = True, fine_steps: int = 0,
                pre_steps: int = 0) -> float:
    """A pair's model-grid CPU seconds from the stage table (closed form; the half grid without refinement
    integrates its fields there)."""
    c = STAGE_CPU_SECONDS[table]
    rest = c["rest"]["half" if (level, steps) == (3, 0) else "full"]
    return (rest + c["network"][level] + affine * c["affine"][fine] + steps * c["refine_step"]
            + fine_steps * c["refine_fine_step"] + pre_steps * c["refine_pre_step"])


RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
STORED_RUN_DEFAULTS = {"refine_fine_steps": 0, "refine_pre_steps": 0}
"""The smgicnet defaults the stored tables below ran with (their key files' options), where today's differ."""


@pytest.mark.parametrize("table, method, cpu", [
    ("idle2_1mm", "synquick", "bf16"), ("idle2_1mm", "smgicnet", "bf16"), ("idle2_1mm", "smgicnet-fast", "bf16"),
    ("idle2_1mm", "smgicnet-best", "bf16"), ("heldout22_2mm", "synquick", "bf16"), ("heldout22_2mm", "syn", "bf16"),
    ("avx2_1mm", "synquick", "fp32"), ("avx2_1mm", "smgicnet", "fp32"),
    ("avx2_1mm", "smgicnet-fast", "fp32"), ("avx2_3mm", "smgicnet", "fp32"), ("avx2_3mm", "smgicnet-best", "fp32"),
])
def test_guide_within_a_factor_of_1_5_of_the_stored_benchmark_runs(table, method, cpu, monkeypatch):
    """Each method's guide against the CPU seconds of real pairs (``benchmarks/pair_accuracy.py`` runs, one
    thread, in ``benchmarks/results``; the CPU class of each run as its table): the median of measured / guide
    over the pairs within a factor of 1.5. FireANTs on the CPU is not here: its one 1 mm pair sets its guide, which
    is 3x high for 2 mm pairs (its time grows faster than its voxels)."""
    import json

    monkeypatch.setattr("smgic_pydra.network.precision.cpu_bf16_flags", lambda: BF16_CPU if cpu == "bf16" else FP32_CPU)
    data = json.loads((RESULTS / f"pair_accuracy_{table}.json").read_text())
    assert data["benchmark"]["options"] == {} and data["benchmark"]["machine"]["omp_num_threads"] == "1"
    base, _, quality = method.partition("-")
    # these runs predate the pre and fine stages of the default refinement (8 and 4 steps since commit 4d50a7e)
    options = {**STORED_RUN_DEFAULTS, **(quality_options(quality) if quality else {})} if base == "smgicnet" else None
    ratios = [row["cpu_seconds"] / pair_seconds(base, float(np.prod(data["subjects"][row["fixed"]]["shape"])),
                                                options=options)
              for row in data["rows"] if row["method"] == method and not row["error"] and "cpu_seconds" in row]
    assert len(ratios) >= 4 and 1 / 1.5 <= float(np.median(ratios)) <= 1.5, ratios


def test_memory_guide_covers_every_stored_1mm_pair():
    """The registry's ``memory_gib`` (the plan's --mem guide) at or above the peak resident set of every 1 mm pair
    of the stored benchmark runs (``benchmarks/pair_accuracy.py``: registration and writing in a fresh process)."""
    import json

    peaks = {}
    for path in RESULTS.glob("pair_accuracy_*_1mm.json"):
        for row in json.loads(path.read_text()).get("rows", []):
            if row.get("peak_rss_mib") and not row.get("error"):
                method = row["method"].partition("-")[0]
                peaks[method] = max(peaks.get(method, 0.0), row["peak_rss_mib"] / 1024)
    assert {"identity", "synquick", "smgicnet", "fireants"} <= set(peaks)
    assert all(peak <= get_method(m).memory_gib for m, peak in peaks.items()), peaks


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _guide_line(text: str) -> tuple[float, str]:
    line = next(ln for ln in text.splitlines() if "time guide:" in ln)
    return float(re.search(r"time guide: ([0-9.e+-]+) CPU job-hours", line).group(1)) * 3600, line


def test_pair_seconds_follow_the_options_the_half_grid_and_the_cpu(cpu_flags):
    """The grid part scales with the stages the options run and with the table of the precision the network
    runs in on this CPU (``auto``: bf16 where it has bf16 units; ``fp32`` forced: the float32 table)."""
    net, table = get_method("smgicnet"), "bf16" if cpu_flags else "fp32"
    # 1.0: the registry's grid part is the bf16 defaults' (8 pre steps, 12 main, 4 fine)
    unit = net.grid_seconds / _stage_cost("bf16", True, 4, 12, **DEFAULT)
    assert unit == pytest.approx(1.0)

    def guide(options, n_pairs=1, half=0):
        return pair_seconds("smgicnet", 0.0, n_pairs=n_pairs, options=options, half_grid_pairs=half)

    fast, best = quality_options("fast"), quality_options("best")
    assert guide({"refine": 12}) == pytest.approx(_stage_cost(table, True, 4, 12, **DEFAULT))
    assert guide({"refine": 5, "refine_fine_steps": 0, "refine_pre_steps": 0}) == pytest.approx(
        _stage_cost(table, True, 4, 5))
    assert guide(fast) == pytest.approx(_stage_cost(table, True, 4, 0, False))
    assert guide(fast, n_pairs=3, half=2) == pytest.approx(
        _stage_cost(table, True, 4, 0, False) + 2 * _stage_cost(table, True, 3, 0, False))
    assert guide({"affine": False, "refine": 0}) == pytest.approx(_stage_cost(table, False, 4, 0))
    # 8 fine steps on the full grid after the 12 main ones (and 8 pre ones); no stage without main steps
    assert guide(best) == pytest.approx(_stage_cost(table, True, 4, 12, fine_steps=8, pre_steps=8))
    assert guide({**best, "refine": 0}) == pytest.approx(_stage_cost(table, True, 4, 0))
    # float32 forced: the float32 table on any CPU
    assert guide({"precision": "fp32"}) == pytest.approx(_stage_cost("fp32", True, 4, 12, **DEFAULT))
    assert pair_seconds("synquick", 0.0, options=None, half_grid_pairs=1) == pytest.approx(get_method("synquick").grid_seconds)


@needs_example
@pytest.mark.slow
@pytest.mark.parametrize("quality", ["default", "fast"])
def test_time_guide_within_a_factor_of_two_of_a_real_run_and_done_pairs_counted(tmp_path, capsys, quality):
    """One 3 mm pair of the example dataset with the packaged model (one job, one thread), with the default
    pipeline and with ``--quality fast`` (no refinement, the network on half the grid for 3 mm inputs)."""
    from smgic_pydra.reports.tiles import read_pairs_tables

    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=0, voxel_mm=3.0)
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(out), "participant", "-w", str(work), "--method", "smgicnet", "--worker", "debug",
            "--omp-nthreads", "1", "--no-progress", "--skip-bids-validation", "--no-reportlets", "--quality", quality]
    assert main([*args, "--plan-only"]) == 0
    planned = capsys.readouterr().out
    _, line = _guide_line(planned)
    assert "already done: 0 of 2 pair results" in planned and "identity" in line  # identity is always run
    guide = float(re.search(r"\(smgicnet ([0-9.e+-]+),", line).group(1)) * 3600  # SM-GICNet's part
    # a 3 mm pair costs at least its settings' grid part (fast: on half the grid, 3 mm inputs)
    assert guide > pair_seconds("smgicnet", 0.0, options=quality_options(quality), half_grid_pairs=int(quality == "fast"))

    # the run in this process (debug worker): its CPU seconds over its wall seconds say how much of a core it had
    wall, cpu = time.perf_counter(), _cpu_seconds()
    assert main(args) == 0
    share = (_cpu_seconds() - cpu) / (time.perf_counter() - wall)
    capsys.readouterr()
    tables = sorted((out / "reports" / "tiles" / "smgicnet").glob("*_pairs.parquet"))
    pairs = read_pairs_tables([str(p) for p in tables])
    assert (pairs["error"] == "").all() and len(pairs) == 1
    # SM-GICNet's guide is CPU seconds of one thread: its pair's wall seconds on the share of a core the run had
    measured = float(pairs["seconds"].sum()) * min(share, 1.0)
    assert 0.5 <= guide / measured <= 2.0, f"guide {guide:.1f} s, measured {measured:.1f} CPU s (share {share:.2f})"

    # planned again: the pair is done (journal and files match), nothing left to time
    assert main([*args, "--plan-only"]) == 0
    again = capsys.readouterr().out
    assert "already done: 2 of 2 pair results" in again and _guide_line(again)[0] == 0.0


@needs_example
@pytest.mark.slow
def test_plan_counts_as_done_exactly_the_pairs_the_run_then_reuses(tmp_path, capsys, write_small_model):
    """--plan-only's 'already done' against the next run's own ``resumed`` rows: after a --outputs warps run,
    --outputs all reuses identity's rows but registers SM-GICNet again (its files do not cover all)."""
    from smgic_pydra.reports.tiles import read_pairs_tables

    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=2, voxel_mm=3.0)
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(out), "participant", "-w", str(work), "--model", str(write_small_model(tmp_path / "m")),
            "--no-affine", "--refine", "0", "--pairs", "ordered", "--participant-label", "02", "--worker", "debug",
            "--no-progress", "--skip-bids-validation", "--no-reportlets"]

    def done(outputs: str) -> int:
        assert main([*args, "--outputs", outputs, "--plan-only"]) == 0
        return int(re.search(r"already done: (\d+) of 2 pair results", capsys.readouterr().out).group(1))

    def resumed(outputs: str) -> dict:
        assert main([*args, "--outputs", outputs]) == 0
        capsys.readouterr()
        tables = sorted((out / "reports" / "tiles").glob("*/*_pairs.parquet"), key=lambda p: p.stat().st_mtime_ns)
        rows = read_pairs_tables([str(p) for p in tables]).drop_duplicates("method", keep="last")
        return dict(zip(rows["method"], rows["resumed"]))

    assert done("warps") == 0 and resumed("warps") == {"smgicnet": False, "identity": False}
    assert done("warps") == 2
    assert done("all") == 1 and resumed("all") == {"smgicnet": False, "identity": True}
    assert done("all") == 2 and done("warps") == 2  # files of all cover warps
    # another work dir (another run key, no journals): SM-GICNet's files of the same content key are evaluated
    # without registering, and counted as done; identity writes no files, so its pair runs again
    args[args.index(str(work))] = str(tmp_path / "work2")
    assert done("all") == 1 and resumed("all") == {"smgicnet": True, "identity": False}


@needs_example
def test_plan_reads_each_input_header_once_and_estimates_from_it(tmp_path, capsys, monkeypatch):
    """--plan-only validates every header and estimates the bytes from the same read: one nibabel load per
    T1w, mask and labels file, and the plan's lines are those of the headers read again (nibabel)."""
    from collections import Counter

    import nibabel as nib

    from smgic_pydra.workflows.bids_cohort import bids_plan
    from smgic_pydra.workflows.plan_summary import summarize

    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=0, voxel_mm=3.0)
    out, work = tmp_path / "out", tmp_path / "work"
    loads, load = Counter(), nib.load

    def counted(path, *args, **kwargs):
        loads[Path(path).name] += 1
        return load(path, *args, **kwargs)

    monkeypatch.setattr(nib, "load", counted)
    assert main([str(bids), str(out), "participant", "-w", str(work), "--plan-only", "--skip-bids-validation"]) == 0
    monkeypatch.undo()
    def steady(lines):  # the free space of a shared disk moves between the two calls
        return [re.sub(r"\([0-9.e+]+ GiB free\)", "(free)", line.removeprefix("smgic-bids: ")) for line in lines]

    printed = steady(capsys.readouterr().out.splitlines())
    plan, _ = bids_plan(bids, out, work, ["smgicnet", "identity"])
    files = [Path(s[role]).name for s in plan.subjects for role in ("t1w", "mask", "labels")]
    assert len(files) == 6 and {name: loads[name] for name in files} == dict.fromkeys(files, 1)
    grids = {s["subject"]: (int(np.prod(load(s["t1w"]).shape[:3])), float(min(load(s["t1w"]).header.get_zooms()[:3])))
             for s in plan.subjects}
    assert printed == steady(summarize(plan, grids).lines(plan.outputs)) and "(free)" in printed[2]
