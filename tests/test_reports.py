"""Report tables: pairs.csv / dice_per_label.csv / summary (mean +- sample std per method)."""

import math
import statistics

import pandas as pd

from smgic_pydra.reports import write_reports


def _rows():
    rows = []
    for i, (dice, fold, ic, sec) in enumerate([(0.8, 0.0, 0.5, 2.0), (0.7, 0.1, 0.7, 3.0), (0.9, 0.2, 0.3, 4.0)]):
        rows.append({"method": "smgicnet", "fixed": f"sub-0{i}", "moving": "sub-09", "dice_mean": dice,
                     "folding_percent": fold, "inverse_consistency_mm": ic, "seconds": sec, "error": ""})
    rows.append({"method": "syn", "fixed": "sub-00", "moving": "sub-09", "dice_mean": 0.6, "folding_percent": 0.0,
                 "inverse_consistency_mm": 0.2, "seconds": 30.0, "error": ""})
    rows.append({"method": "syn", "fixed": "sub-01", "moving": "sub-09", "error": "RuntimeError: boom"})
    return rows


def test_reports_summary_matches_statistics_module(tmp_path):
    labels = [{"method": "syn", "fixed": "sub-00", "moving": "sub-09", "label": 17, "name": "Left-Hippocampus",
               "dice": 0.5}]
    paths = write_reports(_rows(), labels, tmp_path)
    pairs = pd.read_csv(paths["pairs"], dtype={"error": str}).fillna({"error": ""})
    assert len(pairs) == 5 and list(pairs.columns[:3]) == ["method", "fixed", "moving"]
    assert pairs.loc[pairs["error"] != "", "fixed"].tolist() == ["sub-01"]
    summary = pd.read_csv(paths["summary_tsv"], sep="\t").set_index("method")
    dice = [0.8, 0.7, 0.9]
    assert math.isclose(summary.loc["smgicnet", "dice_mean_mean"], statistics.mean(dice), rel_tol=1e-6)
    assert math.isclose(summary.loc["smgicnet", "dice_mean_std"], statistics.stdev(dice), rel_tol=1e-5)
    assert summary.loc["smgicnet", "Dice"] == f"{statistics.mean(dice):.3f} ± {statistics.stdev(dice):.3f}"
    # the failed SyN pair is counted but left out of the statistics
    assert summary.loc["syn", "n_pairs"] == 2 and summary.loc["syn", "n_failed"] == 1
    assert summary.loc["syn", "dice_mean_mean"] == 0.6 and summary.loc["syn", "dice_mean_std"] == 0.0
    per_label = pd.read_csv(paths["dice_per_label"])
    assert per_label.to_dict("records") == [{**labels[0]}]
    assert pd.read_csv(paths["summary_csv"]).shape == summary.reset_index().shape
    assert paths["pairs"].parent == tmp_path / "reports" and not list(paths["pairs"].parent.glob(".tmp-*"))
