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
memory (:mod:`jax_reinforce.harness.memory`, checked by :func:`jax_reinforce.train_run`, not by :class:`Config`,
whose validation does not depend on the machine), so that a run that cannot work is refused in one line before any work.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from typing import Any

from jax_reinforce.core.env_defaults import defaults_for
from jax_reinforce.core.envs import CARTPOLE_MAX_STEPS, CARTPOLE_NAMES, EnvSpec, make_env
from jax_reinforce.core.policies import BUILT_IN_NETWORKS, Policy, policy_name, resolve_policy

__all__ = ["Config", "OPTIMIZERS", "GRADIENTS", "BASELINES", "FLAG_NAMES", "ALLOWED", "FLAGS", "FieldFlag",
           "config_error", "flag_of", "DEFAULT_ENV", "INT32_MAX", "FLOAT32_MAX", "FLOAT32_TINY", "SWEEPABLE", "UNSET", "env_sizes", "env_spec_of",
           "layer_shapes", "plain_number", "parse_int"]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
GRADIENTS = ("autodiff", "manual")
BASELINES = ("none", "mean", "normalize", "value")

# The environment of a Config that names none.
DEFAULT_ENV = "CartPole-v1"
# Counts and widths become array shapes and int32 counters.
INT32_MAX = 2**31 - 1
# float32, which the trainer computes in: its largest finite number, and its smallest normal one
# (XLA on the CPU flushes the smaller, subnormal numbers to zero).
FLOAT32_MAX = (2 - 2**-23) * 2.0**127
FLOAT32_TINY = 2.0**-126
# gymnax's CartPole, as jax_reinforce.core.envs.make_env describes it (observation size, actions), known here
# without importing JAX; tests/harness/test_reliability_bounds.py checks the two agree.
_CARTPOLE_SIZES = (4, 2)

class _Unset:
    """The default of every :class:`Config` field but ``env``: replaced by the environment's default."""

    def __repr__(self):
        return "UNSET"


# A Config field left at UNSET takes its environment's default (jax_reinforce.core.env_defaults.defaults_for).
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


