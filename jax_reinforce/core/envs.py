"""Environments by name, through gymnax.

``make_env(name)`` returns a gymnax environment, its parameters and what the
trainer needs to know of it: the policy network's input and output sizes,
the kind of actions, the episode limit, the solve threshold, and how an
observation becomes the network's input (:func:`encode_obs`).

Every gymnax environment but MNISTBandit (which downloads MNIST when made) is
accepted:

- **actions**: discrete (a softmax policy over ``n_actions``) or continuous
  (a Box of ``n_actions`` dimensions: a Gaussian policy whose mean the
  network outputs, clipped to the Box's bounds only where it is sent to the
  environment);
- **observations** of any shape are flattened (MinAtar's ``(10, 10, C)``
  images, Catch's ``(10, 5)`` grid); FrozenLake's observation, the integer
  index of a cell, is one-hot encoded over its 16 cells. Observations that
  are always 0 or 1 (MinAtar, Catch, DeepSea, Pong) are stored as ``uint8``
  in the rollout's buffers, FrozenLake's as its ``int32`` index, the others
  as floats (:attr:`EnvSpec.obs_store_dtype`); the learning pass encodes
  them block by block.

CartPole is loaded on its own (:mod:`jax_reinforce.core.lean_imports`):
``import gymnax`` imports every environment and the plotting libraries some of
them use, none of which gymnax's CartPole module needs (it needs ``flax.struct``
but not the rest of flax). Every other environment is loaded through
``gymnax.make``.

``CartPole-v0`` is gymnax's CartPole with ``max_steps_in_episode=200``: the
environment of the seed program, solved at a mean return of 195.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import sys
from typing import Any

from jax_reinforce.core.lean_imports import import_skipping_inits

__all__ = ["EnvSpec", "make_env", "describe_env", "encode_obs", "store_obs", "SOLVE_THRESHOLDS", "CARTPOLE_NAMES",
           "REFUSED_ENVS", "BINARY_OBS_ENVS"]

# Mean return over 100 consecutive episodes that counts as solved (gym's values, and the
# leaderboards' for MountainCar and MountainCarContinuous).
SOLVE_THRESHOLDS = {"CartPole-v0": 195.0, "CartPole-v1": 475.0, "Acrobot-v1": -100.0,
                    "MountainCar-v0": -110.0, "MountainCarContinuous-v0": 90.0}
# gymnax environments make_env refuses, and why.
REFUSED_ENVS = {"MNISTBandit-bsuite": "downloads the MNIST data set when it is made, which needs a network"}
# Environments whose every observation entry is 0 or 1 (tests/core/test_envs.py checks it on random episodes):
# their rollout buffers hold uint8.
BINARY_OBS_ENVS = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
                   "SpaceInvaders-MinAtar", "Catch-bsuite", "DeepSea-bsuite", "Pong-misc")
CARTPOLE_MAX_STEPS = {"CartPole-v0": 200, "CartPole-v1": 500}
CARTPOLE_NAMES = tuple(CARTPOLE_MAX_STEPS)


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A gymnax environment and what the trainer needs to know of it.

    Attributes:
      name: the gymnax id.
      env: the gymnax environment; ``params``: its ``EnvParams``.
      obs_dim: the network's input size (the flattened observation, or the
        one-hot width).
      n_actions: the network's output size: the number of discrete actions,
        or the dimension of a Box action.
      max_steps: the episode limit.
      solve_threshold: the mean return over 100 episodes that counts as
        solved, or ``None``.
      obs_shape: one observation's shape as gymnax gives it.
      one_hot: the observation is an integer index, one-hot encoded over
        ``obs_dim`` values.
      obs_store_dtype: the dtype the rollout stores observations in
        (``"float32"`` means the policy's float dtype).
      action_low, action_high: a Box action's bounds, one per dimension;
        ``None`` for discrete actions.
    """

    name: str
    env: Any  # gymnax.environments.environment.Environment
    params: Any  # its EnvParams
    obs_dim: int
    n_actions: int
    max_steps: int
    solve_threshold: float | None
    obs_shape: tuple = ()
    one_hot: bool = False
    obs_store_dtype: str = "float32"
    action_low: tuple | None = None
    action_high: tuple | None = None

    @property
    def continuous(self) -> bool:
        """Box actions (a Gaussian policy), rather than discrete ones (a softmax policy)."""
        return self.action_low is not None


def describe_env(env_spec: EnvSpec) -> tuple:
    """Everything a compiled program depends on in ``env_spec``, as plain values (a cache key's part)."""
    env_type = type(env_spec.env)
    return (env_spec.name, f"{env_type.__module__}.{env_type.__qualname__}", repr(env_spec.params),
            env_spec.obs_dim, env_spec.n_actions, env_spec.max_steps, env_spec.solve_threshold,
            env_spec.obs_shape, env_spec.one_hot, env_spec.obs_store_dtype, env_spec.action_low,
            env_spec.action_high)


