"""The Gaussian policy's hand-derived derivatives against autodiff and finite differences.

Every cross-check runs inside ``jax.jit``. The four ``log_std`` levels of
:data:`LOG_STDS` (-20 to 2, the documented range) are stacked and vmapped
through one compiled function per batch shape and dtype. Actions are drawn as
the policy draws them, ``a = mu + sigma * eps``, so ``z = (a - mu) / sigma``
is of order 1 at every level while ``d log pi / d mu = z / sigma`` spans
``1e-1`` to ``1e9``; errors are measured relative to each quantity's own
scale. float64 runs under ``jax.enable_x64`` (a module fixture), so x64 does
not leak into other test files.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.flatten_util import ravel_pytree
from jax.scipy.stats import norm

from _fast_jit import fast_jit
from jax_reinforce import (
    gaussian_actions_from_noise,
    gaussian_entropy,
    gaussian_entropy_grad,
    gaussian_log_prob,
    gaussian_log_prob_grad,
    gaussian_policy_mean,
    gaussian_reinforce_objective,
    gaussian_reinforce_value_and_grad_manual,
    init_policy,
    sample_gaussian_actions,
)

LOG_STDS = [-20.0, -5.0, 0.0, 2.0]
BATCH_SHAPES = [(), (7,), (3, 5)]
N_ACTIONS = 3
# Offsets of the action dimensions' log_std from the level, clipped to [-20, 2]: dyadic, so
# log_std +- FD_STEP is exact.
LOG_STD_OFFSETS = np.array([0.0, 0.25, -0.5])
# Largest error between two routes to the same derivative, relative to the
# quantity's scale: a few roundings.
RTOL = {"float64": 1e-13, "float32": 1e-5}
FD_STEP = 2.0**-20
FD_RTOL = 1e-8
OBS_DIM = 4

_jit = fast_jit


@pytest.fixture(autouse=True, scope="module")
def _x64():
    with jax.enable_x64(True):
        yield


def _log_std(level, shape=(N_ACTIONS,)):
    """``log_std`` at one level, its action dimensions offset, broadcast to ``shape``."""
    return np.broadcast_to(np.clip(level + LOG_STD_OFFSETS, -20.0, 2.0), shape)


@functools.cache
def _rows(batch_shape, dtype):
    """Per level: means, shared log_std, actions, per-sample log_std and its actions, ``(L, ..., A)``.

    The means are dyadic (``mean +- FD_STEP`` is exact) and scaled by a power
    of two near ``sigma`` (at most 1), so ``a - mu`` is representable in
    float32 too, even at ``sigma = exp(-20)``. The actions ``mu + sigma eps``
    are formed in float64, then cast.
    """
    rng = np.random.default_rng([len(batch_shape), *batch_shape])
    shape = (*batch_shape, N_ACTIONS)
    levels = np.reshape(LOG_STDS, (-1, *([1] * len(shape))))
    scale = 2.0 ** np.minimum(0, np.round(levels / np.log(2)))
    mean = np.round(rng.standard_normal(shape) * 2**10) / 2**10 * scale
    noise = rng.standard_normal(shape)
    shared = np.stack([_log_std(level) for level in LOG_STDS])                        # (L, A)
    quarters = np.round(rng.standard_normal(shape) * 4) / 4
    per_sample = np.stack([_log_std(level, shape) + quarters for level in LOG_STDS]).clip(-20.0, 2.0)
    actions = mean + np.exp(shared.reshape(len(LOG_STDS), *([1] * len(batch_shape)), N_ACTIONS)) * noise
    actions_per_sample = mean + np.exp(per_sample) * noise
    return tuple(jnp.asarray(x, dtype) for x in (mean, shared, actions, per_sample, actions_per_sample))


def _diagonal_blocks(jacobian, batch_shape):
    """``(..., ..., A)`` Jacobian of ``(...)`` outputs by ``(..., A)`` inputs: diagonal, off-diagonal."""
    n = math.prod(batch_shape)
    blocks = jacobian.reshape(n, n, N_ACTIONS)
    diagonal = blocks[jnp.arange(n), jnp.arange(n)].reshape(*batch_shape, N_ACTIONS)
    off_diagonal = jnp.where(jnp.eye(n, dtype=bool)[..., None], 0, blocks)
    return diagonal, off_diagonal


@functools.partial(_jit, static_argnums=0)
def _hand_and_references(batch_shape, mean, log_std, actions, log_std_per_sample, actions_per_sample):
    """Hand-derived values and their autodiff references at one ``log_std`` level."""
    batch_axes = tuple(range(len(batch_shape)))
    d_mean, d_log_std = gaussian_log_prob_grad(mean, log_std, actions)
    d_mean_ps, d_log_std_ps = gaussian_log_prob_grad(mean, log_std_per_sample, actions_per_sample)

    def total(m, s, a):
        return jnp.sum(gaussian_log_prob(m, s, a))

    jac_mean = jax.jacrev(gaussian_log_prob, argnums=0)(mean, log_std, actions)
    diagonal, off_diagonal = _diagonal_blocks(jac_mean, batch_shape)
    return {
        "log_prob vs norm.logpdf": (
            gaussian_log_prob(mean, log_std, actions),
            jnp.sum(norm.logpdf(actions, mean, jnp.exp(log_std)), axis=-1),
        ),
        "log_prob per-sample log_std vs norm.logpdf": (
            gaussian_log_prob(mean, log_std_per_sample, actions_per_sample),
            jnp.sum(norm.logpdf(actions_per_sample, mean, jnp.exp(log_std_per_sample)), axis=-1),
        ),
        "d_mean vs grad": (d_mean, jax.grad(total, argnums=0)(mean, log_std, actions)),
        "d_mean vs jacrev": (d_mean, diagonal),
        "jacrev off-diagonal blocks": (jnp.zeros_like(off_diagonal), off_diagonal),
        "d_log_std vs jacrev (shared log_std)": (
            d_log_std, jax.jacrev(gaussian_log_prob, argnums=1)(mean, log_std, actions),
        ),
        "d_log_std summed vs grad (shared log_std)": (
            jnp.sum(d_log_std, axis=batch_axes), jax.grad(total, argnums=1)(mean, log_std, actions),
        ),
        "d_mean vs grad (per-sample log_std)": (
            d_mean_ps, jax.grad(total, argnums=0)(mean, log_std_per_sample, actions_per_sample),
        ),
        "d_log_std vs grad (per-sample log_std)": (
            d_log_std_ps, jax.grad(total, argnums=1)(mean, log_std_per_sample, actions_per_sample),
        ),
        "entropy grad vs grad": (
            gaussian_entropy_grad(log_std_per_sample),
            jax.grad(lambda s: jnp.sum(gaussian_entropy(s)))(log_std_per_sample),
        ),
    }


def _relative_error(ours, reference):
    """``max |ours - reference| / max(max |reference|, 1)`` in float64, and the absolute error."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape
    absolute = float(np.max(np.abs(ours - reference), initial=0.0))
    return absolute / max(float(np.max(np.abs(reference), initial=0.0)), 1.0), absolute


