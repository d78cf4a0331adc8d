"""nn/compression.py: compressed lengths as upper bounds on Kolmogorov complexity, NCD."""

import os

import numpy as np
import pytest

from sutskever30.nn.compression import COMPRESSORS, compressed_bits, ncd, pack_bits


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_regular_data_compresses_random_data_does_not(name):
    regular = b"01" * 5000
    random = np.random.default_rng(0).bytes(10_000)
    assert compressed_bits(regular, name) < 0.05 * 8 * len(regular)
    assert compressed_bits(random, name) > 0.99 * 8 * len(random)


def test_pack_bits_is_one_bit_a_cell():
    cells = np.random.default_rng(1).integers(0, 2, size=(64, 64))
    packed = pack_bits(cells)
    assert len(packed) == 64 * 64 // 8
    assert np.array_equal(np.unpackbits(np.frombuffer(packed, np.uint8)), cells.ravel())
    with pytest.raises(ValueError, match="0s and 1s"):
        pack_bits(np.array([0, 2]))


def test_ncd_near_zero_for_copies_near_one_for_unrelated():
    x, y = os.urandom(4000), os.urandom(4000)
    assert ncd(x, x, "lzma") < 0.1
    assert ncd(x, y, "lzma") > 0.95


def test_unknown_compressor_is_a_clear_error():
    with pytest.raises(ValueError, match="choose from: zlib, bz2, lzma"):
        compressed_bits(b"x", "gzip9")
