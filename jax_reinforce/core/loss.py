"""The REINFORCE loss and its gradient, by autodiff and by hand.

For a batch of samples ``(s, a, w, m)`` (observation, action, weight such as
the reward-to-go, and a 0/1 mask for steps that exist),

    L(theta) = -sum(m * w * log pi(a|s)) / D  -  c * sum(m * H(pi(.|s))) / D

with ``D = max(sum(m), 1)``, ``H`` the policy entropy and ``c`` the entropy
coefficient. ``-dL/dtheta`` is the policy-gradient estimate
``E[w * grad log pi(a|s)]`` (plus the entropy bonus).

:func:`reinforce_grad_manual` derives ``dL/dtheta`` by hand, layer by layer,
the way the seed program tried to, and equals ``jax.grad(reinforce_loss)``
(``tests/core/test_gradients.py``).
"""

from __future__ import annotations

import jax.numpy as jnp

from jax_reinforce.core.network import check_obs, mlp_backward, mlp_forward, policy_logits
from jax_reinforce.core.softmax_math import log_softmax, log_softmax_grad

__all__ = [
    "reinforce_loss",
    "reinforce_objective",
    "reinforce_grad_manual",
    "reinforce_value_and_grad_manual",
    "policy_entropy",
    "mask_and_denominator",
]


def mask_and_denominator(weights, mask, dtype, denominator=None):
    """``(m, D)``: the 0/1 step mask (all ones for ``None``) in ``dtype``, and ``D = max(sum m, 1)`` unless ``denominator`` is given.

    The loss of a batch is a sum over its real steps divided by ``D``; a batch split into blocks passes the whole
    batch's ``D`` to each block, so the blocks' losses and gradients add up to the whole batch's.
    """
    if mask is None:
        mask = jnp.ones(jnp.shape(weights), dtype)
    mask = jnp.asarray(mask, dtype)
    if denominator is None:
        return mask, jnp.maximum(jnp.sum(mask), 1.0)
    return mask, jnp.asarray(denominator, dtype)


def _check_batch_shapes(obs, actions, weights, mask):
    batch = jnp.shape(obs)[:-1]
    for name, x in (("actions", actions), ("weights", weights), ("mask", mask)):
        if x is not None and jnp.shape(x) != batch:
            raise ValueError(
                f"{name} must have the batch shape of obs (obs is (..., obs_dim)); "
                f"got obs {tuple(jnp.shape(obs))} and {name} {tuple(jnp.shape(x))}"
            )


def policy_entropy(log_probs):
    """``H = -sum_a pi(a) log pi(a)`` from ``(..., A)`` log-probabilities: ``(...)``."""
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def reinforce_objective(params, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None, apply=None):
    """``(loss, entropy_sum)``: :func:`reinforce_loss` and ``sum(m * H)``.

    The entropy sum comes from the same forward pass; use it with
    ``jax.value_and_grad(..., has_aux=True)`` to log the policy entropy for
    free. ``denominator`` replaces ``D = max(sum m, 1)``: a batch split into
    blocks gives the whole batch's loss (and gradient) as the sum of the
    blocks' when every block is divided by the whole batch's ``D``. ``apply(params, obs) -> logits``: another
    network than the MLP (:func:`jax_reinforce.policy_logits`).
    """
    _check_batch_shapes(obs, actions, weights, mask)
    log_p = log_softmax((apply or policy_logits)(params, obs))
    dtype = log_p.dtype
    mask, denom = mask_and_denominator(weights, mask, dtype, denominator)
    # log pi(a|s) picked by a one-hot select: exactly take_along_axis's value, and its gradient an
    # elementwise select rather than a scatter (several times faster on the CPU).
    chosen = jnp.arange(log_p.shape[-1]) == jnp.asarray(actions)[..., None]
    log_pi_a = jnp.sum(jnp.where(chosen, log_p, 0), axis=-1)
    pg = -jnp.sum(mask * jnp.asarray(weights, dtype) * log_pi_a) / denom
    entropy_sum = jnp.sum(mask * policy_entropy(log_p))
    if isinstance(entropy_coef, (int, float)) and entropy_coef == 0:
        return pg, entropy_sum
    return pg - entropy_coef * entropy_sum / denom, entropy_sum


