"""The training configuration: one typed, frozen, validated dataclass.

Every field is also a flag of ``scripts/train.py`` (``--learning-rate`` is
spelled ``--lr`` there; the error messages name both). A bad value raises
``ValueError`` naming the field, the value and what is allowed, at
construction, before any work starts. The environment name is checked too:
CartPole at no cost, any other name by loading it from gymnax.

Numbers are checked against what the trainer computes them in: a float must
be a finite float32 that is neither flushed to 0 nor rounded to inf
(:data:`FLOAT32_TINY` to :data:`FLOAT32_MAX`), a count that becomes an array
size or an int32 counter must fit int32, and the whole run must fit in
memory (:func:`check_training_memory`: :func:`training_memory_bytes` against :func:`memory_budget_bytes`, checked by :func:`jax_reinforce.train_run`, not by :class:`Config`, whose validation does not depend on the machine),
so that a run that cannot work is refused in one line before any work.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from typing import Any

__all__ = ["Config", "OPTIMIZERS", "GRADIENTS", "BASELINES", "FLAG_NAMES", "ALLOWED", "FLAGS", "FieldFlag",
           "config_error", "flag_of", "INT32_MAX", "FLOAT32_MAX", "FLOAT32_TINY", "training_memory_bytes",
           "memory_budget_bytes", "format_bytes", "check_training_memory", "SWEEPABLE", "UNSET"]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
GRADIENTS = ("autodiff", "manual")
BASELINES = ("none", "mean", "normalize", "value")

# The command-line flag of each field, where it is not --field-name.
FLAG_NAMES = {"learning_rate": "--lr", "value_learning_rate": "--value-lr"}

# Counts and widths become array shapes and int32 counters.
INT32_MAX = 2**31 - 1
# float32, which the trainer computes in: its largest finite number, and its smallest normal one
# (XLA on the CPU flushes the smaller, subnormal numbers to zero).
FLOAT32_MAX = (2 - 2**-23) * 2.0**127
FLOAT32_TINY = 2.0**-126
# gymnax's CartPole, as jax_reinforce.envs.make_env describes it (observation size, actions), known here
# without importing JAX; tests/test_reliability_bounds.py checks the two agree.
_CARTPOLE_SIZES = (4, 2)

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
    "value_hidden": f"a tuple of layer widths, each an integer in [1, {INT32_MAX}] (e.g. (64, 64))",
    "value_learning_rate": "a finite number > 0",
    "normalize_advantages": "True or False",
    "grad": "one of " + ", ".join(GRADIENTS),
    "seed": "an integer in [0, 2**32)",
    "rollout_steps": f"None or an integer in [1, {INT32_MAX}]",
    "stop_when_solved": "True or False",
}


class _Unset:
    """The default of every :class:`Config` field but ``env``: replaced by the environment's default."""

    def __repr__(self):
        return "UNSET"


# A Config field left at UNSET takes its environment's default (jax_reinforce.env_defaults.defaults_for).
UNSET = _Unset()


def flag_of(field: str) -> str:
    """The command-line flag for a Config field (``learning_rate`` -> ``--lr``)."""
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def config_error(field: str, value: Any, allowed: str | None = None) -> ValueError:
    """``ValueError("<field> (<flag>) must be <allowed>; got <value>")``.

    The one message for a bad value of ``field``, from the library and from
    the command line alike (where ``value`` is the text typed).
    """
    return ValueError(f"{field} ({flag_of(field)}) must be {allowed or ALLOWED[field]}; got {value!r}")


def _parse_widths(field: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(p.strip()) for p in text.split(","))
        except ValueError:
            raise config_error(field, text, "comma-separated layer widths, each an integer >= 1 (e.g. 8 or 64,64)") from None

    return parse


