"""SM-GICNet's compact mapping of an unordered pair, and the dense native-grid fields of either order from it.

SM-GICNet computes a pair once, in a canonical order (:func:`smgic_pydra.inference.register.pair_fields`):
the affine ``A`` (RAS mm, canonical fixed -> moving) and one stationary velocity ``v`` on the halfway
network grid. Both directions follow: ``exp(v)`` is fixed -> moving, ``exp(-v)`` moving -> fixed.
:class:`CompactMapping` holds exactly that (plus the two halfway views' ``net_affine`` and the native
grids), and :meth:`CompactMapping.dense_fields` is the one path from it to the dense fields: the
registration itself goes through it, so fields reconstructed from a compact file are bit for bit
the ones the ``all`` policy writes (on the same CPU kind: the integration runs in float32 on the CPU).

File (HDF5, :func:`write_compact` / :func:`read_compact`): dataset ``velocity`` ``(3, D, H, W)``
float32 (normalized units, channels ``(x, y, z) = (W, H, D)``, gzip + shuffle), attribute ``mapping``:
JSON of the rest (matrices as float64 lists, which JSON round-trips exactly).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..io.atomic import atomic_path
from .mapping import network_disp_to_world

FORMAT = "smgic-pydra compact mapping 1"
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
"""HDF5 filters of the velocity (byte shuffle lets gzip find the float32 exponents' redundancy)."""


@dataclass
class CompactMapping:
    """Both directions of one pair's mapping.

    fixed / moving: subject keys of the canonical order (the stored ``v`` maps fixed -> moving); distinct.
    velocity: ``(3, D, H, W)`` float32 on the halfway grid of the network level that made it (the model's
    grid, or half of it). ss_steps: scaling-and-squaring steps. fixed_view / moving_view: ``(4, 4)``
    index -> RAS mm affines of that grid in the two halfway views. affine: ``A`` ``(4, 4)`` RAS mm (canonical fixed -> moving) or None.
    grids: subject key -> ``(native affine (4, 4), native shape)`` of its T1w.
    """

    fixed: str
    moving: str
    velocity: np.ndarray
    ss_steps: int
    fixed_view: np.ndarray
    moving_view: np.ndarray
    affine: np.ndarray | None
    grids: dict

    def __post_init__(self) -> None:
        if self.fixed == self.moving:  # the views and grids are keyed by subject: one key would merge them
            raise ValueError(f"a compact mapping needs two distinct subject keys, got {self.fixed!r} for both")
        self.velocity = np.ascontiguousarray(np.asarray(self.velocity, dtype=np.float32).reshape((3, *np.shape(self.velocity)[-3:])))

    def network_fields(self, device="cpu"):
        """``(exp(v), exp(-v))`` displacements ``(1, 3, D, H, W)`` float32 torch tensors on ``device``, canonical order."""
        import torch

        from ..transforms import integrate_velocity

        v = torch.from_numpy(self.velocity)[None].to(device)
        with torch.no_grad():
            return integrate_velocity(v, self.ss_steps), integrate_velocity(-v, self.ss_steps)

    def other(self, subject: str) -> str:
        """The pair's other subject."""
        if subject not in (self.fixed, self.moving):
            raise ValueError(f"{subject} is not a subject of the pair {self.fixed}, {self.moving}")
        return self.moving if subject == self.fixed else self.fixed

    def affine_for(self, fixed: str) -> np.ndarray | None:
        """``A`` (fixed -> moving, RAS mm) of the order with ``fixed`` as the fixed subject, or None."""
        if self.affine is None:
            return None
        return np.asarray(self.affine) if fixed == self.fixed else np.linalg.inv(self.affine)

    def dense_fields(self, fixed: str, network=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(forward, inverse, A)`` of the order with ``fixed`` as the fixed subject: forward
        ``(X, Y, Z, 3)`` float32 RAS mm on the fixed native grid (fixed -> moving), inverse on the
        moving native grid, ``A`` as :meth:`affine_for`. network: :meth:`network_fields`, when already
        computed (on a GPU, the native fields are computed there too); else integrated on the CPU."""
        moving = self.other(fixed)
        disp, disp_inv = self.network_fields() if network is None else network
        shape = self.velocity.shape[1:]
        views = {self.fixed: _view(self.fixed_view, shape), self.moving: _view(self.moving_view, shape)}
        if fixed != self.fixed:
            disp, disp_inv = disp_inv, disp
        (fixed_affine, fixed_shape), (moving_affine, moving_shape) = self.grids[fixed], self.grids[moving]
        fwd = network_disp_to_world(disp, views[fixed], views[moving], fixed_affine, fixed_shape)
        inv = network_disp_to_world(disp_inv, views[moving], views[fixed], moving_affine, moving_shape)
        return fwd, inv, self.affine_for(fixed)

    def metadata(self) -> dict:
        return {"format": FORMAT, "fixed": self.fixed, "moving": self.moving, "ss_steps": int(self.ss_steps),
                "fixed_view": np.asarray(self.fixed_view, np.float64).tolist(),
                "moving_view": np.asarray(self.moving_view, np.float64).tolist(),
                "affine": None if self.affine is None else np.asarray(self.affine, np.float64).tolist(),
                "grids": {k: {"affine": np.asarray(a, np.float64).tolist(), "shape": [int(n) for n in s[:3]]}
                          for k, (a, s) in sorted(self.grids.items())}}


def _view(net_affine, shape) -> SimpleNamespace:
    """What :func:`network_disp_to_world` reads of a halfway view: its ``net_affine`` and grid shape."""
    return SimpleNamespace(net_affine=np.asarray(net_affine, dtype=np.float64),
                           image=SimpleNamespace(shape=tuple(int(n) for n in shape)))


def write_compact(path, mapping: CompactMapping) -> Path:
    """Write ``mapping`` to ``path`` (HDF5, atomic; the same mapping gives the same bytes)."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as h5:
            h5.attrs["mapping"] = json.dumps(mapping.metadata(), sort_keys=True)
            h5.create_dataset("velocity", data=mapping.velocity, chunks=(1, *mapping.velocity.shape[1:2], 32, 32)
                              if mapping.velocity.shape[2] >= 32 and mapping.velocity.shape[3] >= 32 else True,
                              track_times=False, **COMPRESSION)
    return path


def read_compact(path) -> CompactMapping:
    """The :class:`CompactMapping` of a file of :func:`write_compact`; a bad file is a one-line InputError."""
    import h5py

    from ..io.errors import InputError, display_path

    try:
        with h5py.File(path, "r") as h5:
            meta = json.loads(h5.attrs["mapping"])
            velocity = h5["velocity"][()]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(display_path(path), f"not a readable compact mapping ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise InputError(display_path(path), f"not a compact mapping of this version (format {meta.get('format')!r})")
    grids = {k: (np.asarray(g["affine"], np.float64), tuple(g["shape"])) for k, g in meta["grids"].items()}
    affine = None if meta["affine"] is None else np.asarray(meta["affine"], np.float64)
    return CompactMapping(meta["fixed"], meta["moving"], velocity, int(meta["ss_steps"]),
                          np.asarray(meta["fixed_view"], np.float64), np.asarray(meta["moving_view"], np.float64),
                          affine, grids)
