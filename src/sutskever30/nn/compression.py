"""Compressed length as an upper bound on Kolmogorov complexity.

A real compressor C gives K(x) ≤ |C(x)| + O(1): the decompressor plus the compressed string
is a program that prints x. Used by ``complexodynamics``, ``coffee_automaton`` and
``kolmogorov_complexity`` (entropy and "apparent complexity" estimates, normalized
compression distance).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable

import numpy as np

# Each at its strongest setting; lzma without its 60-byte xz container (raw stream, one
# filter) so that short inputs are not dominated by headers.
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "zlib": lambda b: zlib.compress(b, 9),
    "bz2": lambda b: bz2.compress(b, 9),
    "lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS),
}


def compressed_bits(data: bytes, compressor: str = "zlib") -> int:
    """|C(data)| in bits for one of :data:`COMPRESSORS` (an upper bound on K(data) + O(1))."""
    try:
        compress = COMPRESSORS[compressor]
    except KeyError:
        raise ValueError(
            f"unknown compressor {compressor!r}; choose from: {', '.join(COMPRESSORS)}"
        ) from None
    return 8 * len(compress(data))


def pack_bits(bits: np.ndarray) -> bytes:
    """A 0/1 array as bytes, 8 cells a byte (row-major), so that an incompressible array of
    n cells compresses to about n bits, not 8n."""
    flat = np.asarray(bits, dtype=np.uint8).ravel()
    if flat.size and flat.max() > 1:
        raise ValueError("pack_bits expects an array of 0s and 1s")
    return np.packbits(flat).tobytes()


def ncd(x: bytes, y: bytes, compressor: str = "zlib") -> float:
    """Normalized compression distance (Cilibrasi & Vitányi 2005):
    NCD(x, y) = (C(xy) − min(C(x), C(y))) / max(C(x), C(y))."""
    cx, cy = compressed_bits(x, compressor), compressed_bits(y, compressor)
    cxy = compressed_bits(x + y, compressor)
    return (cxy - min(cx, cy)) / max(cx, cy)
