"""The value baseline's hand-derived gradient against autodiff and finite differences.

Every cross-check runs inside ``jax.jit``. Three routes to ``dL/dtheta`` of
``L = sum(m (V - G)^2) / (2 D)`` are compared with
:func:`value_loss_and_grad_manual`: ``jax.value_and_grad(value_loss)``, the
per-sample Jacobian ``jax.jacrev(value_predictions)`` contracted with
``dL/dV = m (V - G) / D`` (the chain rule written out), and central
differences in float64. The variants (a random mask, all ones, all zeros) are
stacked and vmapped through one compiled function per shape and dtype.
Errors are measured relative to each leaf's own scale. float64 runs under
``jax.enable_x64`` (a module fixture), so x64 does not leak into other test
files.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from _fast_jit import fast_jit
from jax_reinforce import (
    init_policy,
    init_value,
    value_loss,
    value_loss_and_grad_manual,
    value_predictions,
)

OBS_DIM = 4
# (hidden widths, batch shape): a linear V, one to three hidden layers, every batch rank 0..3.
NETWORKS = [((), (6,)), ((8,), (7,)), ((5, 4, 3), (3, 5)), ((6, 4), (2, 3, 4)), ((8,), ())]
# Largest error between two routes to the same derivative, relative to the
# leaf's scale (at least 1): a few roundings.
RTOL = {"float64": 1e-12, "float32": 1e-5}
FD_STEP = 2.0**-20
FD_RTOL = 1e-6
# Returns of CartPole's order: tens, against values of order 1.
RETURN_SCALE = 20.0

_jit = fast_jit


@pytest.fixture(autouse=True, scope="module")
def _x64():
    with jax.enable_x64(True):
        yield


def _problem(hidden, batch_shape, dtype="float64", seed=0):
    """Random He-scaled params with random biases, observations, returns and a mask (NumPy draws).

    Params and observations are dyadic (``x +- FD_STEP`` is exact in float64).
    """
    rng = np.random.default_rng([seed, len(hidden), *hidden, len(batch_shape), *batch_shape])
    sizes = (OBS_DIM, *hidden, 1)

    def dyadic(x):
        return jnp.asarray(np.round(x * 2**10) / 2**10, dtype)

    params = [
        {"w": dyadic(rng.standard_normal((m, n)) * np.sqrt(2.0 / m)), "b": dyadic(0.3 * rng.standard_normal(n))}
        for m, n in zip(sizes[:-1], sizes[1:])
    ]
    obs = dyadic(rng.standard_normal((*batch_shape, OBS_DIM)))
    returns = jnp.asarray(RETURN_SCALE * (1.0 + rng.standard_normal(batch_shape)), dtype)
    mask = jnp.asarray(rng.random(batch_shape) < 0.7, dtype)
    return params, obs, returns, mask


def _relative_error(ours, reference):
    """``max |ours - reference| / max(max |reference|, 1)`` in float64, and the absolute error."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape
    absolute = float(np.max(np.abs(ours - reference), initial=0.0))
    return absolute / max(float(np.max(np.abs(reference), initial=0.0)), 1.0), absolute


def _leaf_errors(ours, reference):
    """The largest relative and absolute error over matching leaves, each relative to its own leaf."""
    assert jax.tree.structure(ours) == jax.tree.structure(reference)
    pairs = [_relative_error(o, r) for o, r in zip(jax.tree.leaves(ours), jax.tree.leaves(reference))]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


# --- layout ------------------------------------------------------------------------


def test_init_value_is_init_policy_with_one_he_scaled_output():
    key = jax.random.key(0)

    @_jit
    def both(key):
        return (init_value(key, OBS_DIM, (5, 3), dtype=jnp.float64),
                init_policy(key, OBS_DIM, (5, 3), n_actions=1, dtype=jnp.float64, output_scale=1.0))

    params, reference = both(key)
    assert [(layer["w"].shape, layer["b"].shape) for layer in params] == [
        ((4, 5), (5,)), ((5, 3), (3,)), ((3, 1), (1,))]
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(reference)):
        np.testing.assert_array_equal(ours, theirs)
    default = jax.eval_shape(lambda key: init_value(key, OBS_DIM), key)
    assert [layer["w"].shape for layer in default] == [(4, 64), (64, 64), (64, 1)]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(default))
    assert jax.eval_shape(value_predictions, default, jnp.zeros((3, 2, OBS_DIM))).shape == (3, 2)
    with pytest.raises(ValueError, match="obs_dim"):
        init_value(key, 0)


