"""The method registry is the one list: the CLI, the workflow nodes, SLURM resources and reports read it;
a new method is one module plus one entry."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from smgic_pydra.methods import METHODS, RegistrationMethod, gpu_resources, report_label


def test_every_entry_names_a_runner_and_valid_needs():
    for name, method in METHODS.items():
        module, function = method.runner.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
        assert method.gpu in ("no", "optional", "preferred") and method.memory_gib > 0 and method.help
    assert METHODS["fireants"].gpu == "preferred" and METHODS["fireants"].extra == "fireants"
    assert not METHODS["identity"].selectable and METHODS["smgicnet"].uses_model


def test_cli_choices_help_and_skull_strippers_come_from_the_registries():
    from smgic_pydra.cli.parser import METHOD_CHOICES, UsageError, build_parser, parse_method_options, parse_methods
    from smgic_pydra.preparation.skullstrip import SKULL_STRIPPERS

    assert set(METHOD_CHOICES) == {n for n, m in METHODS.items() if m.selectable}
    assert parse_methods("fireants,syn") == ["fireants", "syn", "identity"]
    with pytest.raises(UsageError, match="unknown method"):
        parse_methods("elastix")
    parser = build_parser()
    help_text = " ".join(parser.format_help().split())
    assert all(METHODS[n].help.split()[0] in help_text for n in METHOD_CHOICES)
    skull = next(a for a in parser._actions if a.dest == "skull_strip")
    assert tuple(skull.choices) == tuple(SKULL_STRIPPERS)
    assert parse_method_options(["fireants.scales=[4,2,1]", "fireants.greedy_lr=0.25"]) == {
        "fireants": {"scales": [4, 2, 1], "greedy_lr": 0.25}}
    with pytest.raises(UsageError, match="one value per scale"):  # the declared options' cross-check
        parse_method_options(["fireants.scales=[2,1]"])
    with pytest.raises(UsageError, match=r"unknown option\(s\) \['steps'\]"):
        parse_method_options(["fireants.steps=3"])


def test_gpu_methods_ask_slurm_for_a_gpu_by_their_node_whatever_it_is_called():
    from smgic_pydra.cli.bids_app import make_worker

    assert gpu_resources("cpu") == {}
    assert gpu_resources("cuda:1") == {"register": "--gres=gpu:1", "register_fireants": "--gres=gpu:1"}
    worker = make_worker("slurm", "cuda", "-c 1")
    assert worker.resources == {"register": ["--gres=gpu:1"], "register_fireants": ["--gres=gpu:1"],
                                "train": ["--gres=gpu:1"]}
    assert make_worker("slurm", "cpu").resources == {} and make_worker("cf", "cuda") == "cf"


def test_report_summary_carries_each_methods_label(tmp_path):
    import pandas as pd

    from smgic_pydra.reports import write_reports

    rows = [{"method": m, "fixed": "a", "moving": "b", "dice_mean": 0.5, "error": ""} for m in ("fireants", "other")]
    summary = pd.read_csv(write_reports(rows, [], tmp_path)["summary_csv"]).set_index("method")
    assert summary.loc["fireants", "label"] == "FireANTs" == report_label("fireants")
    assert summary.loc["other", "label"] == "other"


def test_a_new_method_is_one_module_and_one_entry(tmp_path, monkeypatch, write_cohort, write_small_model, unordered_pairs):
    """A toy method (zero fields from the shared native runner) registered at run time: the cohort
    workflow gives it its own node, writes and evaluates it like the others; its options reach its sidecar."""
    toy = tmp_path / "toy_method.py"
    toy.write_text(
        "import numpy as np\n"
        "from smgic_pydra.methods.native import prepared_inputs, register_native\n"
        "def make_runner(context, name):\n"
        "    def run(fixed, moving, sidecar_extra):\n"
        "        f, m, labels, extra = prepared_inputs(fixed, moving)\n"
        "        fields = lambda: (np.zeros(f.shape + (3,)), np.zeros(m.shape + (3,)), 0.0, {})\n"
        "        return register_native(name, fields, f, m, labels, {'method': name, 'options': dict(context.options),\n"
        "                                                            **extra, **sidecar_extra})\n"
        "    return run\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(METHODS, "toy", RegistrationMethod("toy", "Toy", "zero fields", "toy_method:make_runner",
                                                           node="register_toy", threads=False,
                                                           options={"strength": 0}))
    from smgic_pydra.workflows import CohortPlan, run_cohort

    subjects = write_cohort(tmp_path / "raw", 2)
    ids = [s["subject"] for s in subjects]
    pairs = unordered_pairs(ids)
    plan = CohortPlan(subjects=subjects, pairs=pairs, methods=["toy", "identity"], work_dir=tmp_path / "work",
                      output_dir=tmp_path / "out", model=str(write_small_model(tmp_path / "models")),
                      method_options={"toy": {"strength": 2}})
    result = run_cohort(plan, worker="debug", show_progress=False)
    by_method = {r["method"]: r for r in result.rows}
    assert set(by_method) == {"toy", "identity"} and not result.failed
    assert by_method["toy"]["dice_mean"] == by_method["identity"]["dice_mean"]
    meta = json.loads(plan.pair_paths(*pairs[0], "toy").sidecar.read_text())
    assert meta["options"] == {"strength": 2} and meta["method"] == "toy"
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['power'\]"):
        CohortPlan(subjects=subjects, pairs=pairs, methods=["toy"], work_dir=tmp_path / "w", output_dir=tmp_path / "o",
                   method_options={"toy": {"power": 1}})
