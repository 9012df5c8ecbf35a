"""What ``smgic-bids`` was asked to do, parsed and validated: :class:`BidsAppSettings`.

The CLI (:func:`smgic_pydra.cli.parser.parse_settings`) builds it; the BIDS-level workflows
(:mod:`smgic_pydra.workflows.bids_cohort`, :mod:`smgic_pydra.workflows.bids_training`) read it. Paths
are absolute; every choice is checked (one-line errors) before the object exists. Each run that writes
records the settings it ran with in ``OUTPUT_DIR/logs/config-<UTC time>.json`` (:func:`write_run_config`,
as fMRIPrep's ``logs/config-*.toml``).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .defaults import CHECKPOINT_EVERY, PAIRS_PER_JOB, RANDOM_SEED, VALIDATE_EVERY
from .output_policy import DEFAULT_POLICY

LOGS_DIR = "logs"
"""OUTPUT_DIR's folder of run records (BIDS derivatives allow it; a model folder ignores it)."""


@dataclass(kw_only=True)
class BidsAppSettings:
    """The settings of one ``smgic-bids`` run (fields named after their options); the one place their
    defaults live (the parser reads them with :func:`default`)."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path = Path("work")
    # BIDS selection
    participant_label: list[str] | None = None
    session_label: list[str] | None = None
    bids_filter_file: Path | None = None
    skip_bids_validation: bool = False
    # registration
    model: str | None = None
    methods: list[str] = field(default_factory=lambda: ["smgicnet", "identity"])
    """``--method`` in order, plus ``identity`` (always reported)."""
    method_options: dict[str, dict] = field(default_factory=dict)
    """method -> its options (``--method-option``, over the ``--quality`` preset), checked against the method registry."""
    quality: str = "default"
    """smgicnet's preset (``smgic_pydra.pipeline_settings.QUALITY_PRESETS``): fast, default or best."""
    pairs: str = "all"
    pairs_per_job: int = PAIRS_PER_JOB
    """pairs per job: tiles of ``floor(sqrt(pairs_per_job))`` subjects a side."""
    outputs: str = DEFAULT_POLICY
    """``all`` | ``warps`` | ``metrics``: the files written per pair (``smgic_pydra.output_policy.OUTPUT_POLICIES``)."""
    plan_only: bool = False
    device: str = "cpu"
    labels: Path | None = None
    skull_strip: str | None = None
    """None: subjects without a brain mask are refused."""
    # training
    train_preset: str = "paper"
    stages: tuple[int, int] = (1, 4)
    """first and last progressive stage."""
    iterations: tuple[int, ...] | None = None
    """steps per stage (None: the preset's)."""
    init_model: str | None = None
    validation_fraction: float = 0.2
    validation_participants: list[str] | None = None
    precision: str = "fp32"
    """training's autocast (registration's precision travels in ``method_options``)."""
    checkpoint_every: int = CHECKPOINT_EVERY
    validate_every: int = VALIDATE_EVERY
    # execution
    nprocs: int | None = None
    omp_nthreads: int = 1
    random_seed: int = RANDOM_SEED
    worker: str = "cf"
    slurm_args: str = ""
    verify_outputs: bool = False
    reportlets: bool = True
    progress: bool = True
    verbose: int = 0
    command: list[str] = field(default_factory=list)
    """the command line as given (recorded with trained models)."""


def default(name: str):
    """The default of the :class:`BidsAppSettings` field ``name`` (a fresh copy of a mutable one)."""
    for f in fields(BidsAppSettings):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise KeyError(f"BidsAppSettings.{name} has no default")
    raise KeyError(f"BidsAppSettings has no field {name!r}")


def settings_record(settings: BidsAppSettings, now: datetime) -> dict:
    """The JSON content of a run's settings: ``version``, ``date`` (UTC, ISO 8601), ``command`` (argv as
    given, after the program name) and ``settings`` (every field; paths as strings, tuples as lists)."""
    import json

    from . import __version__
    from .io.atomic import json_text

    return {"version": __version__, "date": now.isoformat(), "command": list(settings.command),
            "settings": json.loads(json_text(asdict(settings)))}


def write_run_config(settings: BidsAppSettings) -> Path:
    """Write :func:`settings_record` to ``OUTPUT_DIR/logs/config-<UTC time, to the microsecond>.json``
    (atomically); returns its path. The levels call it once their inputs are checked, when they start
    writing (participant, train) or once they wrote (group, export); ``--plan-only`` writes none."""
    from .io.atomic import save_json

    now = datetime.now(timezone.utc)
    path = Path(settings.output_dir) / LOGS_DIR / f"config-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    return save_json(settings_record(settings, now), path)
