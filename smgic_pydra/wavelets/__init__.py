"""3-D Haar DWT (fixed stride-2 convolution), its inverse and the per-level network inputs."""

from .haar import BAND_KEYS, haar_dwt3d, haar_idwt3d, haar_kernels
from .pyramid import N_DECOMPOSITIONS, WaveletPyramid, wavelet_pyramid

__all__ = [
    "BAND_KEYS",
    "N_DECOMPOSITIONS",
    "WaveletPyramid",
    "haar_dwt3d",
    "haar_idwt3d",
    "haar_kernels",
    "wavelet_pyramid",
]
