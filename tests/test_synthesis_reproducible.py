"""One seed synthesizes the same subject, bit for bit, whatever the CPU: affine arithmetic without BLAS
(:mod:`smgic_pydra.worldspace.exact_affine`, against numpy's) and the gamma curve with the C library's ``pow``;
the benchmark's subjects are hashed in fresh processes under other OpenBLAS kernels and numpy/ATen code paths."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smgic_pydra.bids.examples import TEMPLATE_DIR
from smgic_pydra.synthesis import gamma_curve
from smgic_pydra.worldspace.exact_affine import apply_affine, invert_affine, matmul

REPO = Path(__file__).resolve().parents[1]
NUMPY_SIMD = "AVX,F16C,FMA3,AVX2,AVX512F,AVX512CD,AVX512_KNL,AVX512_KNM,AVX512_SKX,AVX512_CLX,AVX512_CNL,AVX512_ICL,AVX512_SPR"
"""numpy's dispatched SIMD targets above SSE4.2 (disabled, numpy runs its baseline loops)."""
LABEL_MAP = REPO.parent / "shared" / "data" / "synthseg_label_maps" / "training_seg_13.nii.gz"


def _affine(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-40, 40, 3), degrees=True).as_matrix() @ np.diag(
        rng.uniform(0.7, 1.6, 3))
    out[:3, 3] = rng.uniform(-90, 90, 3)
    return out


def test_exact_affine_arithmetic_matches_numpy_and_inverts():
    a, b = _affine(0), _affine(1)
    points = np.random.default_rng(2).uniform(-100, 100, (5, 7, 3))
    np.testing.assert_allclose(matmul(a, b), a @ b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(matmul(a[:3, :3], points[0].T), a[:3, :3] @ points[0].T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(apply_affine(a, points), points @ a[:3, :3].T + a[:3, 3], rtol=0, atol=1e-12)
    np.testing.assert_allclose(invert_affine(a), np.linalg.inv(a), rtol=0, atol=1e-12)
    np.testing.assert_allclose(apply_affine(invert_affine(a), apply_affine(a, points)), points, atol=1e-10)
    with pytest.raises(ValueError, match="singular"):
        invert_affine(np.diag([1.0, 0.0, 1.0, 1.0]))


def test_gamma_curve_is_the_c_library_pow_rounded_to_float32():
    image = np.random.default_rng(3).random((6, 5, 4)).astype(np.float32)
    image[0] = 0.0
    out = gamma_curve(image, 0.83)
    expected = np.array([np.float32(math.pow(float(v), 0.83)) for v in image.ravel()]).reshape(image.shape)
    assert out.dtype == np.float32 and np.array_equal(out, expected)


_HASH_SUBJECTS = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, "benchmarks")
from pair_subjects import write_colin27_subject, write_subject
with tempfile.TemporaryDirectory() as out:
    out = Path(out)
    hashes = [write_colin27_subject(0, 1, 3, out).content_sha256] if sys.argv[2] == "1" else []
    if sys.argv[1]:
        hashes.append(write_subject(Path(sys.argv[1]), 1, 1, 3, out).content_sha256)
    print(" ".join(hashes))
"""


@pytest.mark.slow
def test_benchmark_subjects_are_the_same_under_other_blas_kernels_and_simd_paths():
    has_map, has_colin = LABEL_MAP.is_file(), (TEMPLATE_DIR / "ch2.nii.gz").is_file()
    if not (has_map or has_colin):
        pytest.skip("neither ../shared's label maps nor Debian's mricron-data (Colin27) is available")
    args = [str(LABEL_MAP) if has_map else "", "1" if has_colin else "0"]

    def hashes(**env) -> str:
        run = subprocess.run([sys.executable, "-c", _HASH_SUBJECTS, *args], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip()

    reference = hashes()
    assert len(reference.split()) == has_map + has_colin
    # OpenBLAS picks its kernels per CPU at run time: an SSE3 one (no FMA) rounds differently from this CPU's
    assert hashes(OPENBLAS_CORETYPE="Prescott") == reference
    assert hashes(NPY_DISABLE_CPU_FEATURES=NUMPY_SIMD, ATEN_CPU_CAPABILITY="default") == reference
