"""``--outputs``: which files a registered pair writes (plain data, no heavy import, so the CLI can list it)."""

OUTPUT_POLICIES = {"all": None, "warps": ("warp", "inverse_warp", "sidecar"), "metrics": ()}
"""Policy -> the output roles (:class:`~smgic_pydra.worldspace.PairOutputPaths` fields) written per pair.
``all`` (None): every one, the default; ``warps``: the forward and inverse warps and the sidecar;
``metrics``: no file, only the pair's rows in the tile tables and reports. Metrics are computed
from the fields in memory in the same way for each."""