def reinforce_loss(params, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None):
    """The REINFORCE surrogate loss (a scalar).

    Args:
      params: policy parameters (:func:`jax_reinforce.init_policy`).
      obs: ``(..., obs_dim)`` observations.
      actions: ``(...)`` actions taken.
      weights: ``(...)`` per-step weights (reward-to-go, maybe normalised).
      mask: ``(...)`` 1 where the step is real, 0 where it is padding; ``None``
        for all ones.
      entropy_coef: ``c``, weight of the entropy bonus.
      denominator: ``D``; ``None`` for ``max(sum m, 1)``.

    Returns:
      ``-sum(m w log pi(a|s)) / D - c sum(m H) / D``, ``D = max(sum m, 1)``.
    """
    return reinforce_objective(params, obs, actions, weights, mask, entropy_coef, denominator)[0]


def reinforce_grad_manual(params, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None):
    """``dL/dparams`` of :func:`reinforce_loss`, derived by hand.

    The derivation is in :func:`reinforce_value_and_grad_manual`, which also
    returns the loss from the same forward pass.

    Returns:
      A pytree with the structure of ``params``: ``jax.grad(reinforce_loss)``.
    """
    return reinforce_value_and_grad_manual(params, obs, actions, weights, mask, entropy_coef, denominator)[1]


def reinforce_value_and_grad_manual(params, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None):
    """``((loss, entropy_sum), dL/dparams)``: :func:`reinforce_objective` and its gradient, by hand.

    Forward: ``h_0 = obs``, ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``
    for hidden layers, ``z = u_L`` (logits), ``s = softmax(z)``.

    Backward, per sample (``D = max(sum m, 1)``):

    - policy-gradient term: ``dL/dz = -(m w / D) (onehot(a) - s)``
      (:func:`jax_reinforce.log_softmax_grad`; no ``(A, A)`` Jacobian);
    - entropy term: ``d(-c H)/dz = c (m / D) s (log s + H)``, because
      ``dH/dz_j = -s_j (log s_j + H)``;
    - each layer: ``dL/dW_l = h_{l-1}^T dL/du_l`` and ``dL/db_l = sum dL/du_l``
      (summed over the batch), ``dL/dh_{l-1} = dL/du_l W_l^T``;
    - ReLU: ``dL/du_l = dL/dh_l * [u_l > 0]``, a mask applied to the
      gradient (the seed program overwrote the activations with it instead).

    Args: as :func:`reinforce_loss`.

    Returns:
      ``(loss, entropy_sum)`` as :func:`reinforce_objective` gives them, and
      a pytree with the structure of ``params``: ``jax.grad(reinforce_loss)``.
      One forward pass serves both (what ``jax.value_and_grad`` does).
    """
    check_obs(params, obs)
    _check_batch_shapes(obs, actions, weights, mask)
    dtype = params[0]["w"].dtype
    inputs, pre_activations = mlp_forward(params, obs)
    logits = pre_activations[-1]

    mask, denom = mask_and_denominator(weights, mask, dtype, denominator)
    weights = jnp.asarray(weights, dtype)
    step_weight = mask * weights / denom
    log_s = log_softmax(logits)
    entropy = policy_entropy(log_s)
    entropy_sum = jnp.sum(mask * entropy)
    log_pi_a = jnp.take_along_axis(log_s, jnp.asarray(actions)[..., None], axis=-1)[..., 0]
    loss = -jnp.sum(step_weight * log_pi_a)
    grad_logits = -step_weight[..., None] * log_softmax_grad(logits, actions)
    if not (isinstance(entropy_coef, (int, float)) and entropy_coef == 0):
        loss = loss - entropy_coef * entropy_sum / denom
        grad_logits = grad_logits + (entropy_coef * mask / denom)[..., None] * (
            jnp.exp(log_s) * (log_s + entropy[..., None])
        )

    return (loss, entropy_sum), mlp_backward(params, inputs, pre_activations, grad_logits)
