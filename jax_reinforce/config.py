"""The training configuration: one typed, frozen, validated dataclass.

Every field is also a flag of ``scripts/train.py`` (``--learning-rate`` is
spelled ``--lr`` there; the error messages name both). A bad value raises
``ValueError`` naming the field, the value and what is allowed, at
construction, before any work starts. The environment name is checked too:
CartPole at no cost, any other name by loading it from gymnax.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Config", "OPTIMIZERS", "GRADIENTS", "BASELINES", "FLAG_NAMES", "ALLOWED", "FLAGS", "FieldFlag",
           "config_error", "flag_of"]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
GRADIENTS = ("autodiff", "manual")
BASELINES = ("none", "mean", "normalize")

# The command-line flag of each field, where it is not --field-name.
FLAG_NAMES = {"learning_rate": "--lr"}

# Counts and widths become array shapes and int32 counters.
INT32_MAX = 2**31 - 1

# What each field allows, in the words of every error message about it.
ALLOWED = {
    "env": "a gymnax environment name such as 'CartPole-v1'",
    "hidden": f"a tuple of layer widths, each an integer in [1, {INT32_MAX}] (e.g. (8,) or (64, 64))",
    "num_envs": f"an integer in [1, {INT32_MAX}]",
    "num_seeds": f"an integer in [1, {INT32_MAX}]",
    "iterations": f"an integer in [1, {INT32_MAX}]",
    "learning_rate": "a finite number > 0",
    "optimizer": "one of " + ", ".join(OPTIMIZERS),
    "gamma": "a number in [0, 1]",
    "entropy_coef": "a finite number >= 0",
    "max_grad_norm": "None or a finite number > 0",
    "baseline": "one of " + ", ".join(BASELINES),
    "grad": "one of " + ", ".join(GRADIENTS),
    "seed": "an integer in [0, 2**32)",
    "rollout_steps": f"None or an integer in [1, {INT32_MAX}]",
    "stop_when_solved": "True or False",
}


def flag_of(field: str) -> str:
    """The command-line flag for a Config field (``learning_rate`` -> ``--lr``)."""
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def config_error(field: str, value: Any, allowed: str | None = None) -> ValueError:
    """``ValueError("<field> (<flag>) must be <allowed>; got <value>")``.

    The one message for a bad value of ``field``, from the library and from
    the command line alike (where ``value`` is the text typed).
    """
    return ValueError(f"{field} ({flag_of(field)}) must be {allowed or ALLOWED[field]}; got {value!r}")


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p.strip()) for p in text.split(","))
    except ValueError:
        raise config_error("hidden", text, "comma-separated layer widths, each an integer >= 1 (e.g. 8 or 64,64)") from None


def _parse_optional(convert):
    def parse(text: str):
        return None if text.strip().lower() == "none" else convert(text)

    return parse


def _parse_bool(text: str) -> bool:
    return {"true": True, "false": False}[text.strip().lower()]


@dataclasses.dataclass(frozen=True)
class FieldFlag:
    """How a :class:`Config` field appears on the command line.

    Attributes:
      field: the field's name.
      parse: text -> value (``ValueError`` for bad text; :class:`Config` checks the value).
      help: the flag's help text.
      sweepable: whether the field is a continuous hyper-parameter that a
        sweep may give several values (no shape or program depends on it).
    """

    field: str
    parse: Any
    help: str
    sweepable: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag (``--lr`` for ``learning_rate``, else ``--field-name``)."""
        return flag_of(self.field)

    @property
    def allowed(self) -> str:
        """What the field allows, in the words of every error message about it."""
        return ALLOWED[self.field]


# Every Config field's flag, in Config's order: the one table the command line is built from.
FLAGS = (
    FieldFlag("env", str, "gymnax environment: CartPole-v1, CartPole-v0, Acrobot-v1, ..."),
    FieldFlag("hidden", _parse_hidden, "hidden layer widths, e.g. 8 or 64,64"),
    FieldFlag("num_envs", int, "environments per agent (one episode each per iteration)"),
    FieldFlag("num_seeds", int, "agents trained at once"),
    FieldFlag("iterations", int, "maximum policy updates"),
    FieldFlag("learning_rate", float, "learning rate", sweepable=True),
    FieldFlag("optimizer", str, "one of " + ", ".join(OPTIMIZERS)),
    FieldFlag("gamma", float, "discount factor", sweepable=True),
    FieldFlag("entropy_coef", float, "entropy bonus weight", sweepable=True),
    FieldFlag("max_grad_norm", _parse_optional(float), "clip the global gradient norm ('none' to disable)",
              sweepable=True),
    FieldFlag("baseline", str, "one of " + ", ".join(BASELINES)),
    FieldFlag("grad", str, "one of " + ", ".join(GRADIENTS) + " (manual: the hand-derived gradient)"),
    FieldFlag("seed", int, "root seed; agent i uses fold_in(seed, i)"),
    FieldFlag("rollout_steps", _parse_optional(int), "rollout window (default: the episode limit)"),
    FieldFlag("stop_when_solved", _parse_bool, "freeze each agent once solved, stop when all are"),
)


