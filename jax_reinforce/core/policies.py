"""Policy networks as inputs: ``Policy(init, apply)``, the built-in MLP and CNN, and how the trainer uses any of them.

A :class:`Policy` is two pure functions:

- ``init(key, input_shape, n_actions) -> params``: any pytree of float arrays;
- ``apply(params, obs) -> out``: ``obs`` ``(..., *input_shape)`` in the params' float dtype, ``out``
  ``(..., n_actions)``: the logits of a softmax policy (discrete actions) or the mean of a Gaussian one
  (Box actions).

``input_shape`` is :attr:`jax_reinforce.EnvSpec.input_shape`: the observation's shape as gymnax gives it, or
``(n,)`` for a one-hot index (FrozenLake). For Box actions the trainer adds a learned, state-independent
``log_std`` (one per action dimension, initialised from the bounds as :func:`jax_reinforce.initial_log_std`):
the params are ``{"net": <init's>, "log_std": (A,)}``. The built-in MLP (``network="mlp"``) keeps its own layout
(a layer list, ``log_std`` in its last layer), so its runs and checkpoints are those of the MLP whose gradient
is derived by hand (``grad="manual"``); any other network trains with ``jax.grad``.

``network`` names: ``"mlp"``, ``"cnn"`` (:func:`cnn_policy`: a small convolutional torso for image
observations, then ``hidden`` dense layers), or an import path ``"package.module:attr"`` naming a ``Policy``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from jax_reinforce.core.envs import import_by_path

__all__ = ["Policy", "mlp_policy", "cnn_policy", "resolve_policy", "policy_name", "init_policy_params",
           "policy_apply", "BUILT_IN_NETWORKS"]

BUILT_IN_NETWORKS = ("mlp", "cnn")


class Policy(NamedTuple):
    """A policy network: ``init(key, input_shape, n_actions) -> params`` and ``apply(params, obs) -> (..., n_actions)``.

    ``name``: how a run records it (``config.json``): a built-in name, an import path ``"module:attr"`` that
    gives this policy back, or ``None`` (recorded as not importable: resuming or loading the run then needs the
    policy passed again).
    """

    init: Callable
    apply: Callable
    name: str | None = None


def mlp_policy(hidden=(8,)) -> Policy:
    """The package's MLP (:func:`jax_reinforce.init_policy`) over the flattened observation, as a :class:`Policy`.

    The trainer runs ``network="mlp"`` through its own code (the hand-derived gradient, the elementwise acting
    path); this wrapper is the same network for research code that wants a ``Policy``.
    """
    from jax_reinforce.core.network import init_policy, policy_logits  # lazy: JAX

    def init(key, input_shape, n_actions):
        return init_policy(key, math.prod(input_shape), tuple(hidden), n_actions)

    def apply(params, obs):
        fan_in = params[0]["w"].shape[0]  # the trailing axes whose size is the first layer's fan-in: one input
        k = next((k for k in range(1, obs.ndim + 1) if math.prod(obs.shape[obs.ndim - k:]) == fan_in), 1)
        return policy_logits(params, obs.reshape(*obs.shape[:obs.ndim - k], -1))

    return Policy(init, apply, "mlp")


def cnn_policy(hidden=(64,), channels=(16,), kernel: int = 3) -> Policy:
    """A small convolutional policy for image observations ``(H, W, C)`` (or ``(H, W)``, one channel).

    ``len(channels)`` convolutions (``kernel x kernel``, odd, stride 1, ``SAME`` padding, ReLU; He-initialised),
    the feature map flattened, then ReLU dense layers of ``hidden`` widths and a linear output of ``n_actions``
    scaled by 0.01 (a near-uniform first policy, as the MLP's). MinAtar's ``(10, 10, C)`` grids, Catch's
    ``(10, 5)`` and Pong's ``(30, 40, 3)`` fit it.

    Params: ``{"conv": [{"w": (k, k, c_in, c_out), "b": (c_out,)}, ...], "dense": [{"w", "b"}, ...]}``.
    """
    import jax  # lazy: JAX
    import jax.numpy as jnp

    channels, hidden = tuple(channels), tuple(hidden)

    def init(key, input_shape, n_actions):
        if len(input_shape) not in (2, 3):
            raise ValueError(f"network='cnn' takes image observations (H, W) or (H, W, C); got shape {input_shape}")
        height, width = input_shape[:2]
        c_in = input_shape[2] if len(input_shape) == 3 else 1
        keys = jax.random.split(key, len(channels) + len(hidden) + 1)
        conv = []
        for i, c_out in enumerate(channels):
            fan_in = kernel * kernel * c_in
            w = jax.random.normal(keys[i], (kernel, kernel, c_in, c_out)) * jnp.sqrt(2.0 / fan_in)
            conv.append({"w": w, "b": jnp.zeros((c_out,))})
            c_in = c_out
        sizes = (height * width * c_in, *hidden, n_actions)
        dense = []
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            scale = jnp.sqrt(2.0 / fan_in) * (0.01 if j == len(sizes) - 2 else 1.0)
            dense.append({"w": jax.random.normal(keys[len(channels) + j], (fan_in, fan_out)) * scale,
                          "b": jnp.zeros((fan_out,))})
        return {"conv": conv, "dense": dense}

    def apply(params, obs):
        # (..., H, W, C) or (..., H, W): the one whose size fits the first dense layer.
        c_in = params["conv"][0]["w"].shape[2] if params["conv"] else 1
        c_out = params["conv"][-1]["w"].shape[3] if params["conv"] else 1
        dense_in = params["dense"][0]["w"].shape[0]
        image_ndim = 3 if (obs.ndim >= 3 and obs.shape[-1] == c_in
                           and math.prod(obs.shape[-3:-1]) * (c_out if params["conv"] else c_in) == dense_in) else 2
        batch = obs.shape[:obs.ndim - image_ndim]
        h = obs.reshape(-1, *obs.shape[obs.ndim - image_ndim:])
        if image_ndim == 2:
            h = h[..., None]
        for layer in params["conv"]:
            # The convolution as one matrix product of k x k patches (im2col): the same function as
            # lax.conv_general_dilated(..., "SAME"), which XLA's CPU backend runs about half as fast here
            # (docs/performance.md, Round 9).
            k = layer["w"].shape[0]
            hh, ww = h.shape[1], h.shape[2]
            hp = jnp.pad(h, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
            patches = jnp.concatenate([hp[:, i:i + hh, j:j + ww, :] for i in range(k) for j in range(k)], axis=-1)
            h = jax.nn.relu(patches @ layer["w"].astype(h.dtype).reshape(-1, layer["w"].shape[-1]) + layer["b"])
        h = h.reshape(h.shape[0], -1)
        for i, layer in enumerate(params["dense"]):
            h = h @ layer["w"] + layer["b"]
            if i < len(params["dense"]) - 1:
                h = jax.nn.relu(h)
        return h.reshape(*batch, h.shape[-1])

    return Policy(init, apply, "cnn")


def resolve_policy(network, hidden=(8,)) -> Policy | None:
    """The :class:`Policy` a ``network`` name or object stands for; ``None`` for the built-in MLP (``"mlp"``),
    which the trainer runs through its own code.

    Raises:
      ValueError: an unknown name, or an import path that does not give a ``Policy``.
    """
    if isinstance(network, Policy):
        return None if network.name == "mlp" else network
    if network == "mlp":
        return None
    if network == "cnn":
        return cnn_policy(hidden)
    if isinstance(network, str) and ":" in network:
        value = import_by_path(network, "network")
        if not isinstance(value, Policy):
            raise ValueError(f"network {network!r} is a {type(value).__name__}, not a jax_reinforce.Policy")
        return value._replace(name=network)
    raise ValueError(f"network must be 'mlp', 'cnn' or an import path 'package.module:attr' naming a "
                     f"jax_reinforce.Policy; got {network!r}")


def policy_name(policy: Policy | None) -> str:
    """What a run records for ``policy``: its name (``"mlp"`` for ``None``), or ``"<name>"`` unset."""
    return "mlp" if policy is None else (policy.name or getattr(policy.apply, "__qualname__", "policy"))


def init_policy_params(policy: Policy, key, env_spec, dtype):
    """``policy``'s params for ``env_spec`` (``{"net", "log_std"}`` for Box actions), leaves in ``dtype``."""
    import jax  # lazy: JAX
    import jax.numpy as jnp

    from jax_reinforce.core.gaussian import initial_log_std  # lazy: JAX

    net = jax.tree.map(lambda x: jnp.asarray(x, dtype), policy.init(key, env_spec.input_shape, env_spec.n_actions))
    if not env_spec.continuous:
        return net
    return {"net": net, "log_std": jnp.asarray(initial_log_std(env_spec.action_low, env_spec.action_high), dtype)}


def policy_apply(policy: Policy, params, flat_obs, env_spec):
    """``policy.apply`` on observations as the trainer holds them, ``(..., obs_dim)`` encoded: reshaped to
    ``(..., *input_shape)``. For Box actions ``params`` are ``{"net", "log_std"}`` and the net's output is the mean."""
    obs = flat_obs.reshape(*flat_obs.shape[:-1], *env_spec.input_shape)
    return policy.apply(params["net"] if env_spec.continuous else params, obs)
