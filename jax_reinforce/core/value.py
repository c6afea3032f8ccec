"""A learned state-value baseline ``V(s)`` and its squared-error gradient, by autodiff and by hand.

REINFORCE with baseline (Sutton & Barto, section 13.4) weights each step's
score function by ``G_t - V(s_t)`` instead of ``G_t``: any function of the
state alone leaves the policy gradient unbiased, and one close to
``E[G_t | s_t]`` lowers its variance. ``V`` is the policy's MLP
(:func:`jax_reinforce.init_policy`'s layer list) with one output unit, fitted
to the observed returns by least squares. For a batch of ``(s, G, m)``
(observation, return, 0/1 mask for steps that exist),

    L(theta) = sum(m * (V(s) - G)^2) / (2 D),      D = max(sum(m), 1),

the conventions of :func:`jax_reinforce.reinforce_loss` (mask, ``D``, a given
``denominator``). The ``1/2`` cancels the square's 2:

    dL/dV(s)  = m (V(s) - G) / D
    dL/dtheta = sum(m (V(s) - G) dV(s)/dtheta) / D.

The returns are targets: no gradient flows into them (``stop_gradient``), so
a target built from ``V`` itself (a bootstrapped return) gives the
semi-gradient. :func:`value_loss_and_grad_manual` carries ``dL/dV`` through
the network with :func:`jax_reinforce.core.loss.mlp_backward`; ``tests/core/test_value.py``
checks it against ``jax.grad``, ``jax.jacrev`` and finite differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jax_reinforce.core.loss import mask_and_denominator
from jax_reinforce.core.network import check_obs, check_params, init_policy, mlp_backward, mlp_forward

__all__ = [
    "init_value",
    "value_predictions",
    "value_loss",
    "value_loss_and_grad_manual",
]


def init_value(key, obs_dim: int, hidden: Sequence[int] = (64, 64), dtype=jnp.float32):
    """Random value-network parameters: :func:`jax_reinforce.init_policy`'s layout with one output.

    Every layer, the output layer included, is He-initialised
    (``w ~ N(0, 2 / fan_in)``, ``b = 0``; ``output_scale=1.0``). The policy
    shrinks its output layer so that its first actions are near uniform; a
    value network has no such reason, and a shrunk output layer would also
    shrink ``dL/dh = dL/dV W_L^T``, the gradient reaching the hidden layers
    in the first updates. ``V`` starts at the order of the observations,
    small beside typical returns, so the first baselines are near 0 (plain
    REINFORCE) until the network has fitted some returns.

    Args:
      key: a ``jax.random`` key.
      obs_dim: observation size.
      hidden: widths of the hidden layers; ``()`` gives a linear ``V``.
      dtype: float dtype of every leaf.

    Returns:
      ``[{"w": (fan_in, fan_out), "b": (fan_out,)}, ...]`` from input to
      output, the last ``w`` ``(h_last, 1)`` and ``b`` ``(1,)``.

    Raises:
      ValueError: as :func:`jax_reinforce.init_policy` (sizes, dtype).
    """
    return init_policy(key, obs_dim, hidden, n_actions=1, dtype=dtype, output_scale=1.0)


def _check_value_params(params):
    """Raises ``ValueError`` unless ``params`` is a layer list whose last layer has one output."""
    check_params(params)
    last = tuple(jnp.shape(params[-1]["w"]))
    if last[1] != 1:
        raise ValueError(
            f"the value network's last layer must have exactly 1 output (init_value's); got last-layer w {last}"
        )


def _check_targets(obs, returns, mask, denominator):
    """Raises ``ValueError`` unless ``returns`` and ``mask`` are ``obs``'s batch shape and ``denominator`` a scalar."""
    batch = tuple(jnp.shape(obs)[:-1])
    for name, x in (("returns", returns), ("mask", mask)):
        if x is not None and tuple(jnp.shape(x)) != batch:
            raise ValueError(
                f"{name} must have the batch shape of obs (obs is (..., obs_dim), {name} (...)); "
                f"got obs {tuple(jnp.shape(obs))} and {name} {tuple(jnp.shape(x))}"
            )
    if denominator is not None and jnp.ndim(denominator) != 0:
        raise ValueError(f"denominator must be a scalar (or None); got shape {tuple(jnp.shape(denominator))}")


