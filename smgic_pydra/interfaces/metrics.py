"""Nipype interface: the metrics of one registered pair (:func:`smgic_pydra.metrics.pair_metrics.pair_metrics`)."""

from __future__ import annotations

import os

from nipype.interfaces.base import BaseInterfaceInputSpec, Directory, File, SimpleInterface, TraitedSpec, isdefined, traits

from ..metrics.pair_metrics import METRIC_DESCRIPTIONS


class _PairMetricsInputSpec(BaseInterfaceInputSpec):
    fixed_dir = Directory(exists=True, mandatory=True, desc="prepared fixed subject (its labels and brain mask)")
    warp = File(exists=True, mandatory=True, desc="forward warp (RegisterPair)")
    inverse_warp = File(exists=True, mandatory=True, desc="inverse warp (RegisterPair)")
    warped_labels = File(exists=True, desc="warped moving labels (RegisterPair); without them no Dice")
    moving_dir = Directory(exists=True, desc="prepared moving subject (its labels: labels_lost; without it NaN)")
    labels_table = File(exists=True, desc="label table TSV (index, name) for Dice (default: 36 aseg labels)")
    method = traits.Str("", usedefault=True, desc="method name, recorded in the metrics JSON")
    moving = traits.Str("", usedefault=True, desc="moving subject label, recorded in the metrics JSON")


class _PairMetricsOutputSpec(TraitedSpec):
    metrics_file = File(exists=True, desc="the pair's metrics JSON (row and Dice per label)")


for _name, _desc in METRIC_DESCRIPTIONS.items():  # one float output per metric of the cohort reports
    _PairMetricsOutputSpec.add_class_trait(_name, traits.Float(desc=_desc))


class PairMetrics(SimpleInterface):
    """Dice per label, Jacobian folding and inverse consistency of one pair, as the cohort workflow's tiles compute them."""

    input_spec = _PairMetricsInputSpec
    output_spec = _PairMetricsOutputSpec

    def _run_interface(self, runtime):
        import math

        from ..metrics.labels import load_label_table
        from ..preparation import PreparedSubject
        from ..metrics.pair_metrics import METRIC_VALUES, pair_metrics, write_metrics_file

        table_path = self.inputs.labels_table if isdefined(self.inputs.labels_table) else None
        table = load_label_table(table_path)
        fixed = PreparedSubject.load(self.inputs.fixed_dir)
        files = {"warp": self.inputs.warp, "inverse_warp": self.inputs.inverse_warp}
        if isdefined(self.inputs.warped_labels):
            files["warped_labels"] = self.inputs.warped_labels
        moving = PreparedSubject.load(self.inputs.moving_dir) if isdefined(self.inputs.moving_dir) else None
        metrics, per_label = pair_metrics(files, fixed, table, table_path, moving)
        row = {"method": self.inputs.method, "fixed": fixed.subject_id, "moving": self.inputs.moving, "error": "",
               **metrics, "metrics_file": os.path.join(runtime.cwd, "metrics.json")}
        write_metrics_file(row, per_label, dict(table), table_path)
        self._results.update({k: float(metrics.get(k, math.nan)) for k in METRIC_VALUES})
        self._results["metrics_file"] = row["metrics_file"]
        return runtime
