"""Environments by name, through gymnax.

``make_env(name)`` returns a gymnax environment, its parameters and a few facts
the trainer needs (observation size, number of actions, episode length, solve
threshold). CartPole is loaded on its own (:mod:`jax_reinforce.lean_imports`):
``import gymnax`` imports every environment and the plotting libraries some of
them use, none of which gymnax's CartPole module needs (it needs ``flax.struct``
but not the rest of flax). Any other gymnax environment with a discrete action
space and a flat observation is loaded through ``gymnax.make``.

``CartPole-v0`` is gymnax's CartPole with ``max_steps_in_episode=200``: the
environment of the seed program, solved at a mean return of 195.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import sys
from typing import Any

from jax_reinforce.lean_imports import import_skipping_inits

__all__ = ["EnvSpec", "make_env", "describe_env", "SOLVE_THRESHOLDS", "CARTPOLE_NAMES"]

# Mean return over 100 consecutive episodes that counts as solved (gym's values).
SOLVE_THRESHOLDS = {"CartPole-v0": 195.0, "CartPole-v1": 475.0, "Acrobot-v1": -100.0}
CARTPOLE_MAX_STEPS = {"CartPole-v0": 200, "CartPole-v1": 500}
CARTPOLE_NAMES = tuple(CARTPOLE_MAX_STEPS)


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A gymnax environment and what the trainer needs to know of it."""

    name: str
    env: Any  # gymnax.environments.environment.Environment
    params: Any  # its EnvParams
    obs_dim: int
    n_actions: int
    max_steps: int
    solve_threshold: float | None


def describe_env(env_spec: EnvSpec) -> tuple:
    """Everything a compiled program depends on in ``env_spec``, as plain values (a cache key's part)."""
    env_type = type(env_spec.env)
    return (env_spec.name, f"{env_type.__module__}.{env_type.__qualname__}", repr(env_spec.params),
            env_spec.obs_dim, env_spec.n_actions, env_spec.max_steps, env_spec.solve_threshold)


def _load_gymnax_cartpole_module():
    """Imports ``gymnax.environments.classic_control.cartpole`` without ``gymnax``'s and ``flax``'s ``__init__``.

    The packages ``gymnax`` and ``gymnax.environments`` import every
    environment in their ``__init__``, and ``flax`` imports ``flax.linen``;
    the CartPole module needs only its two siblings (``environment``,
    ``spaces``) and ``flax.struct``. See :mod:`jax_reinforce.lean_imports`:
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
        (200 steps, solved at 195), or any gymnax environment id with a
        discrete action space and a flat observation (e.g. ``"Acrobot-v1"``).

    Returns:
      An :class:`EnvSpec`.

    Raises:
      ValueError: for an unknown name, or an environment whose actions are not
        discrete or whose observation is not a flat vector.
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
        return EnvSpec(name, env, params, 4, 2, CARTPOLE_MAX_STEPS[name], SOLVE_THRESHOLDS[name])

    import gymnax  # every other environment: the full (slower) import

    if name not in gymnax.registered_envs:
        raise ValueError(
            f"env {name!r} is not a gymnax environment; allowed: "
            + ", ".join(sorted(gymnax.registered_envs))
        )
    env, params = gymnax.make(name)
    action_space = env.action_space(params)
    if not hasattr(action_space, "n"):
        raise ValueError(f"env {name!r} has continuous actions; only discrete action spaces are allowed")
    obs_shape = tuple(env.observation_space(params).shape)
    if len(obs_shape) != 1:
        raise ValueError(
            f"env {name!r} has observations of shape {obs_shape}; only flat (obs_dim,) observations are allowed"
        )
    return EnvSpec(
        name,
        env,
        params,
        obs_shape[0],
        int(action_space.n),
        int(params.max_steps_in_episode),
        SOLVE_THRESHOLDS.get(name),
    )
