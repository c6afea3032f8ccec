"""Memory budgets: what a run would need, what this machine has, and a one-line refusal when it does not fit.

:func:`training_memory_bytes` estimates a training run from its :class:`~jax_reinforce.Config`;
:func:`check_training_memory` refuses one that exceeds :func:`memory_budget_bytes` (this machine's physical
memory). Kept apart from :class:`~jax_reinforce.Config`, whose validation does not depend on the machine: a
checkpoint made on a big machine still loads on a small one.
"""

from __future__ import annotations

import math
import os

from jax_reinforce.core.config import Config, env_sizes, env_spec_of, flag_of, layer_shapes

__all__ = ["format_bytes", "memory_budget_bytes", "training_memory_bytes", "check_training_memory", "network_size"]


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


def network_size(config: "Config", obs_dim: int, n_actions: int) -> tuple[int, int]:
    """``(P, H)``: the policy network's parameters and its activations per sample.

    The MLP's ``P = sum (fan_in + 1) fan_out`` and ``H = sum(hidden)``; the CNN's parameters and its feature
    maps (``H x W`` per channel) plus ``sum(hidden)``; another network's parameters (from its ``init``, shapes
    only) and, knowing nothing of its insides, its input as its activations.
    """
    if config.network == "mlp" and config.attached_policy is None:
        params = sum((fan_in + 1) * fan_out for fan_in, fan_out in layer_shapes(obs_dim, config.hidden, n_actions))
        return params, sum(config.hidden)
    import jax  # lazy: only another network than the MLP needs its shapes traced

    from jax_reinforce.core.policies import resolve_policy  # lazy: loads JAX, as above

    spec = env_spec_of(config)
    policy = resolve_policy(config.attached_policy or config.network, config.hidden)
    shapes = jax.eval_shape(lambda key: policy.init(key, spec.input_shape, n_actions),
                            jax.ShapeDtypeStruct((2,), "uint32"))
    params = sum(int(math.prod(x.shape)) for x in jax.tree.leaves(shapes))
    if config.network == "cnn":
        channels = sum(layer["w"].shape[-1] for layer in shapes["conv"])
        return params, math.prod(spec.input_shape[:2]) * channels + sum(config.hidden)
    return params, obs_dim


def _training_bytes(config: "Config", obs_dim: int, n_actions: int, max_steps: int) -> int:
    window = config.rollout_steps or max_steps
    params, hidden = network_size(config, obs_dim, n_actions)
    block = min(32, window)  # jax_reinforce.core.training.BLOCK_ROWS
    words = (8 * params + window * config.num_envs * (obs_dim + 6)
             + 3 * block * config.num_envs * (hidden + n_actions))
    if config.baseline == "value":  # V(s): its parameters as the policy's, its predictions, one block's activations
        value_params = sum((fan_in + 1) * fan_out for fan_in, fan_out in layer_shapes(obs_dim, config.value_hidden, 1))
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
    return _training_bytes(config, *env_sizes(config))


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
    obs_dim, n_actions, max_steps = env_sizes(config)
    window = config.rollout_steps or max_steps
    need = _training_bytes(config, obs_dim, n_actions, max_steps)
    if need <= budget:
        return
    per_agent = need // config.num_agents
    sweep = f" in each of {config.num_settings} settings" if config.num_settings > 1 else ""
    shape = (f"{config.num_seeds} seeds{sweep} x {config.num_envs} environments x a {window}-step window, "
             f"hidden {config.hidden}")
    raise ValueError(f"training {shape} would need about {format_bytes(need)} of memory; this machine has "
                     f"{format_bytes(budget)}: {_what_fits(config, budget // per_agent)}")


def _what_fits(config: "Config", agents: int) -> str:
    """What to change so that ``agents`` agents of this shape (the most that fit) are enough, in words."""
    if not agents:
        return ("not even one seed of this shape fits: use fewer --num-envs, a shorter --rollout-steps or "
                "a smaller --hidden")
    seeds = agents // config.num_settings  # per setting
    if seeds:
        return f"at most {seeds} seed{'s' if seeds > 1 else ''} of this shape fit (--num-seeds)"
    swept = " x ".join(f"{len(getattr(config, f))} values of {flag_of(f)}" for f in config.swept)
    settings = agents // config.num_seeds
    fits = (f"at most {settings} setting{'s' if settings > 1 else ''} of {config.num_seeds} seeds fit" if settings
            else f"at most {agents} agents fit in all, fewer than --num-seeds {config.num_seeds}")
    return f"the {config.num_settings} settings ({swept}) are the problem: {fits}; sweep fewer values"
