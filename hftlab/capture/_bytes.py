"""Byte-order helpers shared by the numba kernels of hftlab.capture.

Every read goes through one of these tiny functions so the kernels read top
to bottom like the wire diagrams they follow. They are inlined by numba; the
values are returned as int64 so that arithmetic on them never wraps.
"""
from __future__ import annotations

import numpy as np

from hftlab.capture._jit import jit


@jit(inline=True)
def be16(b, o):
    return (np.int64(b[o]) << 8) | np.int64(b[o + 1])


@jit(inline=True)
def be32(b, o):
    return ((np.int64(b[o]) << 24) | (np.int64(b[o + 1]) << 16)
            | (np.int64(b[o + 2]) << 8) | np.int64(b[o + 3]))


@jit(inline=True)
def le16(b, o):
    return np.int64(b[o]) | (np.int64(b[o + 1]) << 8)


@jit(inline=True)
def le32(b, o):
    return (np.int64(b[o]) | (np.int64(b[o + 1]) << 8)
            | (np.int64(b[o + 2]) << 16) | (np.int64(b[o + 3]) << 24))


@jit(inline=True)
def rd16(b, o, big):
    return be16(b, o) if big else le16(b, o)


@jit(inline=True)
def rd32(b, o, big):
    return be32(b, o) if big else le32(b, o)


@jit(inline=True)
def be64u(b, o):
    """Big-endian u64 as uint64 (identities, hashes)."""
    return (np.uint64(be32(b, o)) << np.uint64(32)) | np.uint64(be32(b, o + 4))


@jit(inline=True)
def be64s(b, o):
    """Big-endian two's-complement i64 (PTP correctionField)."""
    return np.int64((be32(b, o) << 32) | be32(b, o + 4))


@jit(inline=True)
def rd64u(b, o, big):
    """u64 stored as one 64-bit word in the section's byte order."""
    if big:
        return be64u(b, o)
    return (np.uint64(le32(b, o + 4)) << np.uint64(32)) | np.uint64(le32(b, o))