def store_obs(env_spec: EnvSpec, obs, float_dtype):
    """Observations ``(..., *obs_shape)`` as the rollout's buffers hold them: ``(..., obs_dim)``, or ``(...)`` indices.

    Flattened and cast to :attr:`EnvSpec.obs_store_dtype` (``uint8`` for 0/1
    observations, exact), or to ``float_dtype`` (the policy's); a one-hot
    environment's index stays an ``int32`` ``(...)``.
    """
    import jax.numpy as jnp

    batch = jnp.shape(obs)[:jnp.ndim(obs) - len(env_spec.obs_shape)]
    if env_spec.one_hot:
        return jnp.asarray(obs, jnp.int32).reshape(batch)
    dtype = float_dtype if env_spec.obs_store_dtype == "float32" else env_spec.obs_store_dtype
    return jnp.asarray(obs).reshape(*batch, env_spec.obs_dim).astype(dtype)


def encode_obs(env_spec: EnvSpec, stored, float_dtype):
    """The network's input ``(..., obs_dim)`` in ``float_dtype`` from :func:`store_obs`'s form.

    A flat observation is cast; a one-hot environment's index ``i`` becomes
    ``e_i``, the ``i``-th unit vector of ``obs_dim``.
    """
    import jax
    import jax.numpy as jnp

    if env_spec.one_hot:
        return jax.nn.one_hot(stored, env_spec.obs_dim, dtype=float_dtype)
    return jnp.asarray(stored).astype(float_dtype)


def _load_gymnax_cartpole_module():
    """Imports ``gymnax.environments.classic_control.cartpole`` without ``gymnax``'s and ``flax``'s ``__init__``.

    The packages ``gymnax`` and ``gymnax.environments`` import every
    environment in their ``__init__``, and ``flax`` imports ``flax.linen``;
    the CartPole module needs only its two siblings (``environment``,
    ``spaces``) and ``flax.struct``. See :mod:`jax_reinforce.core.lean_imports`:
    a later ``import gymnax`` or ``import flax`` runs the real packages, which
    reuse these very modules (the classes stay identical).
    """
    name = "gymnax.environments.classic_control.cartpole"
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec("gymnax") is None:
        raise ImportError("gymnax is not installed: pip install 'gymnax>=1.0.1,<1.1'")
    return import_skipping_inits(
        name, ("flax", "gymnax", "gymnax.environments", "gymnax.environments.classic_control"))


def make_env(name: str = "CartPole-v1") -> EnvSpec:
    """The gymnax environment called ``name`` (made once per process: the spec is immutable).

    Args:
      name: ``"CartPole-v1"`` (500 steps, solved at 475), ``"CartPole-v0"``
        (200 steps, solved at 195), or any other gymnax environment id but
        ``MNISTBandit-bsuite`` (e.g. ``"Acrobot-v1"``, ``"Pendulum-v1"``,
        ``"Breakout-MinAtar"``).

    Returns:
      An :class:`EnvSpec`.

    Raises:
      ValueError: for an unknown name, or one of :data:`REFUSED_ENVS`.
    """
    if not isinstance(name, str):
        raise ValueError(f"env must be a gymnax environment name (a string); got {name!r}")
    return _make_env(name)


@functools.lru_cache(maxsize=None)
def _make_env(name: str) -> EnvSpec:
    if name in CARTPOLE_MAX_STEPS:
        cartpole = _load_gymnax_cartpole_module()
        env = cartpole.CartPole()
        params = cartpole.EnvParams(max_steps_in_episode=CARTPOLE_MAX_STEPS[name])
        return EnvSpec(name, env, params, 4, 2, CARTPOLE_MAX_STEPS[name], SOLVE_THRESHOLDS[name], obs_shape=(4,))

    if name in REFUSED_ENVS:
        raise ValueError(f"env {name!r} is not supported: it {REFUSED_ENVS[name]}")
    import gymnax  # every other environment: the full (slower) import
    import numpy as np

    if name not in gymnax.registered_envs:
        raise ValueError(
            f"env {name!r} is not a gymnax environment; allowed: "
            + ", ".join(sorted((set(gymnax.registered_envs) | set(CARTPOLE_NAMES)) - set(REFUSED_ENVS)))
        )
    env, params = gymnax.make(name)
    action_space = env.action_space(params)
    observation_space = env.observation_space(params)
    obs_shape = tuple(int(n) for n in observation_space.shape)
    one_hot = obs_shape == () and hasattr(observation_space, "n")  # FrozenLake: a cell index
    obs_dim = int(observation_space.n) if one_hot else int(np.prod(obs_shape, dtype=np.int64))
    if hasattr(action_space, "n"):
        n_actions, low, high = int(action_space.n), None, None
    else:  # a Box: one bound per dimension
        shape = tuple(action_space.shape)
        n_actions = int(np.prod(shape, dtype=np.int64))
        low, high = (tuple(float(v) for v in np.broadcast_to(np.asarray(bound, np.float64), shape).ravel())
                     for bound in (action_space.low, action_space.high))
    store = "int32" if one_hot else "uint8" if name in BINARY_OBS_ENVS else "float32"
    return EnvSpec(name, env, params, obs_dim, n_actions, int(params.max_steps_in_episode),
                   SOLVE_THRESHOLDS.get(name), obs_shape, one_hot, store, low, high)
