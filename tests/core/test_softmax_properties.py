"""Properties of softmax and its derivatives, for logits drawn by hypothesis.

Hypothesis runs derandomized (the same examples every run) with a modest
example count. The functions under test are jitted once, here at module level,
and shapes are drawn from a small set, so each ``(shape, dtype)`` compiles
once rather than once per example. float64 runs under ``jax.enable_x64`` (a
module fixture), so x64 does not leak into other test files.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from _fast_jit import fast_jit
from jax_reinforce import (
    log_softmax,
    log_softmax_grad,
    softmax,
    softmax_analytic,
    softmax_jacobian,
    softmax_vjp,
)

BATCH = 4
N_ACTIONS = [2, 3, 7]

PROPERTY_SETTINGS = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,  # the first example of each shape compiles
    suppress_health_check=[HealthCheck.too_slow],
)


_jit = fast_jit


@pytest.fixture(autouse=True, scope="module")
def _x64():
    with jax.enable_x64(True):
        yield


def _logits(bound, n_actions=st.sampled_from(N_ACTIONS), special=()):
    """``(BATCH, A)`` float64 logits in ``[-bound, bound]``, often hitting ``special``."""
    values = st.floats(-bound, bound, allow_nan=False, allow_infinity=False)
    if special:
        values = st.one_of(st.sampled_from(special), values)
    return n_actions.flatmap(lambda a: arrays(np.float64, (BATCH, a), elements=values))


@_jit
def _float64_quantities(z, shift):
    s = softmax(z)
    jac = softmax_jacobian(s)
    return {
        "softmax": s,
        "log_softmax": log_softmax(z),
        "logsumexp": jax.scipy.special.logsumexp(z, axis=-1, keepdims=True),
        "jacobian": jac,
        "eigenvalues": jnp.linalg.eigvalsh(jac),
        "shifted softmax": softmax(z + shift),
        "shifted log_softmax": log_softmax(z + shift),
    }


MODERATE = 50.0


@PROPERTY_SETTINGS
@given(z=_logits(MODERATE, special=(0.0, MODERATE, -MODERATE)))
def test_jacobian_rows_sum_to_zero_symmetric_psd(z):
    out = jax.device_get(_float64_quantities(z, 0.0))
    jac = out["jacobian"]
    # Shifting every logit by the same amount leaves softmax unchanged: J 1 = 0.
    assert np.max(np.abs(jac.sum(axis=-1))) <= 1e-15
    np.testing.assert_array_equal(jac, np.swapaxes(jac, -1, -2))
    # J = diag(s) - s s^T: x^T J x = Var_s(x) >= 0.
    assert out["eigenvalues"].min() >= -1e-15
    assert out["eigenvalues"].max() <= 1.0


@PROPERTY_SETTINGS
@given(z=_logits(1e3, special=(0.0, 1e3, -1e3)))
def test_softmax_is_a_distribution_and_log_softmax_a_log(z):
    out = jax.device_get(_float64_quantities(z, 0.0))
    s, log_s = out["softmax"], out["log_softmax"]
    assert np.all((0.0 <= s) & (s <= 1.0))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
    assert np.all(log_s <= 0.0)
    # log softmax(z) = z - logsumexp(z), to a few ulps of the largest logit.
    np.testing.assert_allclose(log_s, z - out["logsumexp"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_s), s, rtol=0, atol=1e-14)


@PROPERTY_SETTINGS
@given(z=_logits(MODERATE), shift=st.floats(-1e3, 1e3))
def test_softmax_invariant_to_adding_a_constant(z, shift):
    out = jax.device_get(_float64_quantities(z, shift))
    # z + shift is rounded at the ulp of |shift| (~1e-13), hence the tolerance.
    np.testing.assert_allclose(out["shifted softmax"], out["softmax"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["shifted log_softmax"], out["log_softmax"], rtol=0, atol=1e-12)


@_jit
def _every_function(z, actions, cotangent):
    s = softmax(z)
    return {
        "softmax": s,
        "log_softmax": log_softmax(z),
        "softmax_jacobian": softmax_jacobian(s),
        "softmax_vjp": softmax_vjp(s, cotangent),
        "log_softmax_grad": log_softmax_grad(z, actions),
        "softmax_analytic": softmax_analytic(z),
        "softmax_analytic grad": jax.grad(lambda x: jnp.sum(softmax_analytic(x) * cotangent))(z),
    }


def _reference(z):
    """Softmax, log-softmax and the Jacobian in float64 NumPy: ``z`` as the dtype holds it."""
    shifted = z - z.max(axis=-1, keepdims=True)
    log_s = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    s = np.exp(log_s)
    jac = s[..., :, None] * np.eye(z.shape[-1]) - s[..., :, None] * s[..., None, :]
    return s, log_s, jac


# (dtype, the largest |logit|, tolerance on probabilities and relative
# tolerance on log-probabilities): the range is where max - min stays finite.
EXTREMES = [
    ("float16", 3e4, 2e-3),
    ("bfloat16", 1e4, 2e-2),
    ("float32", 1e4, 1e-6),
    ("float64", 1e4, 1e-14),
]


@pytest.mark.parametrize("dtype, bound, tol", EXTREMES, ids=[e[0] for e in EXTREMES])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_extreme_logits_stay_finite_and_correct(dtype, bound, tol, data):
    n_actions = st.sampled_from([2, 5])
    special = (bound, -bound, 0.0, bound / 2, -bound / 2)
    z = data.draw(_logits(bound, n_actions, special)).astype(dtype)
    a = z.shape[-1]
    actions = data.draw(arrays(np.int32, (BATCH,), elements=st.integers(0, a - 1)))
    cotangent = data.draw(arrays(np.float64, z.shape, elements=st.floats(-1, 1))).astype(dtype)
    out = jax.device_get(_every_function(z, actions, cotangent))
    for name, value in out.items():
        assert value.dtype == np.dtype(dtype), name
        assert np.all(np.isfinite(value.astype(np.float64))), name
    s, log_s, jac = _reference(z.astype(np.float64))
    np.testing.assert_allclose(out["softmax"].astype(np.float64), s, rtol=0, atol=tol)
    np.testing.assert_allclose(out["softmax_analytic"].astype(np.float64), s, rtol=0, atol=tol)
    np.testing.assert_allclose(
        out["log_softmax"].astype(np.float64), log_s, rtol=tol, atol=tol
    )
    np.testing.assert_allclose(out["softmax_jacobian"].astype(np.float64), jac, rtol=0, atol=tol)
    onehot = np.eye(a)[actions]
    np.testing.assert_allclose(
        out["log_softmax_grad"].astype(np.float64), onehot - s, rtol=0, atol=tol
    )
    g = cotangent.astype(np.float64)
    expected_vjp = s * (g - np.sum(g * s, axis=-1, keepdims=True))
    for name in ("softmax_vjp", "softmax_analytic grad"):
        np.testing.assert_allclose(
            out[name].astype(np.float64), expected_vjp, rtol=0, atol=4 * tol, err_msg=name
        )
