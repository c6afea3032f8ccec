"""Environments: a gymnax id, an import path or an environment object, with its physics, as an :class:`EnvSpec`.

``make_env(env, env_params=None, *, solve_threshold=None)`` returns the environment, its parameters and what
the trainer needs to know of it: the policy network's input and output sizes, the kind of actions and their
bounds, the episode limit, the solve threshold, and how an observation becomes the network's input
(:func:`encode_obs`). ``env`` is

- a gymnax id: every gymnax environment but MNISTBandit (which downloads MNIST when made);
- an import path ``"package.module:ClassName"``, constructed with no arguments;
- an object with gymnax 1.0's environment API (``reset_env``/``step_env``/``is_truncated``,
  ``action_space``/``observation_space``/``default_params``), e.g. your own subclass of
  ``gymnax.environments.environment.Environment``.

``env_params`` (an ``EnvParams`` object, or a dict of field replacements) sets the physics; the spec's sizes,
action bounds and episode limit are read from the spaces of THESE params (Pendulum's bounds follow
``max_torque``). An environment does not recompute derived fields: CartPole's ``polemass_length`` stays
``0.05`` after a new ``length`` unless it is given too.

- **actions**: discrete (a softmax policy over ``n_actions``) or continuous (a Box of ``n_actions``
  dimensions: a Gaussian policy whose mean the network outputs, clipped to the Box's bounds only where it is
  sent to the environment);
- **observations** of any shape (:attr:`EnvSpec.input_shape`); an integer index (FrozenLake's cell) is
  one-hot encoded. Observations that are always 0 or 1 (MinAtar, Catch, DeepSea, Pong) are stored as
  ``uint8`` in the rollout's buffers, an index as ``int32``, the others as floats
  (:attr:`EnvSpec.obs_store_dtype`); the learning pass encodes them block by block.

CartPole is loaded on its own (:mod:`jax_reinforce.core.lean_imports`): ``import gymnax`` imports every
environment and the plotting libraries some of them use, none of which gymnax's CartPole module needs.
``CartPole-v0`` is gymnax's CartPole with ``max_steps_in_episode=200``: the seed program's environment,
solved at a mean return of 195.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import numbers
import sys
from typing import Any

from jax_reinforce.core.lean_imports import import_skipping_inits

__all__ = ["EnvSpec", "make_env", "describe_env", "encode_obs", "store_obs", "SOLVE_THRESHOLDS", "CARTPOLE_NAMES",
           "REFUSED_ENVS", "BINARY_OBS_ENVS", "changed_params", "import_by_path"]

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
      name: the gymnax id, the import path ``"module:ClassName"``, or (an object whose class cannot be
        imported by path) the class's name; :attr:`importable` says which.
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
      importable: ``name`` makes the environment again (a gymnax id or an import path); ``False`` for an
        object defined in ``__main__`` or a notebook: a run of it is resumed or loaded with the spec passed again.
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
    importable: bool = True

    @property
    def input_shape(self) -> tuple:
        """One observation's shape as the network takes it: ``obs_shape``, or ``(obs_dim,)`` for a one-hot index."""
        return (self.obs_dim,) if self.one_hot else self.obs_shape

    @property
    def env_params_changed(self) -> dict:
        """``{field: value}`` of :attr:`params` that differ from the environment's ``default_params`` (plain values)."""
        return changed_params(_params_of(self.name, self.env, None), self.params)

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


def make_env(env="CartPole-v1", env_params=None, *, solve_threshold=None) -> EnvSpec:
    """The environment ``env`` with the physics ``env_params``, as an :class:`EnvSpec`.

    Args:
      env: a gymnax id (``"CartPole-v1"``, 500 steps, solved at 475; ``"CartPole-v0"``, 200 steps, solved at
        195; ``"Acrobot-v1"``, ``"Pendulum-v1"``, ``"Breakout-MinAtar"``, ...; every one but
        ``MNISTBandit-bsuite``), an import path ``"package.module:ClassName"`` (constructed with no
        arguments), or an object with gymnax 1.0's environment API.
      env_params: ``None`` (the environment's defaults), an ``EnvParams`` object, or a dict of field
        replacements (``{"gravity": 20.0}``); an unknown field is refused, naming the allowed ones.
      solve_threshold: the mean return over 100 episodes that counts as solved; ``None``: the environment's
        standard threshold where one exists (:data:`SOLVE_THRESHOLDS`, or the class's ``solve_threshold``
        attribute), else none.

    Returns:
      An :class:`EnvSpec` (made once per process for a name and plain values: the spec is immutable).

    Raises:
      ValueError: one line naming what was wrong and what is allowed.
    """
    if isinstance(env, str):
        if env_params is None or isinstance(env_params, dict):
            try:
                frozen = tuple(sorted((env_params or {}).items()))
                hash(frozen)
            except TypeError:  # a traced or array value: not cached
                frozen = None
            if frozen is not None:
                return _make_env_cached(env, frozen, _threshold(solve_threshold))
        name, environment, importable = _resolve_name(env)
    else:
        name, environment, importable = _resolve_object(env)
    return _spec(name, environment, _params_of(name, environment, env_params), _threshold(solve_threshold),
                 importable)


@functools.lru_cache(maxsize=None)
def _make_env_cached(env: str, params: tuple, solve_threshold) -> EnvSpec:
    name, environment, importable = _resolve_name(env)
    return _spec(name, environment, _params_of(name, environment, dict(params) or None), solve_threshold, importable)