@functools.cache
def autodiff_errors(batch_shape, dtype):
    """``{(check, log_std level): (relative, absolute error)}``; also asserts every value finite."""
    mean, shared, actions, per_sample, actions_ps = _rows(batch_shape, dtype)
    errors = {}
    for i, level in enumerate(LOG_STDS):
        out = jax.device_get(_hand_and_references(batch_shape, mean[i], shared[i], actions[i],
                                                  per_sample[i], actions_ps[i]))
        for name, (ours, reference) in out.items():
            assert np.all(np.isfinite(ours)) and np.all(np.isfinite(reference)), (name, level)
            assert ours.dtype == jnp.dtype(dtype), name
            errors[name, level] = _relative_error(ours, reference)
    return errors


CASES = [pytest.param(b, d, id=f"batch{b}-{d}") for d in ("float64", "float32") for b in BATCH_SHAPES]


@pytest.mark.parametrize("batch_shape, dtype", CASES)
def test_score_function_matches_autodiff(batch_shape, dtype):
    for key, (relative, _) in autodiff_errors(batch_shape, dtype).items():
        assert relative <= RTOL[dtype], (key, relative)


@_jit
def _finite_differences(mean, log_std, actions):
    """Central differences of each sample's log-density along each mean and log_std entry.

    A step along entry ``j`` is taken in every row at once: rows are independent.
    """
    basis = jnp.eye(N_ACTIONS, dtype=mean.dtype) * FD_STEP

    def along(f, x):
        return jnp.moveaxis(jax.vmap(lambda e: f(x + e) - f(x - e))(basis), 0, -1) / (2 * FD_STEP)

    return (along(lambda m: gaussian_log_prob(m, log_std, actions), mean),
            along(lambda s: gaussian_log_prob(mean, s, actions), log_std))