_parse_hidden = _parse_widths("hidden")


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
    FieldFlag("env", str, "any gymnax environment but MNISTBandit-bsuite: CartPole-v1, Pendulum-v1, Breakout-MinAtar, ..."),
    FieldFlag("hidden", _parse_hidden, "hidden layer widths, e.g. 8 or 64,64"),
    FieldFlag("num_envs", int, "environments per agent (one episode each per iteration)"),
    FieldFlag("num_seeds", int, "agents trained at once"),
    FieldFlag("iterations", int, "maximum policy updates"),
    FieldFlag("learning_rate", float, "learning rate (a comma-separated list sweeps it)", sweepable=True),
    FieldFlag("optimizer", str, "one of " + ", ".join(OPTIMIZERS)),
    FieldFlag("gamma", float, "discount factor (a list sweeps it)", sweepable=True),
    FieldFlag("entropy_coef", float, "entropy bonus weight (a list sweeps it)", sweepable=True),
    FieldFlag("max_grad_norm", _parse_optional(float), "clip the global gradient norm ('none' to disable; a list "
              "sweeps it)", sweepable=True),
    FieldFlag("baseline", str, "one of " + ", ".join(BASELINES) + " (value: a learned V(s))"),
    FieldFlag("value_hidden", _parse_widths("value_hidden"), "hidden layer widths of --baseline value's V(s)"),
    FieldFlag("value_learning_rate", float, "learning rate of --baseline value's V(s)"),
    FieldFlag("normalize_advantages", _parse_bool, "with --baseline value: centre and scale G - V(s) per batch"),
    FieldFlag("grad", str, "one of " + ", ".join(GRADIENTS) + " (manual: the hand-derived gradient)"),
    FieldFlag("seed", int, "root seed; agent i uses fold_in(seed, i)"),
    FieldFlag("rollout_steps", _parse_optional(int), "rollout window (default: the episode limit)"),
    FieldFlag("stop_when_solved", _parse_bool, "freeze each agent once solved, stop when all are"),
)


def _fail(field: str, value: Any, allowed: str | None = None):
    raise config_error(field, value, allowed)


# The continuous hyper-parameters: traced inputs of every compiled program, so a field may hold a
# list of values (a sweep: every combination, times num_seeds, trains in one program).
SWEEPABLE = tuple(f.field for f in FLAGS if f.sweepable)


def _check_hyperparameter(field: str, value) -> None:
    """Refuses one value of a sweepable field outside its range, or one float32 turns into 0 or inf."""
    if field == "max_grad_norm" and value is None:
        return
    if not _is_real(value):
        _fail(field, value)
    if field == "gamma":
        if not 0 <= value <= 1:
            _fail(field, value)
        _check_float32(field, value, zero_ok=True, high=1.0)
    elif field == "entropy_coef":
        if value < 0:
            _fail(field, value)
        _check_float32(field, value, zero_ok=True)
    else:  # learning_rate, max_grad_norm
        if value <= 0:
            _fail(field, value)
        _check_float32(field, value, zero_ok=False)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond every float
        return False


def _check_env(name: str) -> tuple[int, int, int]:
    """Refuses an environment the trainer cannot run (unknown, or MNISTBandit, which downloads data).

    Returns:
      ``(obs_dim, n_actions, max_steps)`` of the environment.
    """
    from jax_reinforce.envs import CARTPOLE_MAX_STEPS, CARTPOLE_NAMES, make_env

    if name in CARTPOLE_NAMES:
        return (*_CARTPOLE_SIZES, CARTPOLE_MAX_STEPS[name])
    try:
        spec = make_env(name)
    except Exception as error:  # noqa: BLE001 - any failure to load is a bad name here
        reason = str(error).replace(f"env {name!r} ", "", 1) or type(error).__name__
        _fail(
            "env",
            name,
            f"a gymnax environment such as {', '.join(CARTPOLE_NAMES)}, Acrobot-v1 or Pendulum-v1 "
            f"(this one {reason})",
        )
    return spec.obs_dim, spec.n_actions, spec.max_steps


def _check_float32(field: str, value: float, zero_ok: bool, high: float = FLOAT32_MAX) -> None:
    """Refuses a value (already in the field's range) that float32 would compute as 0 or inf."""
    if (value == 0 and zero_ok) or FLOAT32_TINY <= value <= high:
        return
    span = f"{'0 or ' if zero_ok else ''}in [{FLOAT32_TINY:.8g}, {high:.8g}]"
    why = "smaller numbers compute as 0" + (", larger as inf" if high == FLOAT32_MAX else "")
    _fail(field, value, f"{ALLOWED[field]} that float32 holds, {span} ({why})")


