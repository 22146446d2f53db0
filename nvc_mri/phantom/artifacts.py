"""Acquisition effects applied to the noise-free phantom image (all deterministic given ``rng``)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def _smooth_field(shape, rng: np.random.Generator, n_waves: int = 4) -> np.ndarray:
    """Sum of low-frequency cosines over the volume, roughly in [-1, 1]."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(n_waves):
        k = rng.normal(0, 1.2, 3).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(axes[0][:, None, None] * k[0] + axes[1][None, :, None] * k[1] + axes[2][None, None, :] * k[2] + phase)
    return field / n_waves


def psf_blur(image: np.ndarray, sigma_vox: float) -> np.ndarray:
    """Point-spread blur in voxels."""
    return gaussian_filter(image, sigma_vox) if sigma_vox > 0 else image


def bias_field(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative receive-coil inhomogeneity, exp(strength * field)."""
    return image * np.exp(strength * _smooth_field(image.shape, rng))


def banding(image: np.ndarray, rng: np.random.Generator, depth: float = 0.6) -> np.ndarray:
    """Dark bands of balanced SSFP where the off-resonance phase reaches pi."""
    phase = np.pi * (1.0 + 1.5 * _smooth_field(image.shape, rng, 3))
    wrapped = np.mod(phase, 2 * np.pi) - np.pi
    return image * (1.0 - depth * np.exp(-0.5 * (wrapped / 0.12) ** 2)).astype(np.float32)


def motion_ghosts(image: np.ndarray, rng: np.random.Generator, amplitude: float, axis: int = 1) -> np.ndarray:
    """Ghost copies along the phase-encoding axis (ringing from motion)."""
    shift = int(image.shape[axis] // rng.integers(3, 7))
    return image + amplitude * (np.roll(image, shift, axis=axis) + np.roll(image, -shift, axis=axis)) / 2


def rician_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of standard deviation ``sigma``."""
    real = image + rng.normal(0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0, sigma, image.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)


def gamma(image: np.ndarray, g: float) -> np.ndarray:
    """Intensity gamma of the domain-randomised mode (keeps the range)."""
    top = float(image.max()) or 1.0
    return (np.clip(image / top, 0, None) ** g) * top