@functools.cache
def finite_difference_errors(batch_shape):
    """``{(derivative, level): (relative, absolute error)}`` against central differences, float64."""
    mean, _, _, per_sample, actions = _rows(batch_shape, "float64")
    errors = {}
    for i, level in enumerate(LOG_STDS):
        fd_mean, fd_log_std = _finite_differences(mean[i], per_sample[i], actions[i])
        d_mean, d_log_std = _jit(gaussian_log_prob_grad)(mean[i], per_sample[i], actions[i])
        errors["d_mean", level] = _relative_error(d_mean, fd_mean)
        errors["d_log_std", level] = _relative_error(d_log_std, fd_log_std)
    return errors


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_score_function_matches_finite_differences(batch_shape):
    for key, (relative, _) in finite_difference_errors(batch_shape).items():
        assert relative <= FD_RTOL, (key, relative)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_entropy_is_the_closed_form(dtype):
    log_std = np.stack([_log_std(level) for level in LOG_STDS]).astype(dtype)       # (L, A)
    entropy = jax.device_get(_jit(gaussian_entropy)(log_std))
    # scipy's entropy of each one-dimensional normal, summed over the action dimensions.
    expected = scipy.stats.norm(scale=np.exp(log_std.astype(np.float64))).entropy().sum(axis=-1)
    assert entropy.shape == (len(LOG_STDS),) and entropy.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(entropy, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


# --- the whole policy gradient -------------------------------------------------


POLICIES = [((8,), 1), ((16, 8), 2), ((5, 4, 3), 3)]
POLICY_BATCHES = [(7,), (3, 5)]
ENTROPY_COEFS = [0.0, 0.1]


def _policy_problem(hidden, n_actions, batch_shape, dtype="float64", seed=0):
    """Random He-scaled params with random biases, observations, noise, weights and a mask (NumPy)."""
    rng = np.random.default_rng([seed, *hidden, n_actions, *batch_shape])
    sizes = (OBS_DIM, *hidden, n_actions)
    params = [
        {"w": jnp.asarray(rng.standard_normal((m, n)) * np.sqrt(2.0 / m), dtype),
         "b": jnp.asarray(0.3 * rng.standard_normal(n), dtype)}
        for m, n in zip(sizes[:-1], sizes[1:])
    ]
    obs = jnp.asarray(rng.standard_normal((*batch_shape, OBS_DIM)), dtype)
    noise = jnp.asarray(rng.standard_normal((*batch_shape, n_actions)), dtype)
    weights = jnp.asarray(rng.standard_normal(batch_shape), dtype)
    mask = jnp.asarray(rng.random(batch_shape) < 0.7, dtype)
    return params, obs, noise, weights, mask


def test_policy_problem_has_the_layout_of_init_policy():
    params = _policy_problem((5, 4, 3), 3, (7,))[0]
    reference = jax.eval_shape(
        lambda key: init_policy(key, OBS_DIM, (5, 4, 3), 3, dtype=jnp.float64), jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(reference)):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype


def _variants(mask, n_actions):
    """Every (log_std level, mask: random / ones / zeros, entropy coefficient), stacked for vmap."""
    mask = np.asarray(mask)
    rows = [(_log_std(level)[:n_actions], m, c)
            for level in LOG_STDS for m in (mask, np.ones_like(mask), np.zeros_like(mask))
            for c in ENTROPY_COEFS]
    return tuple(np.stack([r[k] for r in rows]).astype(mask.dtype) for k in range(3))


@_jit
def _manual_and_autodiff(params, obs, noise, weights, log_stds, masks, coefs):
    """``((loss, entropy_sum), (param_grads, log_std_grad))`` both ways, vmapped over the variants.

    The actions are drawn from the policy, ``mu(s) + sigma eps``, outside the
    differentiated function.
    """

    def both(log_std, mask, coef):
        actions = jax.lax.stop_gradient(gaussian_actions_from_noise(gaussian_policy_mean(params, obs), log_std, noise))
        args = (params, log_std, obs, actions, weights, mask, coef)
        manual = gaussian_reinforce_value_and_grad_manual(*args)
        autodiff = jax.value_and_grad(gaussian_reinforce_objective, argnums=(0, 1), has_aux=True)(*args)
        return manual, autodiff

    return jax.vmap(both)(log_stds, masks, coefs)


def _leaf_errors(manual, autodiff):
    """The largest relative and absolute error over the leaves, each relative to its own leaf's scale."""
    pairs = [_relative_error(m, a) for m, a in zip(jax.tree.leaves(manual), jax.tree.leaves(autodiff))]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


@functools.cache
def policy_gradient_errors(hidden, n_actions, batch_shape, dtype):
    """``{log_std level: (relative, absolute error)}`` of the manual value and gradient vs autodiff."""
    params, obs, noise, weights, mask = _policy_problem(hidden, n_actions, batch_shape, dtype)
    log_stds, masks, coefs = _variants(mask, n_actions)
    manual, autodiff = jax.device_get(_manual_and_autodiff(params, obs, noise, weights, log_stds, masks, coefs))
    assert jax.tree.structure(manual) == jax.tree.structure(autodiff)
    assert jax.tree.structure(manual[1][0]) == jax.tree.structure(params)
    per_variant = len(masks) // len(LOG_STDS)
    errors = {}
    for v in range(len(masks)):
        m = jax.tree.map(lambda x: x[v], manual)
        a = jax.tree.map(lambda x: x[v], autodiff)
        for leaf in jax.tree.leaves((m, a)):
            assert np.all(np.isfinite(leaf)) and leaf.dtype == jnp.dtype(dtype)
        level = LOG_STDS[v // per_variant]
        errors[level] = tuple(max(e) for e in zip(errors.get(level, (0.0, 0.0)), _leaf_errors(m, a)))
        if not masks[v].any():
            # Every step masked out: nothing counts, the gradient is exactly 0.
            assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(m[1]))
    return errors


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_shape", POLICY_BATCHES, ids=str)
@pytest.mark.parametrize("hidden, n_actions", POLICIES, ids=str)
def test_manual_policy_gradient_matches_autodiff(hidden, n_actions, batch_shape, dtype):
    for level, (relative, _) in policy_gradient_errors(hidden, n_actions, batch_shape, dtype).items():
        assert relative <= RTOL[dtype], (level, relative)


@_jit
def _defaults_and_python_coefs(params, log_std, obs, actions, weights, mask):
    """Both ways with ``mask=None``, Python-float coefficients, a given ``D``, a per-sample log_std."""
    plain = (params, log_std, obs, actions, weights)
    variants = {"defaults": plain}
    for coef in ENTROPY_COEFS:
        variants[f"mask=None, entropy_coef={coef}"] = (*plain, None, coef)
    variants["denominator=2.5"] = (*plain, mask, 0.1, 2.5)
    per_sample = jnp.broadcast_to(log_std, actions.shape) + 0.1 * jnp.tanh(actions)
    variants["per-sample log_std"] = (params, per_sample, obs, actions, weights, mask, 0.1)
    grad = jax.value_and_grad(gaussian_reinforce_objective, argnums=(0, 1), has_aux=True)
    return {name: (gaussian_reinforce_value_and_grad_manual(*args), grad(*args))
            for name, args in variants.items()}


@pytest.mark.parametrize("hidden, n_actions, batch_shape", [((8,), 1, (7,)), ((5, 4, 3), 3, (3, 5))], ids=str)
def test_manual_policy_gradient_with_default_arguments(hidden, n_actions, batch_shape):
    params, obs, noise, weights, mask = _policy_problem(hidden, n_actions, batch_shape, seed=1)
    log_std = _log_std(-0.5)[:n_actions]
    actions = gaussian_actions_from_noise(gaussian_policy_mean(params, obs), log_std, noise)
    out = jax.device_get(_defaults_and_python_coefs(params, log_std, obs, actions, weights, mask))
    for name, (manual, autodiff) in out.items():
        assert manual[1][1].shape == autodiff[1][1].shape, name
        assert _leaf_errors(manual, autodiff)[0] <= RTOL["float64"], name


@_jit
def _policy_finite_differences(params, log_std, obs, actions, weights, mask):
    """The manual gradient and central differences along every parameter and log_std entry."""
    flat, unravel = ravel_pytree((params, log_std))

    def loss(x):
        return gaussian_reinforce_objective(*unravel(x), obs, actions, weights, mask, 0.1)[0]

    basis = jnp.eye(flat.size, dtype=flat.dtype) * FD_STEP
    fd = jax.vmap(lambda e: loss(flat + e) - loss(flat - e))(basis) / (2 * FD_STEP)
    manual = gaussian_reinforce_value_and_grad_manual(params, log_std, obs, actions, weights, mask, 0.1)[1]
    return ravel_pytree(manual)[0], fd


@functools.cache
def policy_finite_difference_errors(hidden):
    """``{log_std level: (relative, absolute error)}`` of the manual gradient vs central differences."""
    params, obs, noise, weights, mask = _policy_problem(hidden, 2, (3, 5), seed=2)
    # Dyadic params and observations: x +- FD_STEP is exact.
    params, obs = jax.tree.map(lambda x: jnp.round(x * 2**10) / 2**10, (params, obs))
    errors = {}
    for level in LOG_STDS:
        log_std = _log_std(level)[:2]
        actions = gaussian_actions_from_noise(gaussian_policy_mean(params, obs), log_std, noise)
        manual, fd = _policy_finite_differences(params, log_std, obs, actions, weights, mask)
        errors[level] = _relative_error(manual, fd)
    return errors


@pytest.mark.parametrize("hidden", [(8,), (5, 4, 3)], ids=str)
def test_manual_policy_gradient_matches_finite_differences(hidden):
    for level, (relative, _) in policy_finite_difference_errors(hidden).items():
        assert relative <= FD_RTOL, (level, relative)


# --- sampling, dtypes, shapes ---------------------------------------------------


N_DRAWS = 100_000


@_jit
def _draws(key, mean, log_std):
    return jax.vmap(lambda k: sample_gaussian_actions(k, mean, log_std))(jax.random.split(key, N_DRAWS))


@pytest.mark.parametrize("level", [-20.0, 2.0])
def test_samples_are_normal_with_the_given_mean_and_std(level):
    mean = jnp.asarray([[0.5, -1.0, 3.0], [0.0, 2.0, -0.25]])
    log_std = _log_std(level)
    actions = jax.device_get(_draws(jax.random.key(0), mean, log_std))
    assert actions.shape == (N_DRAWS, 2, N_ACTIONS) and actions.dtype == np.float64
    z = (actions - np.asarray(mean)) * np.exp(-log_std)
    # Standard errors: 1 / sqrt(N) ~ 0.0032 for the mean, ~0.0022 for the std.
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.015)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.012)