def value_predictions(value_params, obs):
    """``V(s) = W_L relu(... relu(s W_1 + b_1) ...) + b_L``, the one output squeezed: ``(...)``.

    Args:
      value_params: :func:`init_value`'s layer list (last layer one output).
      obs: ``(..., obs_dim)`` observations, any leading batch shape.

    Returns:
      ``(...)`` state values, in the params' dtype.

    Raises:
      ValueError: if ``value_params`` is not a layer list with one output,
        or ``obs.shape[-1]`` is not the first layer's fan-in.
    """
    _check_value_params(value_params)
    check_obs(value_params, obs)
    _, pre_activations = mlp_forward(value_params, obs)
    return pre_activations[-1][..., 0]


def value_loss(value_params, obs, returns, mask=None, denominator=None):
    """The baseline's squared-error loss ``sum(m (V(s) - G)^2) / (2 D)``, a scalar; the autodiff reference.

    Args:
      value_params: :func:`init_value`'s layer list.
      obs: ``(..., obs_dim)`` observations.
      returns: ``(...)`` targets ``G`` (reward-to-go); cast to the params'
        dtype and held constant (``stop_gradient``).
      mask: ``(...)`` 1 where the step is real, 0 where it is padding;
        ``None`` for all ones. Padding must be finite (``0 * inf`` is NaN).
      denominator: ``D``; ``None`` for ``max(sum m, 1)``. A batch split in
        blocks, each divided by the whole batch's ``D``, sums to the whole
        batch's loss and gradient.

    Returns:
      ``sum(m (V(s) - G)^2) / (2 D)``; ``jax.grad`` of it is
      ``sum(m (V - G) dV/dtheta) / D``.

    Raises:
      ValueError: on the shapes (see :func:`value_predictions`; ``returns``
        and ``mask`` must be ``obs``'s batch shape, ``denominator`` a scalar).
    """
    _check_value_params(value_params)
    check_obs(value_params, obs)
    _check_targets(obs, returns, mask, denominator)
    values = value_predictions(value_params, obs)
    dtype = values.dtype
    mask, denom = mask_and_denominator(returns, mask, dtype, denominator)
    error = values - jax.lax.stop_gradient(jnp.asarray(returns, dtype))
    return jnp.sum(mask * error * error) / (2 * denom)


def value_loss_and_grad_manual(value_params, obs, returns, mask=None, denominator=None):
    """``(loss, dL/dparams)`` of :func:`value_loss`, by hand, from one forward pass.

    Forward: ``h_0 = obs``, ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``
    for hidden layers, ``V = u_L[..., 0]``.

    Backward, per sample (``D = max(sum m, 1)``):

    - the loss: ``dL/dV = m (V - G) / D``, as ``dL/du_L`` of shape ``(..., 1)``;
      ``G`` gets none (a target);
    - each layer, as :func:`jax_reinforce.reinforce_value_and_grad_manual`
      (:func:`jax_reinforce.core.loss.mlp_backward`): ``dL/dW_l = h_{l-1}^T dL/du_l``,
      ``dL/db_l = sum dL/du_l`` (over the batch), ``dL/dh_{l-1} = dL/du_l W_l^T``,
      ``dL/du_l = dL/dh_l * [u_l > 0]``.

    Args: as :func:`value_loss`.

    Returns:
      The scalar loss, as :func:`value_loss` gives it, and a pytree with the
      structure of ``value_params``: ``jax.grad(value_loss)``.
    """
    _check_value_params(value_params)
    check_obs(value_params, obs)
    _check_targets(obs, returns, mask, denominator)
    inputs, pre_activations = mlp_forward(value_params, obs)
    values = pre_activations[-1][..., 0]
    dtype = values.dtype
    mask, denom = mask_and_denominator(returns, mask, dtype, denominator)
    error = values - jnp.asarray(returns, dtype)
    loss = jnp.sum(mask * error * error) / (2 * denom)
    grad_values = mask * error / denom
    return loss, mlp_backward(value_params, inputs, pre_activations, grad_values[..., None])
