"""JAX's threefry PRNG keys made on the host in NumPy: bit for bit ``jax.random``'s, with nothing compiled.

Each of ``jax.random.PRNGKey``, ``fold_in`` and ``split`` called eagerly is a
small jitted program: a process traces, lowers and compiles (or loads from
the cache) each one before its first use, about 0.03-0.09 s apiece on the
development machine, for a handful of integers. The trainer's agent keys
(``fold_in(PRNGKey(seed), i)``) are therefore computed here, with the same
Threefry-2x32 hash (Salmon et al., 2011, 20 rounds) that
``jax.random`` uses, in uint32 NumPy arithmetic (which wraps modulo
``2**32`` like XLA's). ``tests/test_host_keys.py`` checks every function
against ``jax.random`` bit for bit.

Keys are raw ``uint32[..., 2]`` arrays, the form ``jax.random.PRNGKey``
returns.
"""

from __future__ import annotations

import numpy as np

__all__ = ["threefry_2x32", "prng_key", "fold_in", "fold_in_range"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry_2x32(key, x0, x1) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block cipher of ``(x0, x1)`` under ``key``, as ``jax.random``'s ``threefry2x32_p``.

    Args:
      key: ``uint32[2]``, the key words ``(k0, k1)``.
      x0, x1: uint32 arrays of one shape, the two counter words.

    Returns:
      The two enciphered words, uint32 arrays of that shape.
    """
    k0, k1 = (np.uint32(k) for k in np.asarray(key, np.uint32))
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x = [np.asarray(x0, np.uint32) + ks[0], np.asarray(x1, np.uint32) + ks[1]]
    with np.errstate(over="ignore"):
        for block in range(5):
            for r in _ROTATIONS[block % 2]:
                x[0] = x[0] + x[1]
                x[1] = _rotate_left(x[1], r) ^ x[0]
            x[0] = x[0] + ks[(block + 1) % 3]
            x[1] = x[1] + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x[0], x[1]


def prng_key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` for ``0 <= seed < 2**32``: ``uint32[2]``, ``(0, seed)``."""
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed}")
    return np.array([0, seed], np.uint32)


def fold_in(key, data) -> np.ndarray:
    """``jax.random.fold_in(key, data)`` for uint32 ``data`` (an int or an array): ``uint32[..., 2]``."""
    data = np.asarray(data, np.uint32)
    words = threefry_2x32(key, np.zeros_like(data), data)
    return np.stack(words, axis=-1)


def fold_in_range(seed: int, count: int) -> np.ndarray:
    """``(count, 2)`` keys ``fold_in(PRNGKey(seed), i)`` for ``i = 0 .. count-1``.

    With JAX's default ``jax_threefry_partitionable=True`` these are also
    ``jax.random.split(PRNGKey(seed), count)``.
    """
    return fold_in(prng_key(seed), np.arange(count, dtype=np.uint32))
