"""host_keys computes jax.random's threefry keys in NumPy, bit for bit."""

import jax
import jax.extend.random
import numpy as np
import pytest

from jax_reinforce import host_keys
from jax_reinforce.training import agent_keys

SEEDS = [0, 1, 7, 12345, 2**31 - 1, 2**31, 2**32 - 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_prng_key_and_fold_in_match_jax(seed):
    key = host_keys.prng_key(seed)
    np.testing.assert_array_equal(key, np.asarray(jax.random.PRNGKey(seed)))
    for data in (0, 1, 5, 2**32 - 1):
        np.testing.assert_array_equal(host_keys.fold_in(key, data), np.asarray(jax.random.fold_in(key, data)))


def test_threefry_matches_jax_on_random_words():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    x0, x1 = rng.integers(0, 2**32, size=(2, 1000), dtype=np.uint32)
    ours = host_keys.threefry_2x32(key, x0, x1)
    bind = jax.extend.random.threefry2x32_p.bind
    theirs = jax.jit(lambda k, a, b: bind(k[0], k[1], a, b))(key, x0, x1)
    np.testing.assert_array_equal(ours[0], np.asarray(theirs[0]))
    np.testing.assert_array_equal(ours[1], np.asarray(theirs[1]))


@pytest.mark.parametrize("seed", [0, 3, 2**32 - 1])
def test_fold_in_range_is_split_and_agent_keys(seed):
    keys = host_keys.fold_in_range(seed, 37)
    root = jax.random.PRNGKey(seed)
    expected = jax.vmap(lambda i: jax.random.fold_in(root, i))(np.arange(37, dtype=np.uint32))
    np.testing.assert_array_equal(keys, np.asarray(expected))
    np.testing.assert_array_equal(keys, np.asarray(jax.random.split(root, 37)))
    np.testing.assert_array_equal(np.asarray(agent_keys(seed, 37)), keys)


def test_prng_key_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\); got -1"):
        host_keys.prng_key(-1)
