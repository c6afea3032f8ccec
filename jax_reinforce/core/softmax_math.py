"""Softmax and its derivatives, written by hand.

For logits ``z`` of one sample (a vector of ``A`` entries),

    s_i = softmax(z)_i = exp(z_i - m) / sum_k exp(z_k - m),   m = max_k z_k

(subtracting ``m`` changes nothing mathematically and keeps ``exp`` finite).
Its derivative is

    ds_i / dz_j = s_i (delta_ij - s_j)        J = diag(s) - s s^T      (A, A)

Every function here works on any leading batch shape ``(..., A)`` and treats
each sample on its own: a batch of ``B`` samples has ``B`` Jacobians of shape
``(A, A)``, never one ``(B*A, B*A)`` matrix (the bug in the seed program).
The derivative of each function sits beside it, and every one is checked
against ``jax.grad``/``jax.jacrev``/``jax.jacfwd`` and finite differences in
``tests/core/test_softmax.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "log_softmax_grad",
    "softmax_analytic",
]


def _as_float(x):
    """Returns ``x`` as a JAX array, keeping a float dtype and promoting ints."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _check_same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape (..., A); "
            f"got {name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)}"
        )


def softmax(logits, axis: int = -1):
    """Softmax along ``axis``: ``exp(z - max z) / sum(exp(z - max z))``.

    Args:
      logits: ``(..., A)`` floats (any float dtype, preserved).
      axis: the axis of the ``A`` categories.

    Returns:
      ``(..., A)`` probabilities, non-negative and summing to 1 along ``axis``.
      Finite for any finite logits (the max is subtracted first).
    """
    z = _as_float(logits)
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(logits, axis: int = -1):
    """``log softmax(z) = (z - m) - log sum_k exp(z_k - m)``, ``m = max z``.

    Computed without forming ``softmax`` first, so it stays finite (and exact)
    where ``softmax`` underflows to 0.

    Args:
      logits: ``(..., A)`` floats.
      axis: the axis of the ``A`` categories.

    Returns:
      ``(..., A)`` log-probabilities (all <= 0).
    """
    z = _as_float(logits)
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def softmax_jacobian(probs):
    """The Jacobian of softmax at each sample: ``J = diag(s) - s s^T``.

    ``J[..., i, j] = ds_i/dz_j = s_i (delta_ij - s_j)``. Each ``J`` is
    symmetric, positive semi-definite, and its rows sum to 0 (shifting every
    logit by the same amount leaves softmax unchanged).

    Args:
      probs: ``(..., A)`` softmax outputs ``s``.

    Returns:
      ``(..., A, A)``: one ``(A, A)`` Jacobian per sample. For a batch of 10
      two-action samples that is ``(10, 2, 2)``, not ``(20, 20)``.
    """
    s = _as_float(probs)
    if s.ndim == 0:
        raise ValueError(f"probs must have shape (..., A); got a scalar {tuple(s.shape)}")
    eye = jnp.eye(s.shape[-1], dtype=s.dtype)
    return s[..., :, None] * eye - s[..., :, None] * s[..., None, :]


def softmax_vjp(probs, cotangent):
    """Vector-Jacobian product of softmax: ``g^T J = s * (g - <g, s>)``.

    Since ``J`` is symmetric, ``(g^T J)_j = sum_i g_i s_i (delta_ij - s_j)
    = s_j (g_j - sum_i g_i s_i)``: O(A) work per sample, the ``(A, A)``
    Jacobian is never formed. This is what backpropagation through softmax
    needs: ``dL/dz = softmax_vjp(s, dL/ds)``.

    Args:
      probs: ``(..., A)`` softmax outputs ``s``.
      cotangent: ``(..., A)`` upstream gradient ``g = dL/ds``.

    Returns:
      ``(..., A)``: ``dL/dz``.

    Raises:
      ValueError: if the two shapes differ.
    """
    s = _as_float(probs)
    g = jnp.asarray(cotangent, dtype=s.dtype)
    _check_same_shape("probs", s, "cotangent", g)
    return s * (g - jnp.sum(g * s, axis=-1, keepdims=True))


def log_softmax_grad(logits, actions):
    """Gradient of ``log softmax(z)[a]`` with respect to ``z``: ``onehot(a) - s``.

    From ``log s_a = z_a - log sum_k exp(z_k)``:
    ``d log s_a / dz_j = delta_aj - s_j``. This is the policy-gradient
    shortcut: the softmax Jacobian never appears.

    Args:
      logits: ``(..., A)`` floats.
      actions: ``(...)`` integer actions in ``[0, A)``.

    Returns:
      ``(..., A)``, the same dtype as ``logits``.

    Raises:
      ValueError: if ``actions.shape != logits.shape[:-1]``.
    """
    z = _as_float(logits)
    a = jnp.asarray(actions)
    if z.ndim == 0 or a.shape != z.shape[:-1]:
        raise ValueError(
            "actions must have the shape of logits without its last axis; "
            f"got logits {tuple(z.shape)} and actions {tuple(a.shape)}"
        )
    return jax.nn.one_hot(a, z.shape[-1], dtype=z.dtype) - softmax(z)


@jax.custom_vjp
def softmax_analytic(logits):
    """Softmax over the last axis whose backward pass is :func:`softmax_vjp`.

    ``jax.grad`` through this function runs the hand-derived rule
    ``dL/dz = s * (dL/ds - <dL/ds, s>)`` instead of differentiating the
    ``exp``/``sum``/``divide`` graph.

    Args:
      logits: ``(..., A)`` floats.

    Returns:
      ``(..., A)`` probabilities.
    """
    return softmax(logits)


def _softmax_analytic_fwd(logits):
    probs = softmax(logits)
    return probs, probs


def _softmax_analytic_bwd(probs, cotangent):
    return (softmax_vjp(probs, cotangent),)


softmax_analytic.defvjp(_softmax_analytic_fwd, _softmax_analytic_bwd)
