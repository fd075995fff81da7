"""Numeric comparisons used by the gates (numpy only, so the runtime can use them too)."""

from __future__ import annotations

import numpy as np


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a.reshape(a.shape[0], -1) if a.ndim > 1 else a[None], b.reshape(b.shape[0], -1) if b.ndim > 1 else b[None]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest per-sample cosine similarity (1 = identical direction); NaN if any is not finite."""
    x, y = _pair(a, b)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    num = (x * y).sum(1)
    den = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    both_zero = den == 0
    cos = np.where(both_zero, 1.0, num / np.where(both_zero, 1.0, den))
    return float(cos.min())


def relative_l2(test: np.ndarray, ref: np.ndarray) -> float:
    """Largest per-sample ||test - ref|| / ||ref||."""
    x, y = _pair(test, ref)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    return float((np.linalg.norm(x - y, axis=1) / np.maximum(np.linalg.norm(y, axis=1), 1e-12)).max())


def max_abs(test: np.ndarray, ref: np.ndarray) -> float:
    x, y = _pair(test, ref)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    return float(np.abs(x - y).max())


def psnr(test: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """Mean over images of the PSNR in dB (images in [0, peak], NHWC); inf-capped at 100 dB."""
    x, y = _pair(test, ref)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    mse = ((x - y) ** 2).mean(1)
    values = 10 * np.log10(peak**2 / np.maximum(mse, 1e-10))
    return float(np.minimum(values, 100.0).mean())


def ssim(test: np.ndarray, ref: np.ndarray, window: int = 7, peak: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) over images and channels, uniform window as scikit-image's default.

    Written with scipy's uniform filter rather than adding scikit-image as a dependency.
    """
    from scipy.ndimage import uniform_filter

    x, y = np.asarray(test, np.float64), np.asarray(ref, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    size = (1, window, window, 1)  # NHWC: filter over H and W only
    n = window * window
    cov_norm = n / (n - 1)
    mx, my = uniform_filter(x, size), uniform_filter(y, size)
    vx = cov_norm * (uniform_filter(x * x, size) - mx * mx)
    vy = cov_norm * (uniform_filter(y * y, size) - my * my)
    vxy = cov_norm * (uniform_filter(x * y, size) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    pad = window // 2
    return float(s[:, pad:-pad, pad:-pad, :].mean())
