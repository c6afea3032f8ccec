"""The hand-derived softmax derivatives against JAX autodiff and finite differences.

Every cross-check runs inside ``jax.jit``. ``_hand_derived`` evaluates each
function of ``softmax_math`` on logits ``(..., A)`` for every batch shape;
``_autodiff_references`` computes the same quantities per row with
``jax.jacrev``/``jax.jacfwd``/``jax.vjp``/``jax.grad`` (and ``jax.nn``), once
per ``(A, dtype)``, since rows are independent; ``_finite_differences`` does it
with central differences in float64. float64 runs under ``jax.enable_x64`` (a
module fixture), so x64 does not leak into other test files.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from _fast_jit import fast_jit
from jax_reinforce import (
    log_softmax,
    log_softmax_grad,
    softmax,
    softmax_analytic,
    softmax_jacobian,
    softmax_vjp,
)

BATCH_SHAPES = [(), (5,), (3, 4)]
N_ACTIONS = [2, 3, 7]
CROSS_DTYPES = ["float64", "float32"]
ALL_DTYPES = ["float16", "bfloat16", "float32", "float64"]
# Largest absolute error allowed between two routes to the same derivative.
AUTODIFF_ATOL = {"float64": 1e-14, "float32": 2e-6}
FD_STEP = 1e-6
FD_ATOL = 1e-8


_jit = fast_jit


@pytest.fixture(autouse=True, scope="module")
def _x64():
    with jax.enable_x64(True):
        yield


def _scalar_of_probs(probs, weights):
    """A random smooth scalar function of the probabilities (a sum over rows)."""
    return jnp.sum(weights * jnp.sin(3.0 * probs) + 0.5 * weights**2 * probs**2)


@_jit
def _hand_derived(z, actions, cotangent, weights):
    """Every function of ``softmax_math`` at ``z: (..., A)``, batched as given."""
    s = softmax(z)
    return {
        "softmax": s,
        "log_softmax": log_softmax(z),
        "jacobian": softmax_jacobian(s),
        "vjp": softmax_vjp(s, cotangent),
        "log_softmax_grad": log_softmax_grad(z, actions),
        "softmax_analytic": softmax_analytic(z),
        "softmax_analytic grad": jax.grad(
            lambda x: _scalar_of_probs(softmax_analytic(x), weights)
        )(z),
    }


def _per_row_references(z, a, g, w):
    """The same quantities for one row ``z: (A,)``, by JAX autodiff."""
    return {
        "softmax": jax.nn.softmax(z),
        "log_softmax": jax.nn.log_softmax(z),
        "jacobian vs jacrev": jax.jacrev(softmax)(z),
        "jacobian vs jacfwd": jax.jacfwd(softmax)(z),
        "vjp": jax.vjp(softmax, z)[1](g)[0],
        "log_softmax_grad": jax.grad(lambda x: log_softmax(x)[a])(z),
        "softmax_analytic": jax.nn.softmax(z),
        "softmax_analytic grad": jax.grad(lambda x: _scalar_of_probs(jax.nn.softmax(x), w))(z),
    }


# Rows are independent, so the references are computed once per (A, dtype)
# on N_ROWS rows, vmapped; each batch shape takes its leading rows.
_autodiff_references = _jit(jax.vmap(_per_row_references))


def _central_jacobian(f, z, h):
    """``(f(z + h e_j) - f(z - h e_j)) / 2h`` for every logit ``j``: ``(..., A_out, A)``.

    ``e_j`` is added to every row at once; rows are independent, so this is
    each row's own Jacobian.
    """
    basis = jnp.eye(z.shape[-1], dtype=z.dtype) * h
    diff = jax.vmap(lambda e: f(z + e) - f(z - e))(basis)  # (A, ..., A_out)
    return jnp.moveaxis(diff / (2 * h), 0, -1)


@_jit
def _finite_differences(z, actions, weights):
    """Central differences of the same quantities, ``z: (N, A)`` float64."""

    def log_pi(x):
        return jnp.take_along_axis(log_softmax(x), actions[:, None], axis=-1)

    def scalar_per_row(x):
        # _scalar_of_probs summed over the last axis only, one value per row.
        p = softmax_analytic(x)
        return jnp.sum(weights * jnp.sin(3.0 * p) + 0.5 * weights**2 * p**2, -1, keepdims=True)

    return {
        "jacobian": _central_jacobian(softmax, z, FD_STEP),
        "log_softmax_grad": _central_jacobian(log_pi, z, FD_STEP)[:, 0, :],
        "softmax_analytic grad": _central_jacobian(scalar_per_row, z, FD_STEP)[:, 0, :],
    }


N_ROWS = 12


@functools.cache
def _rows(n_actions, dtype):
    """``N_ROWS`` random rows: logits, actions, cotangents and weights."""
    rng = np.random.default_rng([n_actions, N_ROWS])
    z = 3.0 * rng.standard_normal((N_ROWS, n_actions))
    actions = rng.integers(0, n_actions, N_ROWS)
    cotangent = rng.standard_normal((N_ROWS, n_actions))
    weights = rng.standard_normal((N_ROWS, n_actions))
    return (
        jnp.asarray(z, dtype),
        jnp.asarray(actions, jnp.int32),
        jnp.asarray(cotangent, dtype),
        jnp.asarray(weights, dtype),
    )


def _batched(batch_shape, n_actions, dtype):
    """The leading rows of :func:`_rows`, shaped ``(*batch_shape, A)``."""
    n = int(np.prod(batch_shape, dtype=int))
    z, actions, cotangent, weights = _rows(n_actions, dtype)
    return (
        z[:n].reshape(*batch_shape, n_actions),
        actions[:n].reshape(batch_shape),
        cotangent[:n].reshape(*batch_shape, n_actions),
        weights[:n].reshape(*batch_shape, n_actions),
    )


@functools.cache
def _errors(batch_shape, n_actions, dtype):
    """``{name: largest |hand-derived - autodiff|}`` at ``(*batch_shape, A)``."""
    n = int(np.prod(batch_shape, dtype=int))
    hand = _hand_derived(*_batched(batch_shape, n_actions, dtype))
    references = _autodiff_references(*_rows(n_actions, dtype))
    errors = {}
    for name, reference in references.items():
        ours = hand[name.split(" vs ")[0]]
        reference = reference[:n].reshape(ours.shape)
        assert ours.dtype == jnp.dtype(dtype), name
        diff = np.asarray(ours, np.float64) - np.asarray(reference, np.float64)
        errors[name] = float(np.max(np.abs(diff)))
    errors["jacobian shape"] = hand["jacobian"].shape
    return errors


CASES = [
    pytest.param(b, a, d, id=f"batch{b}-A{a}-{d}")
    for d in CROSS_DTYPES
    for b in BATCH_SHAPES
    for a in N_ACTIONS
]


def _assert_small(errors, names, dtype):
    for name in names:
        assert errors[name] <= AUTODIFF_ATOL[dtype], (name, errors[name])


@pytest.mark.parametrize("batch_shape, n_actions, dtype", CASES)
def test_jacobian_matches_jacrev_and_jacfwd(batch_shape, n_actions, dtype):
    errors = _errors(batch_shape, n_actions, dtype)
    assert errors["jacobian shape"] == (*batch_shape, n_actions, n_actions)
    _assert_small(errors, ["jacobian vs jacrev", "jacobian vs jacfwd"], dtype)


@pytest.mark.parametrize("batch_shape, n_actions, dtype", CASES)
def test_vjp_matches_jax_vjp(batch_shape, n_actions, dtype):
    _assert_small(_errors(batch_shape, n_actions, dtype), ["vjp"], dtype)


@pytest.mark.parametrize("batch_shape, n_actions, dtype", CASES)
def test_log_softmax_grad_matches_jax_grad(batch_shape, n_actions, dtype):
    _assert_small(_errors(batch_shape, n_actions, dtype), ["log_softmax_grad"], dtype)


@pytest.mark.parametrize("batch_shape, n_actions, dtype", CASES)
def test_softmax_analytic_matches_jax_nn_softmax(batch_shape, n_actions, dtype):
    names = ["softmax", "log_softmax", "softmax_analytic", "softmax_analytic grad"]
    _assert_small(_errors(batch_shape, n_actions, dtype), names, dtype)


@pytest.mark.parametrize("n_actions", N_ACTIONS)
def test_derivatives_match_central_finite_differences(n_actions):
    z, actions, cotangent, weights = _rows(n_actions, "float64")
    hand = jax.device_get(_hand_derived(z, actions, cotangent, weights))
    fd = jax.device_get(_finite_differences(z, actions, weights))
    for name in fd:
        np.testing.assert_allclose(hand[name], fd[name], rtol=0, atol=FD_ATOL, err_msg=name)
    # The VJP is g^T J with J from finite differences.
    fd_vjp = np.einsum("ni,nij->nj", np.asarray(cotangent), fd["jacobian"])
    np.testing.assert_allclose(hand["vjp"], fd_vjp, rtol=0, atol=FD_ATOL)


def test_check_grads_second_order():
    # One function with both outputs: half the compiles of two checks.
    def softmax_and_log_softmax(z):
        return softmax(z), log_softmax(z)

    z = _batched((4,), 3, "float64")[0]
    check_grads(jax.jit(softmax_and_log_softmax), (z,), order=2, modes=("fwd", "rev"))


def test_check_grads_softmax_analytic_reverse_mode():
    # custom_vjp has no forward mode; reverse-over-reverse differentiates softmax_vjp.
    z = _batched((4,), 3, "float64")[0]
    check_grads(jax.jit(softmax_analytic), (z,), order=2, modes=("rev",))


@_jit
def _along_every_axis(z):
    axes = range(-z.ndim, z.ndim)
    return {
        "softmax": [(softmax(z, axis=k), jax.nn.softmax(z, axis=k)) for k in axes],
        "log_softmax": [(log_softmax(z, axis=k), jax.nn.log_softmax(z, axis=k)) for k in axes],
    }


def test_axis_argument_matches_jax_nn():
    z = _batched((3, 4), 3, "float64")[0]
    for name, pairs in _along_every_axis(z).items():
        for ours, reference in pairs:
            np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_logit_example(dtype):
    # softmax([1, 2]) = [0.26894142, 0.73105858]; s_0 s_1 = 0.19661193.
    z = jnp.array([1.0, 2.0], dtype)
    s = jax.jit(softmax)(z)
    jac = jax.jit(softmax_jacobian)(s)
    expected = np.array([[0.19661193, -0.19661193], [-0.19661193, 0.19661193]])
    np.testing.assert_allclose(s, [0.26894142, 0.73105858], rtol=1e-7)
    np.testing.assert_allclose(jac, expected, rtol=1e-7)


def test_seed_batch_gives_one_jacobian_per_sample():
    # The seed program built one (20, 20) matrix for 10 two-action rows.
    inputs = _batched((10,), 2, "float64")
    jac = _hand_derived(*inputs)["jacobian"]
    assert jac.shape == (10, 2, 2)
    # The (20, 20) Jacobian of the flattened batch is block diagonal with
    # exactly these blocks: row i's softmax ignores row k's logits.
    whole = jax.jit(jax.jacrev(softmax))(inputs[0]).reshape(20, 20)
    block_diagonal = np.einsum("ik,iab->iakb", np.eye(10), jac).reshape(20, 20)
    np.testing.assert_allclose(whole, block_diagonal, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_dtype_preserved(dtype):
    inputs = _batched((3,), 3, dtype)
    for name, out in _hand_derived(*inputs).items():
        assert out.dtype == jnp.dtype(dtype), name
    # Numpy inputs keep their dtype too (float64 needs x64, on in this module).
    for name, out in _hand_derived(*(np.asarray(x) for x in inputs)).items():
        assert out.dtype == jnp.dtype(dtype), name


def test_inputs_not_mutated():
    inputs = [np.array(x) for x in _batched((3,), 3, "float64")]
    copies = [x.copy() for x in inputs]
    _hand_derived(*inputs)
    softmax_vjp(inputs[0], inputs[2])
    log_softmax_grad(inputs[0], inputs[1])
    for before, after in zip(copies, inputs):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_shape_mismatch_names_both_shapes(jit):
    wrap = jax.jit if jit else (lambda f: f)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(3,\)"):
        wrap(softmax_vjp)(jnp.ones((5, 3)) / 3, jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 4\)"):
        wrap(softmax_vjp)(jnp.ones((5, 3)) / 3, jnp.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        wrap(log_softmax_grad)(jnp.zeros((5, 3)), jnp.zeros((4,), jnp.int32))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 3\)"):
        wrap(log_softmax_grad)(jnp.zeros((5, 3)), jnp.zeros((5, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"\(\)"):
        wrap(softmax_jacobian)(jnp.float32(1.0))