def _fail(field: str, value: Any, allowed: str | None = None):
    raise config_error(field, value, allowed)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_env(name: str) -> None:
    """Refuses an environment the trainer cannot run (unknown, continuous, image observations)."""
    from jax_reinforce.envs import CARTPOLE_NAMES, make_env

    if name in CARTPOLE_NAMES:
        return
    try:
        make_env(name)
    except Exception as error:  # noqa: BLE001 - any failure to load is a bad name here
        reason = str(error).replace(f"env {name!r} ", "", 1) or type(error).__name__
        _fail(
            "env",
            name,
            f"a gymnax environment with discrete actions and flat observations such as "
            f"{', '.join(CARTPOLE_NAMES)} or Acrobot-v1 (this one {reason})",
        )


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of a REINFORCE run.

    Attributes:
      env: environment name: ``"CartPole-v1"``, ``"CartPole-v0"`` or another
        discrete-action gymnax environment (e.g. ``"Acrobot-v1"``).
      hidden: widths of the policy's hidden layers; ``(8,)`` is the seed's 4-8-2.
      num_envs: environments per agent, each running one episode per iteration.
      num_seeds: independent agents trained at once (vmapped).
      iterations: maximum number of policy updates.
      learning_rate: optimizer step size.
      optimizer: ``"adam"``, ``"sgd"`` or ``"rmsprop"`` (optax).
      gamma: discount factor in ``[0, 1]``.
      entropy_coef: weight of the entropy bonus, ``>= 0``.
      max_grad_norm: clip the global gradient norm to this, or ``None``.
      baseline: ``"none"``, ``"mean"`` or ``"normalize"`` (returns centred and
        scaled per batch).
      grad: ``"autodiff"`` (``jax.grad``) or ``"manual"`` (the hand-derived
        gradient, :func:`jax_reinforce.reinforce_grad_manual`).
      seed: the root seed; agent ``i`` uses ``fold_in(PRNGKey(seed), i)``.
      rollout_steps: the rollout window, ``None`` for the episode limit.
      stop_when_solved: freeze an agent once it is solved (its last 100 or
        more training episodes average at least the solve threshold) and stop
        when all are; ``False`` always runs ``iterations`` updates.
    """

    env: str = "CartPole-v1"
    hidden: tuple[int, ...] = (8,)
    num_envs: int = 32
    num_seeds: int = 4
    iterations: int = 300
    learning_rate: float = 0.1
    optimizer: str = "adam"
    gamma: float = 0.99
    entropy_coef: float = 0.0
    max_grad_norm: float | None = None
    baseline: str = "normalize"
    grad: str = "autodiff"
    seed: int = 0
    rollout_steps: int | None = None
    stop_when_solved: bool = True

    def __post_init__(self):
        if not isinstance(self.env, str) or not self.env.strip():
            _fail("env", self.env)
        hidden = self.hidden
        if isinstance(hidden, list):
            hidden = tuple(hidden)
            object.__setattr__(self, "hidden", hidden)
        if not isinstance(hidden, tuple) or not all(_is_int(h) and 1 <= h <= INT32_MAX for h in hidden):
            _fail("hidden", self.hidden)
        for field in ("num_envs", "num_seeds", "iterations"):
            value = getattr(self, field)
            if not _is_int(value) or not 1 <= value <= INT32_MAX:
                _fail(field, value)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            _fail("seed", self.seed)
        if not _is_real(self.learning_rate) or self.learning_rate <= 0:
            _fail("learning_rate", self.learning_rate)
        if not _is_real(self.gamma) or not 0 <= self.gamma <= 1:
            _fail("gamma", self.gamma)
        if not _is_real(self.entropy_coef) or self.entropy_coef < 0:
            _fail("entropy_coef", self.entropy_coef)
        if self.max_grad_norm is not None and (not _is_real(self.max_grad_norm) or self.max_grad_norm <= 0):
            _fail("max_grad_norm", self.max_grad_norm)
        for field, allowed in (("optimizer", OPTIMIZERS), ("grad", GRADIENTS), ("baseline", BASELINES)):
            if getattr(self, field) not in allowed:
                _fail(field, getattr(self, field))
        if self.rollout_steps is not None and (
            not _is_int(self.rollout_steps) or not 1 <= self.rollout_steps <= INT32_MAX
        ):
            _fail("rollout_steps", self.rollout_steps)
        if not isinstance(self.stop_when_solved, bool):
            _fail("stop_when_solved", self.stop_when_solved)
        # Last: it may load gymnax, and every cheaper mistake is reported first.
        _check_env(self.env)

    @classmethod
    def from_flags(cls, texts: dict) -> "Config":
        """A config from command-line texts ``{field: text}`` (:data:`FLAGS` parses each); others default.

        Raises:
          ValueError: naming the field, its flag, the text and what is allowed.
        """
        parsers = {f.field: f.parse for f in FLAGS}
        values = {}
        for field, text in texts.items():
            if field not in parsers:
                raise ValueError(f"unknown config field {field!r}; allowed: {sorted(parsers)}")
            try:
                values[field] = parsers[field](text) if isinstance(text, str) else text
            except ValueError as error:
                if str(error).startswith(f"{field} ("):  # the parser's own message for this field
                    raise
                raise config_error(field, text) from None
            except KeyError:
                raise config_error(field, text) from None
        return cls(**values)

    def to_dict(self) -> dict:
        """A JSON-ready dict (``hidden`` as a list)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """The inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object of fields; got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; allowed: {sorted(known)}")
        d = dict(d)
        if "hidden" in d and isinstance(d["hidden"], list):
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
