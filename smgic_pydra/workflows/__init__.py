"""Pydra workflow factories (niworkflows-style ``init_*_wf``) and their runner."""

from .cohort import (BASELINE_METHODS, NETWORK_METHOD, CohortPlan, CohortResult, CohortRunError, init_cohort_wf,
                     run_cohort)
from .progress import ProgressMonitor, read_markers

__all__ = ["BASELINE_METHODS", "NETWORK_METHOD", "CohortPlan", "CohortResult", "CohortRunError", "ProgressMonitor",
           "init_cohort_wf", "read_markers", "run_cohort"]
