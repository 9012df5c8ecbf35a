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
    """method -> its options (``--method-option``), checked against the method registry; outside ``train`` smgicnet's
    also hold ``quality``'s preset beneath the explicit ones (:meth:`__post_init__`)."""
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
    """train: the autocast (fp32, bf16 or fp16); the other levels: smgicnet's network forward, its option in
    ``method_options`` (``--precision``; by default auto), copied here (:meth:`__post_init__`)."""
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

    def __post_init__(self) -> None:
        """Outside ``train``: put ``quality``'s preset beneath smgicnet's explicit options (each item only where it
        changes them, so the same settings built again are equal) and set ``precision`` to smgicnet's option (what
        runs and what the run's record shows). A bad value, a preset without smgicnet or another precision given
        here is a one-line ValueError."""
        if self.analysis_level == "train":
            return
        from .methods import METHODS
        from .pipeline_settings import quality_options

        if "smgicnet" not in self.methods:
            if self.quality != default("quality"):
                raise ValueError(f"--quality {self.quality}: smgicnet's preset, and smgicnet is not selected (--method "
                                 f"{','.join(m for m in self.methods if m != 'identity')}); add it or drop the option")
            return
        explicit = self.method_options.get("smgicnet", {})
        defaults = METHODS["smgicnet"].defaults
        preset = {k: v for k, v in quality_options(self.quality).items() if k not in explicit and v != defaults[k]}
        if preset:
            self.method_options = {**self.method_options, "smgicnet": preset | explicit}
        runs = METHODS["smgicnet"].merged_options(self.method_options.get("smgicnet"))["precision"]
        if self.precision not in (default("precision"), runs):
            raise ValueError(f"precision {self.precision}: registration's is smgicnet's option (method_options "
                             f"smgicnet.precision, here {runs}; --precision on the command line)")
        self.precision = runs


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
    given, after the program name), ``settings`` (every field; paths as strings, tuples as lists) and, for a
    participant run with smgicnet, ``network_precision``: what ``precision`` gives on ``device`` on the machine
    that writes the record (``auto``: bf16 or fp32 by CPU; SLURM nodes may differ: each pair's sidecar records
    what ran)."""
    import json

    from . import __version__
    from .io.atomic import json_text

    record = {"version": __version__, "date": now.isoformat(), "command": list(settings.command),
              "settings": json.loads(json_text(asdict(settings)))}
    if settings.analysis_level == "participant" and "smgicnet" in settings.methods:
        from .network.precision import device_precision

        record["network_precision"] = device_precision(settings.precision, settings.device)
    return record


def write_run_config(settings: BidsAppSettings) -> Path:
    """Write :func:`settings_record` to ``OUTPUT_DIR/logs/config-<UTC time, to the microsecond>.json``
    (atomically); returns its path. The levels call it once their inputs are checked, when they start
    writing (participant, train) or once they wrote (group, export); ``--plan-only`` writes none."""
    from .io.atomic import save_json

    now = datetime.now(timezone.utc)
    path = Path(settings.output_dir) / LOGS_DIR / f"config-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    return save_json(settings_record(settings, now), path)
