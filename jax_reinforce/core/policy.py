"""The softmax policy ``pi(a | s) = softmax(z(s))`` over the network's logits (:mod:`jax_reinforce.core.network`).

Sampling, the greedy action and ``log pi(a | s)``. Every function is pure and takes its PRNG key explicitly,
so all of them can be jitted and vmapped (over environments, over seeds, over hyper-parameters).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_reinforce.core.network import policy_logits
from jax_reinforce.core.softmax_math import log_softmax, softmax

__all__ = [
    "sample_actions",
    "actions_from_uniform",
    "greedy_actions",
    "log_prob",
]


def _check_actions(obs, actions):
    """Raises ``ValueError`` unless ``actions`` are integers with the batch shape of ``obs``."""
    if jnp.shape(actions) != jnp.shape(obs)[:-1] or not jnp.issubdtype(jnp.result_type(actions), jnp.integer):
        raise ValueError(
            "actions must be integers with the batch shape of obs (obs is (..., obs_dim)); "
            f"got obs {tuple(jnp.shape(obs))} and actions {tuple(jnp.shape(actions))} "
            f"{jnp.result_type(actions)}"
        )


def sample_actions(params, obs, key):
    """Samples ``a ~ pi(. | obs) = softmax(policy_logits(params, obs))``.

    Args:
      params: policy parameters.
      obs: ``(..., obs_dim)``.
      key: a ``jax.random`` key.

    Returns:
      ``(...)`` int32 actions.
    """
    return jax.random.categorical(key, policy_logits(params, obs)).astype(jnp.int32)


def actions_from_uniform(logits, uniform):
    """Inverse-CDF sampling: the action ``a`` with ``F(a-1) <= u < F(a)``.

    ``F = cumsum(softmax(logits))`` (``F(-1) = 0``). With ``u ~ U[0, 1)`` this
    draws ``a ~ softmax(logits)``; it lets a rollout draw all its random
    numbers in one call instead of splitting a key at every step. For two
    actions it reduces to ``a = [u >= s_0]``. ``u`` is compared with ``F``
    itself (not in log space), so the boundaries are exact: ``u = F(a)`` gives
    ``a + 1``, the float just below gives ``a``, and an action whose computed
    probability is 0 is never drawn (up to ``F(A-2)`` rounding short of 1).

    Args:
      logits: ``(..., A)``.
      uniform: ``(...)`` numbers in ``[0, 1)``.

    Returns:
      ``(...)`` int32 actions in ``[0, A)``.

    Raises:
      ValueError: if ``uniform.shape != logits.shape[:-1]``, or there is no action (``A = 0``).
    """
    logits = jnp.asarray(logits)
    uniform = jnp.asarray(uniform)
    if logits.ndim == 0 or logits.shape[-1] == 0 or uniform.shape != logits.shape[:-1]:
        raise ValueError(
            "logits must be (..., A) with A >= 1 and uniform (...), the shape of logits without its last axis; "
            f"got logits {tuple(logits.shape)} and uniform {tuple(uniform.shape)}"
        )
    # Only F(0) .. F(A-2) are compared, so the result is < A even where
    # rounding leaves F(A-1) short of 1.
    cdf = jnp.cumsum(softmax(logits), axis=-1)
    n_below = jnp.sum(cdf[..., :-1] <= uniform[..., None], axis=-1)
    return n_below.astype(jnp.int32)


def greedy_actions(params, obs):
    """The most probable action ``argmax_a pi(a | obs)``: ``(...)`` int32."""
    return jnp.argmax(policy_logits(params, obs), axis=-1).astype(jnp.int32)


def log_prob(params, obs, actions):
    """``log pi(a | s)`` for each sample.

    Args:
      params: policy parameters.
      obs: ``(..., obs_dim)``.
      actions: ``(...)`` integer actions in ``[0, A)`` (one outside gives NaN:
        values are not known when the shapes are checked).

    Returns:
      ``(...)`` log-probabilities.

    Raises:
      ValueError: if ``actions.shape != obs.shape[:-1]`` or ``actions`` are not integers.
    """
    _check_actions(obs, actions)
    log_p = log_softmax(policy_logits(params, obs))
    return jnp.take_along_axis(log_p, jnp.asarray(actions)[..., None], axis=-1)[..., 0]
