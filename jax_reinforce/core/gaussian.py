"""A diagonal Gaussian policy for continuous actions, and its derivatives written by hand.

The policy's network (:func:`jax_reinforce.init_policy`'s MLP, read by
:func:`gaussian_policy_mean`) outputs the mean ``mu(s)``, ``(..., A)``; the
log standard deviation ``log sigma`` is a parameter of its own, one per
action dimension, ``(A,)`` (or any shape that broadcasts to ``(..., A)``).
For one sample, with ``z_i = (a_i - mu_i) / sigma_i``,

    log pi(a|s) = sum_i [ -z_i^2 / 2 - log sigma_i - log(2 pi) / 2 ]

and the score function, the continuous sibling of ``onehot(a) - softmax(logits)``:

    d log pi / d mu_i        = (a_i - mu_i) / sigma_i^2 = z_i / sigma_i
    d log pi / d log sigma_i = (a_i - mu_i)^2 / sigma_i^2 - 1 = z_i^2 - 1.

Every quantity is computed from ``z = (a - mu) exp(-log sigma)`` (the noise
``eps`` that drew ``a = mu + sigma eps``) and ``exp(-log sigma)``, never from
``sigma^2`` or its reciprocal, so it stays finite and accurate for
``log sigma`` from -20 to 2 in float32 and float64. Each derivative sits
beside its formula; ``tests/core/test_gaussian.py`` checks them against
``jax.grad``, ``jax.jacrev`` and finite differences.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jax_reinforce.core.loss import mask_and_denominator
from jax_reinforce.core.network import check_obs, init_policy, mlp_backward, mlp_forward, policy_logits

__all__ = [
    "init_gaussian_policy",
    "initial_log_std",
    "gaussian_log_prob",
    "gaussian_log_prob_grad",
    "gaussian_entropy",
    "gaussian_entropy_grad",
    "gaussian_actions_from_noise",
    "sample_gaussian_actions",
    "gaussian_policy_mean",
    "gaussian_reinforce_objective",
    "gaussian_reinforce_value_and_grad_manual",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def initial_log_std(low, high):
    """``log sigma_0 = log((high - low) / 4)`` per action dimension: ``mu +- 2 sigma_0`` spans the bounds.

    A fresh policy's mean is near the middle of the range (its output layer
    is scaled down), so its first actions cover the whole Box without most of
    them clipped to a bound. An unbounded dimension starts at ``sigma_0 = 1``.

    Args:
      low, high: the Box's bounds, ``(A,)``.

    Returns:
      ``(A,)`` float32.
    """
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    width = high - low
    return jnp.where(jnp.isfinite(width) & (width > 0), jnp.log(jnp.where(width > 0, width, 4.0) / 4), 0.0)


def init_gaussian_policy(key, obs_dim: int, hidden, action_low, action_high, dtype=jnp.float32):
    """A Gaussian policy's parameters: :func:`jax_reinforce.init_policy`'s MLP whose output is the mean.

    The last layer also holds ``"log_std"``, ``(A,)``, the state-independent
    log standard deviation, learned with the rest (:func:`initial_log_std`
    of the bounds at first). The network and its checks are the softmax
    policy's; every function that reads the layers' ``w`` and ``b`` ignores
    ``log_std``.

    Args:
      key: a ``jax.random`` key.
      obs_dim: observation size.
      hidden: hidden layer widths.
      action_low, action_high: ``(A,)`` the action Box's bounds.
      dtype: float dtype of every leaf.

    Returns:
      ``[{"w", "b"}, ..., {"w", "b", "log_std"}]``.
    """
    low = jnp.atleast_1d(jnp.asarray(action_low, jnp.float32))
    params = init_policy(key, obs_dim, hidden, int(low.shape[0]), dtype)
    params[-1] = {**params[-1], "log_std": initial_log_std(low, action_high).astype(dtype)}
    return params


def _as_floats(*arrays):
    """The arrays as JAX arrays of their common float dtype (ints promote to the default float)."""
    dtype = jnp.result_type(*arrays, float)
    return tuple(jnp.asarray(x, dtype) for x in arrays)


def _check_gaussian_shapes(mean, log_std, actions=None):
    """Raises ``ValueError`` unless ``mean`` (and ``actions``) are ``(..., A)`` and ``log_std`` broadcasts to it.

    Checked on static shapes, so inside ``jit`` it costs nothing at run time.
    """
    mean_shape, log_std_shape = jnp.shape(mean), jnp.shape(log_std)
    if not mean_shape or (actions is not None and jnp.shape(actions) != mean_shape):
        got = f"mean {tuple(mean_shape)}" + ("" if actions is None else f" and actions {tuple(jnp.shape(actions))}")
        raise ValueError(f"mean and actions must have the same shape (..., A); got {got}")
    try:
        fits = len(log_std_shape) >= 1 and jnp.broadcast_shapes(log_std_shape, mean_shape) == mean_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            "log_std must be (A,) (one per action dimension) or broadcast to mean's (..., A); "
            f"got log_std {tuple(log_std_shape)} and mean {tuple(mean_shape)}"
        )


def _sum_to_shape(x, shape):
    """Sums ``x`` over the axes that broadcasting ``shape`` to ``x.shape`` added or stretched."""
    lead = x.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    x = jnp.sum(x, axis=tuple(range(lead)) + stretched, keepdims=True)
    return x.reshape(shape)


def gaussian_log_prob(mean, log_std, actions):
    """``log N(a; mu, sigma^2)`` summed over the action axis.

    ``sum_i [-z_i^2 / 2 - log sigma_i - log(2 pi) / 2]``, ``z = (a - mu) exp(-log sigma)``.

    Args:
      mean: ``(..., A)`` means ``mu``.
      log_std: ``(A,)`` state-independent log standard deviations, broadcast
        over the batch, or any shape that broadcasts to ``(..., A)``.
      actions: ``(..., A)`` actions ``a``: the sampled, unclipped ones.

    Returns:
      ``(...)`` log-densities, in the common float dtype of the inputs.

    Raises:
      ValueError: if ``actions.shape != mean.shape`` or ``log_std`` does not
        broadcast to it.
    """
    _check_gaussian_shapes(mean, log_std, actions)
    mean, log_std, actions = _as_floats(mean, log_std, actions)
    z = (actions - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - _HALF_LOG_2PI, axis=-1)


def gaussian_log_prob_grad(mean, log_std, actions):
    """The score function of :func:`gaussian_log_prob`, by hand: ``(d_mean, d_log_std)``.

    ``d log pi / d mu = (a - mu) / sigma^2`` and
    ``d log pi / d log sigma = (a - mu)^2 / sigma^2 - 1``, computed as
    ``z exp(-log sigma)`` and ``z^2 - 1`` with ``z = (a - mu) exp(-log sigma)``.
    Both have zero mean under ``a ~ N(mu, sigma^2)``, as ``onehot(a) - s``
    has under ``a ~ softmax``.

    Args: as :func:`gaussian_log_prob`.

    Returns:
      ``d_mean``: ``(..., A)``, the gradient of each sample's log-density
      with respect to its own mean (a sample's log-density depends on no
      other sample's mean).
      ``d_log_std``: ``(..., A)``, per sample, even where ``log_std`` is a
      shared ``(A,)``: it is ``jax.jacrev(gaussian_log_prob, argnums=1)``.
      Summed over the batch axes it is the gradient of
      ``sum(gaussian_log_prob(...))`` with respect to the shared ``log_std``.
    """
    _check_gaussian_shapes(mean, log_std, actions)
    mean, log_std, actions = _as_floats(mean, log_std, actions)
    inv_std = jnp.exp(-log_std)
    z = (actions - mean) * inv_std
    return z * inv_std, z * z - 1


def gaussian_entropy(log_std):
    """``H = sum_i log sigma_i + (A / 2) (1 + log 2 pi)``: the entropy of ``N(mu, diag(sigma^2))``.

    It does not depend on the mean (nor, for a state-independent ``log_std``,
    on the state).

    Args:
      log_std: ``(..., A)``.

    Returns:
      ``(...)``.
    """
    (log_std,) = _as_floats(log_std)
    if log_std.ndim == 0:
        raise ValueError(f"log_std must have shape (..., A); got a scalar {tuple(log_std.shape)}")
    return jnp.sum(log_std, axis=-1) + log_std.shape[-1] * (0.5 + _HALF_LOG_2PI)


def gaussian_entropy_grad(log_std):
    """``dH / d log sigma_i = 1``: ones of ``log_std``'s shape ``(..., A)``."""
    (log_std,) = _as_floats(log_std)
    return jnp.ones_like(log_std)


def gaussian_actions_from_noise(mean, log_std, noise):
    """``a = mu + exp(log sigma) * eps``: standard normal ``eps`` made into ``a ~ N(mu, sigma^2)``.

    The Gaussian counterpart of :func:`jax_reinforce.actions_from_uniform`: a
    rollout can draw all its noise in one call and transform it step by step.

    Args:
      mean: ``(..., A)``.
      log_std: ``(A,)`` or broadcasting to ``(..., A)``.
      noise: ``(..., A)`` standard normal draws ``eps``.

    Returns:
      ``(..., A)`` unclipped actions (see :func:`sample_gaussian_actions`).
    """
    _check_gaussian_shapes(mean, log_std, noise)
    mean, log_std, noise = _as_floats(mean, log_std, noise)
    return mean + jnp.exp(log_std) * noise


def sample_gaussian_actions(key, mean, log_std):
    """Samples ``a ~ N(mu, diag(sigma^2))``.

    The action returned is the one whose log-probability is learned from: it
    is not clipped. An environment's action bounds clip only what is sent to
    it (``jnp.clip(a, low, high)`` at the ``step`` call), while the
    trajectory keeps ``a`` itself; the log-density of a clipped action would
    be that of a different action, and at the bounds the score function
    would be wrong.

    Args:
      key: a ``jax.random`` key.
      mean: ``(..., A)``.
      log_std: ``(A,)`` or broadcasting to ``(..., A)``.

    Returns:
      ``(..., A)`` actions in ``mean``'s float dtype (with ``log_std``'s promoted in).
    """
    _check_gaussian_shapes(mean, log_std)
    mean, log_std = _as_floats(mean, log_std)
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    return gaussian_actions_from_noise(mean, log_std, noise)


def gaussian_policy_mean(params, obs):
    """The mean action ``mu(s)``: :func:`jax_reinforce.policy_logits`'s MLP output, ``(..., A)``.

    The same network and parameters as the softmax policy (ReLU hidden
    layers, a linear output layer with ``A`` outputs); its output is read as
    the Gaussian's mean. It is also the greedy action.
    """
    return policy_logits(params, obs)


def _check_policy_batch(obs, actions, weights, mask, n_actions):
    batch = jnp.shape(obs)[:-1]
    if jnp.shape(actions) != (*batch, n_actions):
        raise ValueError(
            "actions must be (..., A), the batch shape of obs (obs is (..., obs_dim)) and the policy's "
            f"{n_actions} outputs; got obs {tuple(jnp.shape(obs))} and actions {tuple(jnp.shape(actions))}"
        )
    for name, x in (("weights", weights), ("mask", mask)):
        if x is not None and jnp.shape(x) != batch:
            raise ValueError(
                f"{name} must have the batch shape of obs (obs is (..., obs_dim)); "
                f"got obs {tuple(jnp.shape(obs))} and {name} {tuple(jnp.shape(x))}"
            )


def gaussian_reinforce_objective(params, log_std, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None,
                                 apply=None):
    """``(loss, entropy_sum)`` of a Gaussian policy, for autodiff: the reference of the manual gradient.

    ``L = -sum(m w log pi(a|s)) / D - c sum(m H) / D`` with
    ``pi(.|s) = N(mu(s), diag(sigma^2))``, ``mu`` = :func:`gaussian_policy_mean`,
    ``H`` = :func:`gaussian_entropy`, ``D = max(sum m, 1)``: the conventions of
    :func:`jax_reinforce.reinforce_objective` (mask, weights, ``entropy_coef``,
    ``denominator``), with the categorical policy replaced.

    ``jax.value_and_grad(gaussian_reinforce_objective, argnums=(0, 1),
    has_aux=True)`` gives ``((loss, entropy_sum), (param_grads,
    log_std_grad))``, what :func:`gaussian_reinforce_value_and_grad_manual`
    computes by hand.

    Args:
      params: the MLP's layer list (:func:`jax_reinforce.init_policy` with
        ``n_actions=A``).
      log_std: ``(A,)``, one per action dimension (or broadcasting to ``(..., A)``).
      obs: ``(..., obs_dim)``.
      actions: ``(..., A)`` the sampled, unclipped actions.
      weights: ``(...)`` per-step weights (reward-to-go, maybe normalised).
      mask: ``(...)`` 1 where the step is real, 0 where it is padding; ``None`` for all ones.
      entropy_coef: ``c``, weight of the entropy bonus.
      denominator: ``D``; ``None`` for ``max(sum m, 1)``.
      apply: ``apply(params, obs) -> mean``, another network than the MLP (:func:`gaussian_policy_mean`).

    Returns:
      ``(loss, entropy_sum)``: the scalar loss and ``sum(m H)``.
    """
    mean = (apply or gaussian_policy_mean)(params, obs)
    _check_policy_batch(obs, actions, weights, mask, mean.shape[-1])
    _check_gaussian_shapes(mean, log_std, actions)
    dtype = mean.dtype
    mask, denom = mask_and_denominator(weights, mask, dtype, denominator)
    log_pi_a = gaussian_log_prob(mean, log_std, actions)
    pg = -jnp.sum(mask * jnp.asarray(weights, dtype) * log_pi_a) / denom
    # One entropy per distinct log_std, broadcast to the batch: (A,) gives one for every sample.
    entropy = jnp.broadcast_to(gaussian_entropy(log_std), mask.shape)
    entropy_sum = jnp.sum(mask * entropy)
    if isinstance(entropy_coef, (int, float)) and entropy_coef == 0:
        return pg, entropy_sum
    return pg - entropy_coef * entropy_sum / denom, entropy_sum


def gaussian_reinforce_value_and_grad_manual(
    params, log_std, obs, actions, weights, mask=None, entropy_coef=0.0, denominator=None
):
    """``((loss, entropy_sum), (param_grads, log_std_grad))`` of :func:`gaussian_reinforce_objective`, by hand.

    Forward: ``h_0 = obs``, ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``
    for hidden layers, ``mu = u_L``.

    Backward, per sample (``D = max(sum m, 1)``, ``z = (a - mu) / sigma``):

    - policy-gradient term: ``dL/dmu = -(m w / D) z / sigma`` and
      ``dL/dlog sigma = -(m w / D) (z^2 - 1)`` (:func:`gaussian_log_prob_grad`);
    - entropy term: ``d(-c H)/dlog sigma = -c m / D`` per sample
      (:func:`gaussian_entropy_grad`); the mean, hence the network, gets none;
    - a shared ``log_std`` ``(A,)`` sums its per-sample terms over the batch;
    - each layer, as :func:`jax_reinforce.reinforce_value_and_grad_manual`:
      ``dL/dW_l = h_{l-1}^T dL/du_l``, ``dL/db_l = sum dL/du_l``,
      ``dL/dh_{l-1} = dL/du_l W_l^T``, ``dL/du_l = dL/dh_l * [u_l > 0]``.

    Args: as :func:`gaussian_reinforce_objective`.

    Returns:
      ``(loss, entropy_sum)`` as :func:`gaussian_reinforce_objective` gives
      them, and ``(param_grads, log_std_grad)``: a pytree with the structure
      of ``params`` and an array of ``log_std``'s shape and dtype, what
      ``jax.grad(..., argnums=(0, 1))`` of the loss gives. One forward pass
      serves both.
    """
    check_obs(params, obs)
    n_actions = params[-1]["w"].shape[1]
    _check_policy_batch(obs, actions, weights, mask, n_actions)
    _check_gaussian_shapes(actions, log_std)
    inputs, pre_activations = mlp_forward(params, obs)
    mean = pre_activations[-1]

    mask, denom = mask_and_denominator(weights, mask, mean.dtype, denominator)
    step_weight = mask * jnp.asarray(weights, mean.dtype) / denom
    log_std_b = jnp.broadcast_to(log_std, mean.shape)
    loss = -jnp.sum(step_weight * gaussian_log_prob(mean, log_std_b, actions))
    entropy_sum = jnp.sum(mask * jnp.broadcast_to(gaussian_entropy(log_std), mask.shape))
    d_mean, d_log_std = gaussian_log_prob_grad(mean, log_std_b, actions)
    grad_mean = (-step_weight[..., None] * d_mean).astype(mean.dtype)
    grad_log_std = -step_weight[..., None] * d_log_std
    if not (isinstance(entropy_coef, (int, float)) and entropy_coef == 0):
        loss = loss - entropy_coef * entropy_sum / denom
        grad_log_std = grad_log_std - (entropy_coef * mask / denom)[..., None] * gaussian_entropy_grad(log_std_b)
    log_std_grad = _sum_to_shape(grad_log_std, jnp.shape(log_std)).astype(jnp.result_type(log_std, float))

    return (loss, entropy_sum), (mlp_backward(params, inputs, pre_activations, grad_mean), log_std_grad)
