"""Template matching by FFT correlation: where a patch lies in a picture (the position checker, the
contamination search's pixel confirmation)."""

import numpy as np


def window_errors(full: np.ndarray, patch: np.ndarray, normalised: bool) -> np.ndarray:
    """For every placement of `patch` inside `full`: the RMS difference (or 1 - the zero-mean normalised
    correlation, for colour-altered crops), by FFT correlation and summed-area tables."""
    (height, width), (h, w) = full.shape, patch.shape
    shape = (fast_length(height + h), fast_length(width + w))  # zeros beyond height + h change nothing
    if normalised:
        patch = patch - patch.mean()
    correlation = np.fft.irfft2(np.fft.rfft2(full, shape) * np.conj(np.fft.rfft2(patch, shape)), shape)
    correlation = correlation[: height - h + 1, : width - w + 1]

    def window_sums(values):
        table = np.pad(np.cumsum(np.cumsum(values, 0), 1), ((1, 0), (1, 0)))
        return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]

    squares, n = window_sums(full**2), h * w
    if normalised:
        sums = window_sums(full)
        spread = np.sqrt(np.maximum(squares - sums**2 / n, 1e-9) * max((patch**2).sum(), 1e-9))
        return 1 - correlation / spread
    return np.sqrt(np.maximum(squares - 2 * correlation + (patch**2).sum(), 0) / n)


def fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT lengths with only small factors run several times faster
    (the position checker's FFTs took 7 of its 12 ms a row at prime-rich lengths).

    >>> fast_length(97), fast_length(128), fast_length(251)
    (100, 128, 256)
    """
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power3 = power5
        while power3 < best:
            size = power3
            while size < n:
                size *= 2
            best = min(best, size)
            power3 *= 3
        power5 *= 5
    return best
