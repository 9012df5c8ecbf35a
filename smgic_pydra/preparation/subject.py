"""A subject prepared for the network: arrays on the network grid plus the placement to map back.

On disk, a folder with ``image.nii.gz`` (float32 in [0, 1]), ``mask.nii.gz`` (uint8), optional
``labels.nii.gz`` (int32), all on the network grid (affine ``net_affine``), ``native_mask.nii.gz``
(the brain mask on the native grid) and ``prepared.json`` (written last; its presence marks a
complete folder). See :mod:`.grid` for the network-grid convention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_paths
from ..io.errors import InputError, display_path

MANIFEST = "prepared.json"
FORMAT = "smgic-prepared-subject"
FORMAT_VERSION = 1
FILES = {"image": "image.nii.gz", "mask": "mask.nii.gz", "labels": "labels.nii.gz", "native_mask": "native_mask.nii.gz"}


@dataclass
class PreparedSubject:
    """Network-grid arrays ``(D, H, W)`` = nibabel ``(i, j, k)`` of one subject and its placement.

    net_affine: network voxel index ``(i, j, k)`` -> RAS mm (RAS-aligned, centred on the brain).
    native_affine / native_shape: the grid of the source T1w (RAS mm).
    native_mask: brain mask on the native grid (bool) or None.
    fingerprint: hash of the input files and the preparation settings (for reuse).
    """

    subject_id: str
    image: np.ndarray
    mask: np.ndarray
    labels: np.ndarray | None
    net_affine: np.ndarray
    native_affine: np.ndarray
    native_shape: tuple
    source_files: dict[str, str]
    native_mask: np.ndarray | None = None
    skull_strip: str = "none"
    intensity_clip: tuple[float, float] | None = None
    fingerprint: str = ""
    folder: Path | None = field(default=None, compare=False)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.image.shape)

    def manifest(self) -> dict:
        files = {k: v for k, v in FILES.items() if getattr(self, k) is not None}
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "subject_id": self.subject_id,
            "fingerprint": self.fingerprint,
            "grid_shape": list(self.grid_shape),
            "net_affine": np.asarray(self.net_affine).tolist(),
            "net_grid_convention": "index (i,j,k) -> RAS mm; i->R, j->A, k->S; centred on the brain mask bounding box",
            "native_affine": np.asarray(self.native_affine).tolist(),
            "native_shape": [int(n) for n in self.native_shape],
            "source_files": dict(self.source_files),
            "skull_strip": self.skull_strip,
            "intensity_clip": None if self.intensity_clip is None else list(self.intensity_clip),
            "files": files,
        }

    def save(self, folder) -> Path:
        """Write the folder all-or-nothing (``prepared.json`` last); returns the folder."""
        import nibabel as nib

        folder = Path(folder)
        native_mask = None if self.native_mask is None else self.native_mask.astype(np.uint8)
        arrays = {
            "image": (self.image.astype(np.float32), self.net_affine),
            "mask": (self.mask.astype(np.uint8), self.net_affine),
            "labels": (None if self.labels is None else self.labels.astype(np.int32), self.net_affine),
            "native_mask": (native_mask, self.native_affine),
        }
        present = {k: v for k, v in arrays.items() if v[0] is not None}
        manifest = self.manifest()
        text = json.dumps(manifest, indent=2) + "\n"
        (folder / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the new one lands
        for stale in set(FILES) - set(present):
            (folder / FILES[stale]).unlink(missing_ok=True)
        targets = [folder / FILES[k] for k in present] + [folder / MANIFEST]
        with atomic_paths(targets) as temps:
            for tmp, (data, affine) in zip(temps, present.values()):
                img = nib.Nifti1Image(data, affine)
                img.header.set_xyzt_units("mm")
                nib.save(img, tmp)
            temps[-1].write_text(text)
        self.folder = folder
        return folder

    @classmethod
    def read_manifest(cls, folder) -> dict | None:
        """The manifest of a complete prepared folder, or None when absent or not ours."""
        path = Path(folder) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            return None
        if not all((Path(folder) / name).is_file() for name in manifest.get("files", {}).values()):
            return None
        return manifest

    @classmethod
    def load(cls, folder) -> "PreparedSubject":
        """Load a prepared-subject folder; :class:`InputError` when it is missing or incomplete."""
        import nibabel as nib

        folder = Path(folder)
        manifest = cls.read_manifest(folder)
        if manifest is None:
            raise InputError(display_path(folder), f"not a complete prepared subject ({MANIFEST} missing or invalid)")
        arrays = {k: np.asanyarray(nib.load(folder / name).dataobj) for k, name in manifest["files"].items()}
        clip = manifest.get("intensity_clip")
        return cls(
            subject_id=manifest["subject_id"],
            image=arrays["image"].astype(np.float32),
            mask=arrays["mask"] > 0,
            labels=arrays["labels"].astype(np.int32) if "labels" in arrays else None,
            net_affine=np.array(manifest["net_affine"], dtype=np.float64),
            native_affine=np.array(manifest["native_affine"], dtype=np.float64),
            native_shape=tuple(manifest["native_shape"]),
            source_files=dict(manifest["source_files"]),
            native_mask=arrays["native_mask"] > 0 if "native_mask" in arrays else None,
            skull_strip=manifest["skull_strip"],
            intensity_clip=None if clip is None else tuple(clip),
            fingerprint=manifest["fingerprint"],
            folder=folder,
        )
