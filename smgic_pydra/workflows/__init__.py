"""Pydra workflow factories (niworkflows-style ``init_*_wf``) and their runners."""

from .cohort import CohortPlan, CohortResult, init_cohort_wf, run_cohort
from .pair import init_pair_wf, init_to_reference_wf
from .progress import ProgressMonitor, JournalTail
from .submit import CohortRunError
from .training import TrainingPlan, init_training_wf, run_training

__all__ = ["CohortPlan", "CohortResult", "CohortRunError", "JournalTail", "ProgressMonitor",
           "TrainingPlan", "init_cohort_wf", "init_pair_wf", "init_to_reference_wf", "init_training_wf", "run_cohort",
           "run_training"]