def test_sampling_is_the_noise_transformed():
    key = jax.random.key(3)
    mean = jnp.zeros((3, 5, N_ACTIONS), jnp.float32)
    log_std = jnp.asarray(_log_std(-1.0), jnp.float32)
    actions = jax.jit(sample_gaussian_actions)(key, mean, log_std)
    again = jax.jit(sample_gaussian_actions)(key, mean, log_std)
    noise = jax.random.normal(key, mean.shape, jnp.float32)
    assert actions.shape == mean.shape and actions.dtype == jnp.float32
    np.testing.assert_array_equal(actions, again)
    # Equal up to an ulp: XLA may fuse the draw and the transform differently.
    np.testing.assert_allclose(actions, gaussian_actions_from_noise(mean, log_std, noise), rtol=3e-7, atol=0)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_shape_mismatch_names_both_shapes(jit):
    wrap = jax.jit if jit else (lambda f: f)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 2\)"):
        wrap(gaussian_log_prob)(jnp.zeros((5, 3)), jnp.zeros(3), jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"log_std \(2,\).*\(5, 3\)"):
        wrap(gaussian_log_prob_grad)(jnp.zeros((5, 3)), jnp.zeros(2), jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"log_std \(4, 3\).*\(5, 3\)"):
        wrap(gaussian_log_prob)(jnp.zeros((5, 3)), jnp.zeros((4, 3)), jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"log_std \(\)"):
        wrap(gaussian_log_prob)(jnp.zeros((5, 3)), jnp.float32(0), jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\(\)"):
        wrap(gaussian_entropy)(jnp.float32(0))


def test_policy_shape_mismatch_names_both_shapes():
    params, obs, noise, weights, _ = _policy_problem((8,), 2, (7,))
    log_std = jnp.zeros(2)
    for f in (gaussian_reinforce_objective, gaussian_reinforce_value_and_grad_manual):
        with pytest.raises(ValueError, match=r"obs \(7, 4\) and actions \(7,\)"):
            f(params, log_std, obs, jnp.zeros(7), weights)
        with pytest.raises(ValueError, match=r"obs \(7, 4\) and weights \(6,\)"):
            f(params, log_std, obs, noise, weights[:6])
        with pytest.raises(ValueError, match=r"log_std \(3,\)"):
            f(params, jnp.zeros(3), obs, noise, weights)