def format_bytes(n: float) -> str:
    """``n`` bytes for a message: ``'512 B'``, ``'1.5 GiB'``, ``'2.9 TiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def memory_budget_bytes() -> int | None:
    """The memory a run may plan to use: this machine's physical memory, or ``None`` where unknown.

    ``os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")``: the whole of
    it, since :func:`training_memory_bytes` is an estimate, not a promise. A
    GPU's own memory is of the same order on the machines this runs on
    (an H200 has 141 GB beside 128 GiB of host memory).
    """
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _layer_shapes(obs_dim: int, hidden: tuple[int, ...], n_actions: int) -> list[tuple[int, int]]:
    widths = (obs_dim, *hidden, n_actions)
    return list(zip(widths[:-1], widths[1:]))


def _training_bytes(config: "Config", obs_dim: int, n_actions: int, max_steps: int) -> int:
    window = config.rollout_steps or max_steps
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in _layer_shapes(obs_dim, config.hidden, n_actions))
    block = min(32, window)  # jax_reinforce.training.BLOCK_ROWS
    words = (8 * params + window * config.num_envs * (obs_dim + 6)
             + 3 * block * config.num_envs * (sum(config.hidden) + n_actions))
    if config.baseline == "value":  # V(s): its parameters as the policy's, its predictions, one block's activations
        value_params = sum((fan_in + 1) * fan_out for fan_in, fan_out in _layer_shapes(obs_dim, config.value_hidden, 1))
        words += 8 * value_params + window * config.num_envs + 3 * block * config.num_envs * (sum(config.value_hidden) + 1)
    return 4 * words * config.num_agents


def training_memory_bytes(config: "Config") -> int:
    """An estimate of the memory, in bytes, that training ``config`` needs.

    Per agent, in 4-byte words (float32 and int32), with ``P`` the policy's
    parameters (``sum over layers of (fan_in + 1) * fan_out``), ``T`` the
    rollout window, ``N = num_envs``, ``d`` the observation size, ``H =
    sum(hidden)``, ``A`` the actions and ``B = min(32, T)`` the rows of one
    block of the learning pass::

        8 P               parameters, the optimizer's two moments, and the update's
                          working copies (gradient, block gradient, updates, new
                          parameters, the kept old ones)
        T N (d + 6)       the rollout's buffers and the learning pass's per-step
                          arrays: observation, action, reward, return, mask,
                          weight, alive (0/1 observations are stored in one
                          byte each, so this overestimates them)
        3 B N (H + A)     one block's activations, forward and backward

    plus, with ``baseline="value"``, the same for ``V(s)``'s network (its
    ``P_V`` parameters, ``H_V`` hidden units, one output) and its ``T N``
    predictions: ``8 P_V + T N + 3 B N (H_V + 1)``.

    times ``num_seeds``: one call holds every seed, as on a GPU (on a CPU the
    runner trains them in smaller calls, so this overestimates there). The
    per-iteration metric history (24 bytes per seed and iteration) grows as
    the run goes and is not counted.
    """
    return _training_bytes(config, *_check_env(config.env))


def _check_sizes(config: "Config", obs_dim: int, n_actions: int, max_steps: int) -> None:
    """Refuses shapes that overflow int32 (whatever the machine)."""
    for fan_in, fan_out in _layer_shapes(obs_dim, config.hidden, n_actions):
        if fan_in * fan_out > INT32_MAX:
            _fail("hidden", config.hidden,
                  f"layer widths whose weight matrices hold at most {INT32_MAX} numbers each (an int32 array size; "
                  f"with {obs_dim} observations and {n_actions} actions here, a {fan_in} x {fan_out} layer holds "
                  f"{fan_in * fan_out})")
    window = config.rollout_steps or max_steps
    if config.num_envs * window > INT32_MAX:
        raise ValueError(
            f"num_envs x rollout window (--num-envs x --rollout-steps, default the episode limit) must be at most "
            f"{INT32_MAX} (one iteration's environment steps are counted in int32); got "
            f"{config.num_envs} x {window} = {config.num_envs * window}")


def check_training_memory(config: "Config") -> None:
    """Refuses, in one line, a run whose :func:`training_memory_bytes` exceed :func:`memory_budget_bytes`.

    Not part of :class:`Config`'s own validation, which does not depend on
    the machine (a checkpoint made on a big machine still loads on a small
    one); :func:`jax_reinforce.train_run` calls it before any work.

    Raises:
      ValueError: how much the run would need, what this machine has and what fits.
    """
    budget = memory_budget_bytes()
    if budget is None:
        return
    obs_dim, n_actions, max_steps = _check_env(config.env)
    window = config.rollout_steps or max_steps
    need = _training_bytes(config, obs_dim, n_actions, max_steps)
    if need <= budget:
        return
    fit = budget // (need // config.num_agents) // config.num_settings  # seeds per setting
    sweep = f" in each of {config.num_settings} settings" if config.num_settings > 1 else ""
    shape = (f"{config.num_seeds} seeds{sweep} x {config.num_envs} environments x a {window}-step window, "
             f"hidden {config.hidden}")
    what_fits = (f"at most {fit} seed{'s' if fit > 1 else ''} of this shape fit (--num-seeds)" if fit else
                 "not even one seed of this shape fits: use fewer --num-envs, a shorter --rollout-steps or "
                 "a smaller --hidden")
    raise ValueError(f"training {shape} would need about {format_bytes(need)} of memory; this machine has "
                     f"{format_bytes(budget)}: {what_fits}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of a REINFORCE run.

    Every field but ``env`` that is not given takes the environment's
    default: :func:`jax_reinforce.env_defaults.defaults_for` (one table,
    chosen by measurement; CartPole-v1's setting where an environment has
    none). ``Config(env="Acrobot-v1").learning_rate`` is Acrobot-v1's
    learning rate; :attr:`given_fields` says which fields were given, and
    :meth:`replace` keeps the others following the environment.
    :meth:`to_dict` (what a run stores) holds the resolved values.

    Attributes:
      env: a gymnax environment name (``"CartPole-v1"``, ``"Acrobot-v1"``,
        ``"Pendulum-v1"``, ``"Breakout-MinAtar"``, ...; every one but
        MNISTBandit-bsuite).
      hidden: widths of the policy's hidden layers; ``(8,)`` is the seed's 4-8-2.
      num_envs: environments per agent, each running one episode per iteration.
      num_seeds: independent agents trained at once (vmapped), per setting of a sweep.
      iterations: maximum number of policy updates.
      learning_rate: optimizer step size.
      optimizer: ``"adam"``, ``"sgd"`` or ``"rmsprop"`` (optax).
      gamma: discount factor in ``[0, 1]``.
      entropy_coef: weight of the entropy bonus, ``>= 0``.
      max_grad_norm: clip the global gradient norm to this, or ``None``.

      Each of ``learning_rate``, ``gamma``, ``entropy_coef`` and
      ``max_grad_norm`` (:data:`SWEEPABLE`) may instead hold a tuple of
      distinct values: a sweep. Every combination (:meth:`settings`) times
      ``num_seeds`` agents trains in one compiled program, and agent ``i`` of
      a setting equals the agent trained alone with that setting and seed ``i``.
      baseline: ``"none"``, ``"mean"``, ``"normalize"`` (returns centred and
        scaled per batch) or ``"value"`` (a learned state value ``V(s)``
        subtracted: REINFORCE with baseline).
      value_hidden: hidden widths of ``V(s)``'s network (``baseline="value"``).
      value_learning_rate: its optimizer's step size; ``V`` is fitted to the
        reward-to-go in the same update as the policy, with the policy's
        optimizer (unclipped).
      normalize_advantages: with ``baseline="value"``, the weights ``G - V(s)``
        are centred and scaled per batch (as ``"normalize"`` does the returns).
      grad: ``"autodiff"`` (``jax.grad``) or ``"manual"`` (the hand-derived
        gradient, :func:`jax_reinforce.reinforce_grad_manual`).
      seed: the root seed; agent ``i`` uses ``fold_in(PRNGKey(seed), i)``.
      rollout_steps: the rollout window, ``None`` for the episode limit.
      stop_when_solved: freeze an agent once it is solved (its last 100 or
        more training episodes average at least the solve threshold) and stop
        when all are; ``False`` always runs ``iterations`` updates.
    """

    env: str = "CartPole-v1"
    hidden: tuple[int, ...] = UNSET
    num_envs: int = UNSET
    num_seeds: int = UNSET
    iterations: int = UNSET
    learning_rate: float | tuple[float, ...] = UNSET
    optimizer: str = UNSET
    gamma: float | tuple[float, ...] = UNSET
    entropy_coef: float | tuple[float, ...] = UNSET
    max_grad_norm: float | None | tuple[float | None, ...] = UNSET
    baseline: str = UNSET
    value_hidden: tuple[int, ...] = UNSET
    value_learning_rate: float = UNSET
    normalize_advantages: bool = UNSET
    grad: str = UNSET
    seed: int = UNSET
    rollout_steps: int | None = UNSET
    stop_when_solved: bool = UNSET

    def __post_init__(self):
        if not isinstance(self.env, str) or not self.env.strip():
            _fail("env", self.env)
        # A field not given takes the environment's default (jax_reinforce.env_defaults).
        from jax_reinforce.env_defaults import defaults_for

        defaults = defaults_for(self.env)
        unset = frozenset(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is UNSET)
        for field in unset:
            object.__setattr__(self, field, defaults[field])
        object.__setattr__(self, "_unset", unset)
        for field in ("hidden", "value_hidden"):
            widths = getattr(self, field)
            if isinstance(widths, list):
                widths = tuple(widths)
                object.__setattr__(self, field, widths)
            if not isinstance(widths, tuple) or not all(_is_int(h) and 1 <= h <= INT32_MAX for h in widths):
                _fail(field, getattr(self, field))
        for field in ("num_envs", "num_seeds", "iterations"):
            value = getattr(self, field)
            if not _is_int(value) or not 1 <= value <= INT32_MAX:
                _fail(field, value)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            _fail("seed", self.seed)
        for field in SWEEPABLE:
            value = getattr(self, field)
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(value, tuple):
                if not value:
                    _fail(field, value, f"{ALLOWED[field]}, or a non-empty list of such values (a sweep)")
                if len(set(value)) != len(value):
                    _fail(field, value, f"a list of distinct values (a sweep), each {ALLOWED[field]}")
                for v in value:
                    _check_hyperparameter(field, v)
                if len(value) == 1:
                    value = value[0]  # one value is no sweep
                object.__setattr__(self, field, value)
            else:
                _check_hyperparameter(field, value)
        for field, allowed in (("optimizer", OPTIMIZERS), ("grad", GRADIENTS), ("baseline", BASELINES)):
            if getattr(self, field) not in allowed:
                _fail(field, getattr(self, field))
        if self.rollout_steps is not None and (
            not _is_int(self.rollout_steps) or not 1 <= self.rollout_steps <= INT32_MAX
        ):
            _fail("rollout_steps", self.rollout_steps)
        if not _is_real(self.value_learning_rate) or self.value_learning_rate <= 0:
            _fail("value_learning_rate", self.value_learning_rate)
        _check_float32("value_learning_rate", self.value_learning_rate, zero_ok=False)
        for field in ("stop_when_solved", "normalize_advantages"):
            if not isinstance(getattr(self, field), bool):
                _fail(field, getattr(self, field))
        # Last: it may load gymnax, and every cheaper mistake is reported first.
        _check_sizes(self, *_check_env(self.env))

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
            if isinstance(text, str) and "," in text and field not in (*SWEEPABLE, "hidden", "value_hidden"):
                raise ValueError(
                    f"{field} ({flag_of(field)}) takes one value: it shapes the compiled program, so it cannot be "
                    f"swept (only {', '.join(flag_of(f) for f in SWEEPABLE)} take comma-separated lists); "
                    f"got {text!r}")
            try:
                if isinstance(text, str) and field in SWEEPABLE and "," in text:
                    values[field] = tuple(parsers[field](part) for part in text.split(","))
                    continue
                values[field] = parsers[field](text) if isinstance(text, str) else text
            except ValueError as error:
                if str(error).startswith(f"{field} ("):  # the parser's own message for this field
                    raise
                raise config_error(field, text) from None
            except KeyError:
                raise config_error(field, text) from None
        return cls(**values)

    @property
    def swept(self) -> tuple[str, ...]:
        """The fields given several values (a sweep), in :data:`SWEEPABLE` order."""
        return tuple(f for f in SWEEPABLE if isinstance(getattr(self, f), tuple))

    def settings(self) -> list[dict]:
        """Every combination of the swept values: ``[{field: value} for each of SWEEPABLE]``.

        The product in :data:`SWEEPABLE` order, the last field varying
        fastest; one setting when nothing is swept.
        """
        values = [getattr(self, f) if isinstance(getattr(self, f), tuple) else (getattr(self, f),)
                  for f in SWEEPABLE]
        return [dict(zip(SWEEPABLE, combination)) for combination in itertools.product(*values)]

    @property
    def num_settings(self) -> int:
        """How many settings the sweep holds (1 without a sweep)."""
        return math.prod(len(getattr(self, f)) for f in self.swept)

    @property
    def num_agents(self) -> int:
        """``num_settings * num_seeds``: agent ``a`` is seed ``a % num_seeds`` of setting ``a // num_seeds``."""
        return self.num_settings * self.num_seeds

    def to_dict(self) -> dict:
        """A JSON-ready dict (``hidden`` and swept fields as lists)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["value_hidden"] = list(self.value_hidden)
        for field in self.swept:
            d[field] = list(getattr(self, field))
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
        for field in ("hidden", "value_hidden", *SWEEPABLE):
            if isinstance(d.get(field), list):
                d[field] = tuple(d[field])
        return cls(**d)

    @property
    def given_fields(self) -> frozenset[str]:
        """The fields given explicitly; the others hold the environment's defaults (:mod:`jax_reinforce.env_defaults`)."""
        return frozenset(f.name for f in dataclasses.fields(self)) - self._unset

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again).

        The fields not given stay not given: ``Config().replace(env="Acrobot-v1")``
        takes Acrobot-v1's defaults, as ``Config(env="Acrobot-v1")`` does
        (``dataclasses.replace`` would keep CartPole's values instead).
        """
        given = {field: getattr(self, field) for field in self.given_fields}
        return type(self)(**{**given, **changes})