def _threshold(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value or abs(value) == float("inf"):
        raise ValueError(f"solve_threshold must be None or a finite number; got {value!r}")
    return float(value)


def import_by_path(path: str, what: str):
    """The object an import path ``"package.module:attr"`` (``attr`` may be dotted) names; ``ValueError`` (one
    line, naming ``what`` and the path) when the module or the attribute cannot be imported."""
    module_name, _, attr = path.partition(":")
    try:
        value = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{what} {path!r} cannot be imported ({type(error).__name__}: {error}); an import path "
                         f"is 'package.module:attr', importable from here") from None
    return value


def _resolve_name(env: str):
    """``(name, environment object, importable)`` for a gymnax id or an import path."""
    if ":" in env:
        value = import_by_path(env, "env")
        environment = value() if isinstance(value, type) else value
        _check_api(env, environment)
        return env, environment, True
    if env in CARTPOLE_MAX_STEPS:
        return env, _load_gymnax_cartpole_module().CartPole(), True
    if env in REFUSED_ENVS:
        raise ValueError(f"env {env!r} is not supported: it {REFUSED_ENVS[env]}")
    import gymnax  # every other environment: the full (slower) import

    if env not in gymnax.registered_envs:
        raise ValueError(
            f"env {env!r} is not a gymnax environment (nor an import path 'package.module:ClassName'); allowed: "
            + ", ".join(sorted((set(gymnax.registered_envs) | set(CARTPOLE_NAMES)) - set(REFUSED_ENVS))))
    return env, gymnax.make(env)[0], True


_API = ("reset_env", "step_env", "is_truncated", "action_space", "observation_space", "default_params")


def _check_api(name, environment) -> None:
    missing = [attr for attr in _API if not hasattr(environment, attr)]
    if missing:
        raise ValueError(f"env {name!r} lacks gymnax 1.0's environment API ({', '.join(missing)} missing); an "
                         f"environment has reset_env, step_env, is_truncated, action_space, observation_space and "
                         f"default_params")


def _resolve_object(environment):
    """``(name, environment, importable)`` for an environment object: named by its class's import path if any."""
    cls = type(environment)
    _check_api(cls.__name__, environment)
    module = sys.modules.get(cls.__module__)
    value = module
    for part in cls.__qualname__.split("."):
        value = getattr(value, part, None)
    from_file = getattr(module, "__spec__", None) is not None  # importable again in another process
    if cls.__module__ != "__main__" and from_file and value is cls and "<locals>" not in cls.__qualname__:
        return f"{cls.__module__}:{cls.__qualname__}", environment, True
    return cls.__name__, environment, False


def _params_of(name: str, environment, env_params):
    """The environment's ``EnvParams``: its defaults, ``env_params`` itself, or the defaults with fields replaced."""
    defaults = environment.default_params
    if name in CARTPOLE_MAX_STEPS:
        defaults = defaults.replace(max_steps_in_episode=CARTPOLE_MAX_STEPS[name])
    if env_params is None:
        return defaults
    if not isinstance(env_params, dict):
        if not dataclasses.is_dataclass(env_params) or isinstance(env_params, type):
            raise ValueError(f"env_params must be None, an EnvParams object or a dict of field replacements; "
                             f"got {type(env_params).__name__}")
        return env_params
    allowed = [f.name for f in dataclasses.fields(defaults)]
    unknown = sorted(str(k) for k in env_params if k not in allowed)
    if unknown:
        raise ValueError(f"env_params: {', '.join(unknown)} {'is not a field' if len(unknown) == 1 else 'are not fields'}"
                         f" of {name}'s parameters; allowed: {', '.join(allowed)}")
    return dataclasses.replace(defaults, **env_params)


def changed_params(defaults, params) -> dict:
    """``{field: value}`` of ``params`` that differ from ``defaults``, as plain Python values (arrays as lists)."""
    import numpy as np

    out = {}
    for field in dataclasses.fields(params):
        value, default = getattr(params, field.name), getattr(defaults, field.name, None)
        plain = np.asarray(value).tolist()
        if plain != np.asarray(default).tolist():
            out[field.name] = plain
    return out


def _spec(name: str, environment, params, solve_threshold, importable: bool) -> EnvSpec:
    """The :class:`EnvSpec` of ``environment`` under ``params``: sizes, bounds and limit from these params' spaces."""
    import numpy as np

    if solve_threshold is None:
        solve_threshold = SOLVE_THRESHOLDS.get(name, getattr(environment, "solve_threshold", None))
    if not hasattr(params, "max_steps_in_episode"):
        raise ValueError(f"env {name!r}: its parameters have no max_steps_in_episode, which gymnax's "
                         f"is_truncated and the rollout's window need")
    max_steps = int(params.max_steps_in_episode)
    if max_steps < 1:
        raise ValueError(f"env_params: max_steps_in_episode must be an integer >= 1; got {max_steps}")
    if name in CARTPOLE_MAX_STEPS or type(environment).__name__ == "CartPole" and type(environment).__module__ == \
            "gymnax.environments.classic_control.cartpole":  # known without building its spaces (no JAX backend yet)
        return EnvSpec(name, environment, params, 4, 2, max_steps, solve_threshold, obs_shape=(4,),
                       importable=importable)
    action_space = environment.action_space(params)
    observation_space = environment.observation_space(params)
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
    return EnvSpec(name, environment, params, obs_dim, n_actions, max_steps, solve_threshold, obs_shape, one_hot,
                   store, low, high, importable)
