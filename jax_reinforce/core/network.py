"""The network: a ReLU multi-layer perceptron as pure functions of a params pytree, its forward and backward pass.

Parameters are a list of layers from input to output::

    params = [{"w": (obs_dim, h1), "b": (h1,)}, ..., {"w": (h_last, out), "b": (out,)}]

``h_0 = obs``, ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``; the output ``u_L`` is the softmax policy's
logits, the Gaussian policy's mean or the value baseline's ``V(s)``. ``hidden=(8,)`` gives the seed program's
4-8-2 network. :func:`mlp_backward` is the backward pass by hand, which every hand-derived gradient of the
package ends with; the shape checks here run on static shapes, so under ``jit`` and ``vmap`` they cost nothing.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["init_policy", "policy_logits", "mlp_forward", "mlp_backward", "check_params", "check_obs", "is_int"]


def init_policy(
    key,
    obs_dim: int = 4,
    hidden: Sequence[int] = (8,),
    n_actions: int = 2,
    dtype=jnp.float32,
    output_scale: float = 0.01,
):
    """Random policy parameters.

    Hidden layers: ``w ~ N(0, 2 / fan_in)`` (He initialisation, suited to
    ReLU), ``b = 0``. The output layer is scaled by ``output_scale`` so the
    first policy is close to uniform over actions: it explores, and the first
    gradients are not dominated by an arbitrary initial preference.

    Args:
      key: a ``jax.random`` key.
      obs_dim: observation size (4 for CartPole).
      hidden: widths of the hidden layers; ``()`` gives a linear policy.
      n_actions: number of discrete actions ``A``.
      dtype: float dtype of every leaf.
      output_scale: standard deviation multiplier of the output layer.

    Returns:
      ``[{"w": (fan_in, fan_out), "b": (fan_out,)}, ...]`` from input to output.

    Raises:
      ValueError: a size that is not an integer >= 1 (``4.7``, ``True``, a
        string as ``hidden``), a dtype that is not floating, or a non-finite
        ``output_scale``.
    """
    listed = isinstance(hidden, Sequence) and not isinstance(hidden, (str, bytes))
    hidden_sizes = tuple(hidden) if listed or (isinstance(hidden, np.ndarray) and hidden.ndim == 1) else None
    sizes = None if hidden_sizes is None else (obs_dim, *hidden_sizes, n_actions)
    if sizes is None or not all(is_int(s) and s >= 1 for s in sizes):
        raise ValueError(
            "obs_dim and n_actions must be integers >= 1 and hidden a sequence of them; "
            f"got obs_dim={obs_dim!r}, hidden={hidden!r}, n_actions={n_actions!r}"
        )
    sizes = tuple(operator.index(s) for s in sizes)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype; got {jnp.dtype(dtype)}")
    if isinstance(output_scale, (int, float)) and not math.isfinite(output_scale):  # a traced scale is not checked
        raise ValueError(f"output_scale must be a finite number; got {output_scale!r}")
    # Every weight from one draw (one jax.random call compiles faster than one per layer).
    shapes = list(zip(sizes[:-1], sizes[1:]))
    noise = jax.random.normal(key, (sum(fan_in * fan_out for fan_in, fan_out in shapes),), dtype)
    params, start = [], 0
    for i, (fan_in, fan_out) in enumerate(shapes):
        scale = jnp.sqrt(2.0 / fan_in)
        if i == len(shapes) - 1:
            scale = scale * output_scale
        w = noise[start:start + fan_in * fan_out].reshape(fan_in, fan_out) * scale.astype(dtype)
        start += fan_in * fan_out
        params.append({"w": w, "b": jnp.zeros((fan_out,), dtype)})
    return params


def is_int(value) -> bool:
    """``value`` is an integer (Python or NumPy), not a bool."""
    try:
        operator.index(value)
    except TypeError:
        return False
    return not isinstance(value, bool) and jnp.ndim(value) == 0


def _layer_shapes(params) -> str:
    """``"w (4, 8) b (8,); w (8, 2) b (2,)"``: the shapes of a layer list, for messages."""
    def shape(layer, name):
        return tuple(jnp.shape(layer[name])) if isinstance(layer, Mapping) and name in layer else None

    return "; ".join(f"w {shape(layer, 'w')} b {shape(layer, 'b')}" for layer in params)


def check_params(params, obs_dim: int | None = None, n_actions: int | None = None, env_name: str = "") -> None:
    """Raises ``ValueError`` unless ``params`` is :func:`init_policy`'s layer list (for ``obs_dim`` and ``n_actions``).

    Checked on static shapes, so inside ``jit`` and ``vmap`` it costs nothing
    at run time: a non-empty list of ``{"w": (fan_in, fan_out), "b":
    (fan_out,)}`` with floating leaves, each layer's ``fan_in`` the previous
    layer's ``fan_out``; with ``obs_dim`` and ``n_actions`` given (an
    environment's, named ``env_name``), the first ``fan_in`` and the last
    ``fan_out`` are those.
    """
    if (not isinstance(params, (list, tuple)) or not params
            or not all(isinstance(layer, Mapping) and "w" in layer and "b" in layer for layer in params)):
        raise ValueError(
            'params must be a non-empty list of layers {"w": (fan_in, fan_out), "b": (fan_out,)} '
            f"(init_policy's); got {type(params).__name__}"
            + (f" of {len(params)} items" if isinstance(params, (list, tuple)) else "")
        )
    fan_in = None
    for layer in params:
        w, b = jnp.shape(layer["w"]), jnp.shape(layer["b"])
        floating = all(jnp.issubdtype(jnp.result_type(x), jnp.floating) for x in (layer["w"], layer["b"]))
        if len(w) != 2 or b != w[1:] or (fan_in is not None and w[0] != fan_in) or not floating:
            raise ValueError(
                'params must be layers {"w": (fan_in, fan_out), "b": (fan_out,)} of floats, each fan_in the '
                f"previous fan_out (one agent's: vmap over a leading seed axis); got {_layer_shapes(params)}"
            )
        fan_in = w[1]
    env = env_name or "the environment"
    first, last = jnp.shape(params[0]["w"]), jnp.shape(params[-1]["w"])
    if obs_dim is not None and first[0] != obs_dim:
        raise ValueError(
            f"the policy's first layer takes {first[0]} inputs (w {first}) but {env}'s observations have {obs_dim}: "
            f"make the params with init_policy(key, {obs_dim}, hidden, {n_actions or 'n_actions'})"
        )
    if n_actions is not None and last[1] != n_actions:
        raise ValueError(
            f"the policy's last layer has {last[1]} outputs (w {last}) but {env} has {n_actions} actions: "
            f"make the params with init_policy(key, {obs_dim or 'obs_dim'}, hidden, {n_actions})"
        )


def check_obs(params, obs):
    """Raises ``ValueError`` unless ``obs`` is ``(..., obs_dim)`` for ``params``."""
    w = params[0]["w"]
    if jnp.ndim(obs) == 0 or jnp.shape(obs)[-1] != w.shape[0]:
        raise ValueError(
            "obs must have shape (..., obs_dim) with obs_dim the first layer's fan-in; "
            f"got obs {tuple(jnp.shape(obs))} and first-layer w {tuple(w.shape)}"
        )


def policy_logits(params, obs):
    """Action logits ``z = W_L relu(... relu(obs W_1 + b_1) ...) + b_L``.

    Args:
      params: the layer list of :func:`init_policy`.
      obs: ``(..., obs_dim)`` observations, any leading batch shape.

    Returns:
      ``(..., A)`` logits (unnormalised log-probabilities).

    Raises:
      ValueError: if ``params`` is not :func:`init_policy`'s layer list, or
        ``obs.shape[-1]`` is not the first layer's fan-in.
    """
    check_params(params)
    check_obs(params, obs)
    h = jnp.asarray(obs, dtype=params[0]["w"].dtype)
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def mlp_forward(params, obs):
    """The policy MLP's forward pass, keeping what the backward pass needs.

    ``h_0 = obs``, ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``; the
    output is ``u_L`` (logits, or a Gaussian's mean).

    Returns:
      ``(inputs, pre_activations)``: each layer's input ``h_{l-1}`` ``(..., fan_in)``
      and pre-activation ``u_l`` ``(..., fan_out)``.
    """
    inputs, pre_activations = [], []
    h = jnp.asarray(obs, params[0]["w"].dtype)
    for layer in params:
        inputs.append(h)
        u = h @ layer["w"] + layer["b"]
        pre_activations.append(u)
        h = jax.nn.relu(u)
    return inputs, pre_activations


def mlp_backward(params, inputs, pre_activations, grad_out):
    """``dL/dparams`` from ``grad_out = dL/du_L`` ``(..., A)`` and :func:`mlp_forward`'s cache, by hand.

    Output layer first: ``dL/dW_l = h_{l-1}^T dL/du_l`` and ``dL/db_l = sum
    dL/du_l`` (the batch axes flattened, so the product sums the per-sample
    outer products), ``dL/dh_{l-1} = dL/du_l W_l^T``, and through the ReLU
    ``dL/du_l = dL/dh_l * [u_l > 0]``.
    """
    grads = [None] * len(params)
    grad_u = grad_out
    for i in reversed(range(len(params))):
        fan_in, fan_out = params[i]["w"].shape
        flat_in = inputs[i].reshape(-1, fan_in)
        flat_grad = grad_u.reshape(-1, fan_out)
        grads[i] = {"w": flat_in.T @ flat_grad, "b": jnp.sum(flat_grad, axis=0)}
        if i > 0:
            grad_h = grad_u @ params[i]["w"].T
            grad_u = grad_h * (pre_activations[i - 1] > 0).astype(grad_h.dtype)
    return grads
