"""Skull stripping, intensity normalisation and network-grid placement of subjects."""

from .._lazy import lazy_exports

_EXPORTS = {
    "mask_centre_ras": ".grid",
    "network_affine": ".grid",
    "normalize_intensity": ".intensity",
    "prepare_subject": ".prepare",
    "SKULL_STRIP_METHODS": ".skullstrip",
    "deepbet_mask": ".skullstrip",
    "synthstrip_mask": ".skullstrip",
    "PreparedSubject": ".subject",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