def parse_int(text: str) -> int:
    """The integer ``text`` spells in ASCII digits, with an optional sign and spaces around: every integer flag's
    parser. ``ValueError`` for anything else, including what ``int()`` alone would take or trip on (``'²'``,
    whose ``isdigit()`` is true, ``'١٢'``, ``'1_000'``)."""
    if not isinstance(text, str) or not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def _parse_widths(field: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            return tuple(parse_int(p) for p in text.split(","))
        except ValueError:
            raise config_error(field, text, "comma-separated layer widths, each an integer >= 1 (e.g. 8 or 64,64)") from None

    return parse



def _parse_optional(convert):
    def parse(text: str):
        return None if text.strip().lower() == "none" else convert(text)

    return parse


def _parse_bool(text: str) -> bool:
    return {"true": True, "false": False}[text.strip().lower()]


def _parse_env_params(text: str) -> dict:
    """``"gravity=20,length=0.8"`` -> ``{"gravity": 20.0, "length": 0.8}`` (``true``/``false`` for booleans)."""
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise config_error("env_params", text, "comma-separated key=value pairs, e.g. gravity=20,length=0.8")
        value = value.strip()
        low = value.lower()
        try:
            out[key.strip()] = {"true": True, "false": False}[low] if low in ("true", "false") else (
                parse_int(value) if re.fullmatch(r"[+-]?[0-9]+", value) else float(value))
        except ValueError:
            raise config_error("env_params", text, f"numbers or true/false as values; {key.strip()}={value!r} "
                                                   f"is neither") from None
    return out


@dataclasses.dataclass(frozen=True)
class FieldFlag:
    """How a :class:`Config` field appears on the command line (read from the field's metadata, see :func:`_field`).

    Attributes:
      field: the field's name.
      parse: text -> value (``ValueError`` for bad text; :class:`Config` checks the value).
      help: the flag's help text.
      allowed: what the field allows, in the words of every error message about it.
      flag: the command-line flag (``--lr`` for ``learning_rate``, else ``--field-name``).
      sweepable: whether the field is a continuous hyper-parameter that a
        sweep may give several values (no shape or program depends on it).
    """

    field: str
    parse: Any
    help: str
    allowed: str
    flag: str
    sweepable: bool = False


def _field(parse, help: str, allowed: str, *, flag: str | None = None, sweepable: bool = False, default=None):
    """A :class:`Config` field whose command-line flag, help, allowed values and sweepability are written beside it."""
    return dataclasses.field(default=UNSET if default is None else default, metadata={
        "parse": parse, "help": help, "allowed": allowed, "flag": flag, "sweepable": sweepable})


def _fail(field: str, value: Any, allowed: str | None = None):
    raise config_error(field, value, allowed)




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


def plain_number(value):
    """``value`` with every NumPy scalar in it (``np.float32(0.1)``, ``np.int64(8)``, ``np.bool_(True)``, also inside
    lists, tuples and dicts) replaced by the Python number it holds exactly (``0.10000000149011612``, ``8``,
    ``True``); anything else as it is. NumPy scalars are numbers: accepted wherever Python numbers are."""
    if isinstance(value, (list, tuple)):
        return type(value)(plain_number(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_number(v) for k, v in value.items()}
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:  # the scripts load this before NumPy
        return value.item()
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond every float
        return False


def env_spec_of(config: "Config"):
    """The run's :class:`~jax_reinforce.core.envs.EnvSpec`: ``config.env`` with its ``env_params`` and ``solve_threshold``.

    The spec :class:`Config` was given (an environment object) when it was, else made by name (once per process).
    """
    spec = getattr(config, "_env_spec", None)
    if spec is not None:
        return spec
    return make_env(config.env, config.env_params or None, solve_threshold=config.solve_threshold)


def env_sizes(config: "Config") -> tuple[int, int, int]:
    """``(obs_dim, n_actions, max_steps)`` of the config's environment; refuses one the trainer cannot run.

    CartPole with its own physics is known without loading anything; any other environment is made
    (:func:`env_spec_of`). Raises ``ValueError`` naming ``env`` or ``env_params`` and what is allowed.
    """
    if config.env in CARTPOLE_NAMES and not config.env_params and getattr(config, "_env_spec", None) is None:
        return (*_CARTPOLE_SIZES, CARTPOLE_MAX_STEPS[config.env])
    try:
        spec = env_spec_of(config)
    except Exception as error:  # noqa: BLE001 - any failure to load is a bad name here
        message = str(error)
        if message.startswith("env_params: "):
            raise ValueError(f"env_params (--env-params): {message[len('env_params: '):]}") from None
        raise ValueError(f"env (--env): {message.removeprefix('env ') or type(error).__name__}") from None
    return spec.obs_dim, spec.n_actions, spec.max_steps


def _check_env_params(value) -> dict:
    """A copy of ``env_params`` if it is a dict of field names to plain values (numbers, bools, lists of numbers)."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        return isinstance(v, bool) or _is_real(v)

    if not isinstance(value, dict) or not all(isinstance(k, str) and plain(v) for k, v in value.items()):
        _fail("env_params", value)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}


def _check_float32(field: str, value: float, zero_ok: bool, high: float = FLOAT32_MAX) -> None:
    """Refuses a value (already in the field's range) that float32 would compute as 0 or inf."""
    if (value == 0 and zero_ok) or FLOAT32_TINY <= value <= high:
        return
    span = f"{'0 or ' if zero_ok else ''}in [{FLOAT32_TINY:.8g}, {high:.8g}]"
    why = "smaller numbers compute as 0" + (", larger as inf" if high == FLOAT32_MAX else "")
    _fail(field, value, f"{ALLOWED[field]} that float32 holds, {span} ({why})")


def layer_shapes(obs_dim: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    """``[(fan_in, fan_out), ...]`` of an MLP from ``obs_dim`` inputs through ``hidden`` to ``n_out`` outputs."""
    widths = (obs_dim, *hidden, n_out)
    return list(zip(widths[:-1], widths[1:]))


def _check_sizes(config: "Config", obs_dim: int, n_actions: int, max_steps: int) -> None:
    """Refuses shapes that overflow int32 (whatever the machine)."""
    for fan_in, fan_out in layer_shapes(obs_dim, config.hidden, n_actions):
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


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of a REINFORCE run.

    Every field but ``env`` that is not given takes the environment's
    default: :func:`jax_reinforce.core.env_defaults.defaults_for` (one table,
    chosen by measurement; CartPole-v1's setting where an environment has
    none). ``Config(env="Acrobot-v1").learning_rate`` is Acrobot-v1's
    learning rate; :attr:`given_fields` says which fields were given, and
    :meth:`replace` keeps the others following the environment.
    :meth:`to_dict` (what a run stores) holds the resolved values.

    Each field's meaning, command-line flag and allowed values are written beside it (:func:`_field`; the
    table in ``docs/cli.md`` is generated from them). ``learning_rate``, ``gamma``, ``entropy_coef`` and
    ``max_grad_norm`` (:data:`SWEEPABLE`) may each hold a tuple of distinct values instead: a sweep. Every
    combination (:meth:`settings`) times ``num_seeds`` agents trains in one compiled program, and agent ``i`` of
    a setting equals the agent trained alone with that setting and seed ``i``. A solve (``stop_when_solved``):
    an agent's last 100 or more training episodes average the threshold, and then its greedy policy does too.
    """

    env: str = _field(str, "any gymnax environment but MNISTBandit-bsuite: CartPole-v1 (500 steps, solved at 475), "
                      "CartPole-v0 (200 steps, solved at 195), Acrobot-v1, Pendulum-v1, Breakout-MinAtar, ...",
                      "a gymnax environment name such as 'CartPole-v1', an import path 'package.module:ClassName', "
                      "or an environment object", default=DEFAULT_ENV)
    env_params: dict = _field(
        _parse_env_params, "the environment's physics: comma-separated field=value pairs (e.g. gravity=20,length=0.8)"
        ", the fields that differ from its defaults", "a dict of the environment's parameter fields to numbers")
    solve_threshold: float | None = _field(
        _parse_optional(float), "mean return over 100 episodes that counts as solved ('none': the environment's "
        "standard threshold where one exists)", "None or a finite number")
    hidden: tuple[int, ...] = _field(
        _parse_widths("hidden"), "hidden layer widths: 8 (the seed program's 4-8-2 network), 64,64, ...",
        f"a tuple of layer widths, each an integer in [1, {INT32_MAX}] (e.g. (8,) or (64, 64))")
    num_envs: int = _field(parse_int, "environments per agent; each runs one complete episode per iteration",
                           f"an integer in [1, {INT32_MAX}]")
    num_seeds: int = _field(parse_int, "agents trained at once (vmapped), per setting of a sweep", f"an integer in [1, {INT32_MAX}]")
    iterations: int = _field(parse_int, "most policy updates per agent", f"an integer in [1, {INT32_MAX}]")
    learning_rate: float | tuple[float, ...] = _field(
        float, "learning rate (a comma-separated list sweeps it)", "a finite number > 0", flag="--lr", sweepable=True)
    optimizer: str = _field(str, "adam, sgd or rmsprop (optax)", "one of " + ", ".join(OPTIMIZERS))
    gamma: float | tuple[float, ...] = _field(float, "discount factor (a list sweeps it)", "a number in [0, 1]",
                                              sweepable=True)
    entropy_coef: float | tuple[float, ...] = _field(float, "entropy bonus weight (a list sweeps it)",
                                                     "a finite number >= 0", sweepable=True)
    max_grad_norm: float | None | tuple[float | None, ...] = _field(
        _parse_optional(float), "clip the global gradient norm ('none' to disable; a list sweeps it)",
        "None or a finite number > 0", sweepable=True)
    baseline: str = _field(
        str, "none, mean (subtract the batch mean return), normalize (also divide by its standard deviation) or "
        "value (subtract a learned V(s): REINFORCE with baseline)", "one of " + ", ".join(BASELINES))
    value_hidden: tuple[int, ...] = _field(
        _parse_widths("value_hidden"), "hidden layer widths of --baseline value's V(s)",
        f"a tuple of layer widths, each an integer in [1, {INT32_MAX}] (e.g. (64, 64))")
    value_learning_rate: float = _field(
        float, "learning rate of V(s), fitted to the reward-to-go in the same update as the policy (unclipped)",
        "a finite number > 0", flag="--value-lr")
    normalize_advantages: bool = _field(_parse_bool, "with --baseline value: centre and scale G - V(s) per batch",
                                        "True or False")
    grad: str = _field(str, "autodiff (jax.grad) or manual (the hand-derived gradient)",
                       "one of " + ", ".join(GRADIENTS))
    seed: int = _field(parse_int, "root seed; agent i uses fold_in(PRNGKey(seed), i), the same alone or among many",
                       "an integer in [0, 2**32)")
    rollout_steps: int | None = _field(
        _parse_optional(parse_int), "rollout window (default: the episode limit); an episode still running at its end is "
        "never learned from", f"None or an integer in [1, {INT32_MAX}]")
    network: str = _field(
        str, "the policy network: mlp (the default; its gradient is also derived by hand), cnn (a small "
        "convolutional torso for image observations, then --hidden dense layers) or an import path "
        "package.module:attr naming a jax_reinforce.Policy", "'mlp', 'cnn' or an import path 'package.module:attr'")
    stop_when_solved: bool = _field(
        _parse_bool, "freeze each agent once solved (its training episodes and then its greedy policy reach the "
        "threshold), stop when all are", "True or False")

    def __post_init__(self):
        for field in dataclasses.fields(self):  # NumPy scalars as the Python numbers they hold
            if field.name not in ("env", "network"):  # objects, kept as given
                object.__setattr__(self, field.name, plain_number(getattr(self, field.name)))
        if not isinstance(self.env, str):  # an environment object (or its EnvSpec): its spec is kept with the config
            spec = self.env if isinstance(self.env, EnvSpec) else make_env(
                self.env, None if self.env_params is UNSET else _check_env_params(self.env_params),
                solve_threshold=None if self.solve_threshold is UNSET else self.solve_threshold)
            object.__setattr__(self, "env", spec.name)
            object.__setattr__(self, "_env_spec", spec)
            if self.env_params is UNSET or isinstance(self.env, EnvSpec):
                object.__setattr__(self, "env_params", spec.env_params_changed)
        if not self.env.strip():
            _fail("env", self.env)
        # A field not given takes the environment's default (jax_reinforce.core.env_defaults); the
        # environment's own physics and standard threshold unless given.
        defaults = {**defaults_for(self.env), "env_params": {}, "solve_threshold": None, "network": "mlp"}
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
        object.__setattr__(self, "env_params", _check_env_params(self.env_params))
        if isinstance(self.network, Policy):  # a Policy object: kept with the config, recorded by its name
            object.__setattr__(self, "_policy", self.network)
            object.__setattr__(self, "network", policy_name(self.network))
        elif not isinstance(self.network, str) or not (self.network in BUILT_IN_NETWORKS or ":" in self.network):
            _fail("network", self.network)
        elif ":" in self.network:  # an import path must give a Policy, before any work
            try:
                resolve_policy(self.network)
            except ValueError as error:
                raise ValueError(f"network (--network): {error}") from None
        if self.network != "mlp" and self.grad == "manual":
            _fail("grad", self.grad, f"'autodiff' with network={self.network!r}: the hand-derived gradient is the "
                                     f"MLP's (network='mlp')")
        if self.solve_threshold is not None and not _is_real(self.solve_threshold):
            _fail("solve_threshold", self.solve_threshold)
        # Last: it may load gymnax, and every cheaper mistake is reported first.
        _check_sizes(self, *env_sizes(self))

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
            if isinstance(text, str) and "," in text and field not in (*SWEEPABLE, "hidden", "value_hidden",
                                                                       "env_params"):
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
        """A JSON-ready dict (``hidden`` and swept fields as lists); ``"env_importable": False`` for an environment
        object whose class cannot be imported by path (its run needs the spec passed again)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["value_hidden"] = list(self.value_hidden)
        for field in self.swept:
            d[field] = list(getattr(self, field))
        if not getattr(getattr(self, "_env_spec", None), "importable", True):
            d["env_importable"] = False
        if self.network not in BUILT_IN_NETWORKS and ":" not in self.network:
            d["network_importable"] = False
        return d

    @classmethod
    def from_dict(cls, d: dict, env_spec=None, policy=None) -> "Config":
        """The inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        ``env_spec``: the :class:`~jax_reinforce.core.envs.EnvSpec` of a config whose environment is not
        importable (``"env_importable": False``), which must then be passed (its name must match); ignored
        otherwise unless given. ``policy``: likewise, the :class:`~jax_reinforce.Policy` of a config whose
        network is not importable (``"network_importable": False``).
        """
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object of fields; got {type(d).__name__}")
        d = dict(d)
        importable = d.pop("env_importable", True)
        network_importable = d.pop("network_importable", True)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; allowed: {sorted(known)}")
        for field in ("hidden", "value_hidden", *SWEEPABLE):
            if isinstance(d.get(field), list):
                d[field] = tuple(d[field])
        if env_spec is None and importable is False:
            raise ValueError(f"the environment {d.get('env')!r} of this run is an object whose class cannot be "
                             f"imported by path: pass its spec again (env_spec=jax_reinforce.make_env(<the object>))")
        if policy is None and network_importable is False:
            raise ValueError(f"the network {d.get('network')!r} of this run is a Policy with no import path: pass "
                             f"it again (policy=...)")
        if policy is not None:
            d["network"] = policy
        if env_spec is not None:
            if env_spec.name != d.get("env"):
                raise ValueError(f"env_spec is {env_spec.name!r} but this run's environment is {d.get('env')!r}")
            d["env"] = env_spec
        return cls(**d)

    @property
    def attached_policy(self):
        """The :class:`~jax_reinforce.Policy` this config was given as ``network`` (an object), or ``None``."""
        return getattr(self, "_policy", None)

    @property
    def attached_env_spec(self):
        """The :class:`~jax_reinforce.core.envs.EnvSpec` this config was given as ``env`` (an object), or ``None``."""
        return getattr(self, "_env_spec", None)

    @property
    def given_fields(self) -> frozenset[str]:
        """The fields given explicitly; the others hold the environment's defaults (:mod:`jax_reinforce.core.env_defaults`)."""
        return frozenset(f.name for f in dataclasses.fields(self)) - self._unset

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again).

        The fields not given stay not given: ``Config().replace(env="Acrobot-v1")``
        takes Acrobot-v1's defaults, as ``Config(env="Acrobot-v1")`` does
        (``dataclasses.replace`` would keep CartPole's values instead).
        """
        given = {field: getattr(self, field) for field in self.given_fields}
        spec = getattr(self, "_env_spec", None)
        if spec is not None and "env" not in changes:  # keep the environment object (and its physics)
            given["env"] = spec
            given.pop("env_params", None) if "env_params" in changes else None
        if self.attached_policy is not None and "network" not in changes:
            given["network"] = self.attached_policy
        return type(self)(**{**given, **changes})


# Every Config field's flag, in Config's order: the one table the command line is built from.
FLAGS = tuple(FieldFlag(f.name, f.metadata["parse"], f.metadata["help"], f.metadata["allowed"],
                        f.metadata["flag"] or "--" + f.name.replace("_", "-"), f.metadata["sweepable"])
              for f in dataclasses.fields(Config))
# The command-line flag of each field, where it is not --field-name.
FLAG_NAMES = {f.field: f.flag for f in FLAGS if f.flag != "--" + f.field.replace("_", "-")}
# What each field allows, in the words of every error message about it.
ALLOWED = {f.field: f.allowed for f in FLAGS}
# The continuous hyper-parameters: traced inputs of every compiled program, so a field may hold a
# list of values (a sweep: every combination, times num_seeds, trains in one program).
SWEEPABLE = tuple(f.field for f in FLAGS if f.sweepable)
