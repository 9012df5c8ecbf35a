"""``--outputs``: which files a registered pair writes, and when a pair's written files are complete
(plain data, no heavy import, so the CLI can list it).

Output roles are the :class:`~smgic_pydra.worldspace.PairOutputPaths` fields. Every policy that writes
files writes the pair's JSON sidecar too (``sidecar``: its ``output_policy``, ``files`` and their
records). Methods whose result is a baseline and not a transform anyone applies (``identity``:
:attr:`~smgic_pydra.methods.registry.RegistrationMethod.writes_outputs` False) write nothing under
any policy: only their metrics rows. Metrics are computed from the fields in memory in the same way
under every policy.
"""

from __future__ import annotations

from dataclasses import dataclass

DENSE_ROLES = ("warp", "inverse_warp")


@dataclass(frozen=True)
class OutputPolicy:
    """One ``--outputs`` value.

    name: the value. roles: the output roles written per ordered pair (the ones a pair has: no
    ``warped_labels`` without moving labels, no ``affine`` for a method without an affine stage).
    compact: a method with a compact mapping (SM-GICNet: affine + stationary velocity on the network
    grid, :mod:`smgic_pydra.worldspace.compact`) writes that one file per unordered pair instead of
    ``roles``; other methods write the dense warps. figures: the pair and subject reportlets
    (when ``--no-reportlets`` is not given). help: one line for ``--help``.
    """

    name: str
    roles: tuple[str, ...]
    help: str
    compact: bool = False
    figures: bool = False

    @property
    def writes_files(self) -> bool:
        """Whether any method writes a file under this policy."""
        return bool(self.roles) or self.compact

    def writes_for(self, method: str) -> bool:
        """Whether ``method``'s pairs write files (sidecar included) under this policy."""
        from .methods import get_method

        return self.writes_files and get_method(method).writes_outputs

    def roles_for(self, compact_available: bool) -> tuple[str, ...]:
        """The roles to write for a pair whose method has (``compact_available``) a compact mapping or not."""
        if self.compact:
            return ("compact",) if compact_available else DENSE_ROLES
        return self.roles

    def covered_by(self, other: "OutputPolicy") -> bool:
        """Whether files written under ``other`` hold everything this policy writes (``full`` covers ``all``,
        ``all`` covers ``warps``; only ``compact`` covers ``compact``)."""
        return set(self.roles) <= set(other.roles) and (other.compact or not self.compact)

    def coverage_problem(self, meta: dict, sidecar) -> str | None:
        """``"<sidecar>: <problem>"`` when the pair's files (its sidecar ``meta``) were written under a policy
        that does not cover this one (e.g. ``warps`` files for ``all``), else None."""
        written = OUTPUT_POLICIES.get(str(meta.get("output_policy")))
        if written is None or not self.covered_by(written):
            return (f"{sidecar}: written with --outputs {meta.get('output_policy')}, which lacks files of "
                    f"--outputs {self.name}")
        return None


_DENSE_ALL = (*DENSE_ROLES, "affine", "warped", "warped_labels")

OUTPUT_POLICIES: dict[str, OutputPolicy] = {p.name: p for p in (
    OutputPolicy("all", _DENSE_ALL, "forward + inverse warp (ITK/ANTs .nii.gz), the affine stage (.mat), warped "
                 "image and labels, figures (the default)", figures=True),
    OutputPolicy("full", (*_DENSE_ALL, "jacobian", "warp_h5"), "all, plus the Jacobian map and the ITK composite "
                 ".h5 (float32, compressed)", figures=True),
    OutputPolicy("warps", DENSE_ROLES, "forward + inverse warp and the sidecar"),
    OutputPolicy("compact", (), "SM-GICNet: one file per unordered pair (affine + velocity, float32, compressed) "
                 "from which 'smgic-bids ... export' writes both warps exactly; other methods: as warps", compact=True),
    OutputPolicy("metrics", (), "no file: only the report rows (for big cohorts)"),
)}
"""name -> policy, in the order ``--help`` lists them; ``all`` is the default."""
DEFAULT_POLICY = "all"


def output_policy(name) -> OutputPolicy:
    """The policy called ``name`` (or ``name`` itself when it is one); an unknown name is a one-line ``ValueError``."""
    if isinstance(name, OutputPolicy):
        return name
    try:
        return OUTPUT_POLICIES[name]
    except KeyError:
        raise ValueError(f"outputs must be one of {list(OUTPUT_POLICIES)}, got {name!r}") from None


def policies_help() -> str:
    """``name (help); ...`` of every policy, for ``--outputs``' help."""
    return "; ".join(f"{p.name}: {p.help}" for p in OUTPUT_POLICIES.values())