def test_problem_has_the_layout_of_init_value():
    params = _problem((5, 4, 3), (7,))[0]
    reference = jax.eval_shape(lambda key: init_value(key, OBS_DIM, (5, 4, 3), jnp.float64), jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(reference)):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype


@pytest.mark.parametrize("hidden, batch_shape", NETWORKS, ids=str)
def test_loss_is_the_formula(hidden, batch_shape):
    params, obs, returns, mask = _problem(hidden, batch_shape)
    h = np.asarray(obs)
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["w"]) + np.asarray(layer["b"])
        h = np.maximum(h, 0) if i < len(params) - 1 else h
    values = h[..., 0]
    m, g = np.asarray(mask), np.asarray(returns)
    expected = np.sum(m * (values - g) ** 2) / (2 * max(m.sum(), 1.0))
    np.testing.assert_allclose(_jit(value_predictions)(params, obs), values, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(_jit(value_loss)(params, obs, returns, mask), expected, rtol=1e-13)
    np.testing.assert_allclose(_jit(value_loss_and_grad_manual)(params, obs, returns, mask)[0], expected, rtol=1e-13)


# --- the gradient against autodiff --------------------------------------------------


def _masks(mask):
    """The random mask, all ones, all zeros, stacked for vmap."""
    mask = np.asarray(mask)
    return jnp.asarray(np.stack([mask, np.ones_like(mask), np.zeros_like(mask)]))


@_jit
def _manual_and_references(params, obs, returns, masks):
    """Per mask: the manual ``(loss, grads)``, ``jax.value_and_grad``'s, and the Jacobian route's grads."""

    def routes(mask):
        manual = value_loss_and_grad_manual(params, obs, returns, mask)
        autodiff = jax.value_and_grad(value_loss)(params, obs, returns, mask)
        # dL/dtheta = sum_b dL/dV_b dV_b/dtheta, with dV/dtheta from jacrev: (..., *leaf) per leaf.
        jacobian = jax.jacrev(value_predictions)(params, obs)
        grad_values = mask * (value_predictions(params, obs) - returns) / jnp.maximum(jnp.sum(mask), 1.0)
        batch_ndim = grad_values.ndim
        chain = jax.tree.map(lambda j: jnp.tensordot(grad_values, j, axes=batch_ndim), jacobian)
        return manual, autodiff, chain

    return jax.vmap(routes)(masks)


@functools.cache
def autodiff_errors(hidden, batch_shape, dtype):
    """``{route: (relative, absolute error)}`` over the mask variants; asserts finiteness and dtypes."""
    params, obs, returns, mask = _problem(hidden, batch_shape, dtype)
    masks = _masks(mask)
    manual, autodiff, chain = jax.device_get(_manual_and_references(params, obs, returns, masks))
    assert jax.tree.structure(manual[1]) == jax.tree.structure(params)
    for leaf in jax.tree.leaves((manual, autodiff, chain)):
        assert np.all(np.isfinite(leaf)) and leaf.dtype == jnp.dtype(dtype)
    errors = {}
    for v in range(len(masks)):
        pick = functools.partial(jax.tree.map, lambda x: x[v])
        m, a, c = pick(manual), pick(autodiff), pick(chain)
        found = {"loss vs value_and_grad": _relative_error(m[0], a[0]),
                 "grads vs value_and_grad": _leaf_errors(m[1], a[1]),
                 "grads vs jacrev chain": _leaf_errors(m[1], c)}
        for name, e in found.items():
            errors[name] = tuple(max(x) for x in zip(errors.get(name, (0.0, 0.0)), e))
        if not np.asarray(masks[v]).any():
            # Every step masked out: nothing counts, the loss and gradient are exactly 0.
            assert m[0] == 0 and all(np.all(leaf == 0) for leaf in jax.tree.leaves(m[1]))
    return errors


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden, batch_shape", NETWORKS, ids=str)
def test_manual_gradient_matches_autodiff(hidden, batch_shape, dtype):
    for name, (relative, _) in autodiff_errors(hidden, batch_shape, dtype).items():
        assert relative <= RTOL[dtype], (name, relative)


@_jit
def _finite_differences(params, obs, returns, mask):
    """The manual gradient and central differences of the loss along every parameter."""
    flat, unravel = ravel_pytree(params)
    basis = jnp.eye(flat.size, dtype=flat.dtype) * FD_STEP

    def loss(x):
        return value_loss(unravel(x), obs, returns, mask)

    fd = jax.vmap(lambda e: loss(flat + e) - loss(flat - e))(basis) / (2 * FD_STEP)
    return ravel_pytree(value_loss_and_grad_manual(params, obs, returns, mask)[1])[0], fd


@functools.cache
def finite_difference_errors(hidden, batch_shape):
    """``(relative, absolute error)`` of the manual gradient against central differences, float64."""
    params, obs, returns, mask = _problem(hidden, batch_shape, seed=1)
    manual, fd = _finite_differences(params, obs, returns, mask)
    return _relative_error(manual, fd)


@pytest.mark.parametrize("hidden, batch_shape", NETWORKS[1:4], ids=str)
def test_manual_gradient_matches_finite_differences(hidden, batch_shape):
    relative, _ = finite_difference_errors(hidden, batch_shape)
    assert relative <= FD_RTOL, relative


# --- masks, denominators, batch shapes, targets -------------------------------------


@_jit
def _both(params, obs, returns, mask=None, denominator=None):
    """``(manual (loss, grads), autodiff (loss, grads))``."""
    return (value_loss_and_grad_manual(params, obs, returns, mask, denominator),
            jax.value_and_grad(value_loss)(params, obs, returns, mask, denominator))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_masked_rows_contribute_nothing(dtype):
    params, obs, returns, mask = _problem((5, 4), (3, 5), dtype, seed=2)
    rng = np.random.default_rng(3)
    off = np.asarray(mask) == 0
    assert off.any() and not off.all()
    other_obs = jnp.where(off[..., None], jnp.asarray(100 * rng.standard_normal(obs.shape), dtype), obs)
    other_returns = jnp.where(off, jnp.asarray(1e4 * rng.standard_normal(returns.shape), dtype), returns)
    before = jax.device_get(_both(params, obs, returns, mask))
    after = jax.device_get(_both(params, other_obs, other_returns, mask))
    for ours, theirs in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(ours, theirs)
    # The same as the real rows alone, unmasked.
    keep = ~off
    alone = jax.device_get(_both(params, obs[keep], returns[keep]))
    for ours, theirs in zip(jax.tree.leaves(before), jax.tree.leaves(alone)):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_denominator_replaces_the_mask_count():
    params, obs, returns, mask = _problem((5, 4), (3, 5), seed=4)
    count = float(np.sum(mask))
    (loss, grads), (loss_a, grads_a) = jax.device_get(_both(params, obs, returns, mask))
    (loss_d, grads_d), (loss_da, grads_da) = jax.device_get(_both(params, obs, returns, mask, 2.5))
    np.testing.assert_allclose(loss_d, loss * count / 2.5, rtol=1e-13)
    np.testing.assert_allclose(loss_da, loss_d, rtol=1e-13)
    for g, gd, gda in zip(*map(jax.tree.leaves, (grads, grads_d, grads_da))):
        np.testing.assert_allclose(gd, g * count / 2.5, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gda, gd, rtol=1e-12, atol=1e-12)
    # Blocks divided by the whole batch's D sum to the whole batch's loss and gradient.
    whole = float(max(count, 1.0))
    blocks = [jax.device_get(_both(params, obs[i], returns[i], mask[i], whole)) for i in range(3)]
    for route in range(2):
        total = jax.tree.map(lambda *xs: sum(xs), *[b[route] for b in blocks])
        assert _leaf_errors(total, (loss, grads))[0] <= RTOL["float64"]
    # An all-zero mask with D = max(0, 1): a loss and gradient of exactly 0, no NaN.
    (loss_0, grads_0), _ = jax.device_get(_both(params, obs, returns, jnp.zeros_like(mask)))
    assert loss_0 == 0 and all(np.all(g == 0) for g in jax.tree.leaves(grads_0))


def test_defaults_are_an_all_ones_mask():
    params, obs, returns, _ = _problem((8,), (7,), seed=5)
    ones = jnp.ones(returns.shape, returns.dtype)
    default = jax.device_get(_both(params, obs, returns))
    explicit = jax.device_get(_both(params, obs, returns, ones))
    for ours, theirs in zip(jax.tree.leaves(default), jax.tree.leaves(explicit)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("batch_shape", [(24,), (6, 4), (2, 3, 4)], ids=str)
def test_any_leading_batch_shape_is_the_flat_batch(batch_shape):
    params, obs, returns, mask = _problem((5, 4), (24,), seed=6)
    shaped = (obs.reshape(*batch_shape, OBS_DIM), returns.reshape(batch_shape), mask.reshape(batch_shape))
    assert _jit(value_predictions)(params, shaped[0]).shape == batch_shape
    flat = jax.device_get(_both(params, obs, returns, mask))
    out = jax.device_get(_both(params, *shaped))
    assert _leaf_errors(out, flat)[0] <= RTOL["float64"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zero_loss_and_gradient_at_the_targets(dtype):
    params, obs, _, mask = _problem((5, 4), (3, 5), dtype, seed=7)

    @_jit
    def at_targets(params, obs, mask):
        returns = value_predictions(params, obs)
        return (value_loss_and_grad_manual(params, obs, returns, mask),
                jax.value_and_grad(lambda p: value_loss(p, obs, value_predictions(p, obs), mask))(params))

    for loss, grads in jax.device_get(at_targets(params, obs, mask)):
        assert loss == 0 and all(np.all(g == 0) for g in jax.tree.leaves(grads))


def test_returns_are_targets_without_gradient():
    params, obs, returns, mask = _problem((5, 4), (7,), seed=8)
    assert np.all(jax.device_get(_jit(jax.grad(value_loss, argnums=2))(params, obs, returns, mask)) == 0)

    # A target built from V itself (here V at shifted states plus 1) gives the semi-gradient: the manual one.
    @_jit
    def bootstrapped(params):
        def loss(p):
            return value_loss(p, obs, 1.0 + 0.9 * value_predictions(p, obs[::-1]), mask)

        targets = 1.0 + 0.9 * value_predictions(params, obs[::-1])
        return value_loss_and_grad_manual(params, obs, targets, mask), jax.value_and_grad(loss)(params)

    manual, autodiff = jax.device_get(bootstrapped(params))
    assert _leaf_errors(manual, autodiff)[0] <= RTOL["float64"]


# --- shapes --------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_bad_shapes_raise_one_line_errors(jit):
    wrap = jax.jit if jit else (lambda f: f)
    params, obs, returns, mask = _problem((8,), (7,), "float32")
    two_outputs = [params[0], {"w": jnp.zeros((8, 2)), "b": jnp.zeros(2)}]
    cases = [
        ((params, obs[:, :3], returns), r"obs must have shape \(\.\.\., obs_dim\).*obs \(7, 3\).*w \(4, 8\)"),
        ((params, obs[0, 0], jnp.float32(0)), r"obs must have shape \(\.\.\., obs_dim\).*obs \(\)"),
        ((params, obs, returns[:6]), r"returns must have the batch shape of obs.*obs \(7, 4\) and returns \(6,\)"),
        ((params, obs, returns[:, None]), r"returns must have the batch shape.*returns \(7, 1\)"),
        ((params, obs, returns, mask[:6]), r"mask must have the batch shape of obs.*mask \(6,\)"),
        ((params, obs, returns, mask, jnp.ones(2)), r"denominator must be a scalar.*\(2,\)"),
        ((two_outputs, obs, returns), r"exactly 1 output.*w \(8, 2\)"),
        (({"w": params[0]["w"]}, obs, returns), r"params must be a non-empty list of layers"),
    ]
    for f in (value_loss, value_loss_and_grad_manual, jax.grad(value_loss)):
        for args, message in cases:
            with pytest.raises(ValueError, match=message) as raised:
                wrap(f)(*args)
            assert "\n" not in str(raised.value)
    for args, message in (cases[0], cases[1], cases[6]):
        with pytest.raises(ValueError, match=message):
            wrap(value_predictions)(*args[:2])
