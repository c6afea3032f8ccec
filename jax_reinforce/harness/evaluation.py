"""Evaluating trained policies: greedy episodes in gymnax and in gymnasium.

Two independent implementations of each classic-control environment judge the
same parameters: gymnax's (JAX, the one the agent trained in) and gymnasium's
(NumPy, the reference implementation; :data:`GYMNASIUM_EVAL_ENVS`). A policy
that only exploited a quirk of one would fail in the other.

Greedy means ``argmax_a logits`` for discrete actions and, for a Gaussian
policy over a ``Box`` of actions (the network's output is the mean, the last
layer also holds ``"log_std": (A,)``), the mean clipped to the action bounds:
the log standard deviation plays no part.

:func:`render_episode` plays one greedy episode in gymnasium and returns its
frames, drawn by :mod:`jax_reinforce.harness.render`, for an animated GIF
(:func:`jax_reinforce.harness.reporting.write_gif`).
"""

from __future__ import annotations

import time

import numpy as np

from jax_reinforce.core.config import INT32_MAX, env_spec_of
from jax_reinforce.core.envs import describe_env
from jax_reinforce.harness import memory
from jax_reinforce.harness.compilation import code_digest, compile_program, compiler_options
from jax_reinforce.harness.render import RENDERABLE_ENVS, draw_cartpole, draw_frame

__all__ = [
    "check_evaluation_size",
    "policy_evaluation_program",
    "gymnasium_unavailable_reason",
    "evaluation_memory_bytes",
    "evaluate_gymnax",
    "gymnax_evaluation_program",
    "evaluate_gymnasium",
    "evaluate_policies",
    "best_seed",
    "numpy_policy_logits",
    "render_episode",
    "render_unavailable_reason",
    "draw_cartpole",  # jax_reinforce.harness.render's, importable from here too, where it was
    "GYMNASIUM_EVAL_ENVS",
]

# Environments with a gymnasium twin evaluated by :func:`evaluate_gymnasium`. gymnax 1.0.1 and
# gymnasium 1.x agree on each one's observation layout, actions, rewards and episode limit (CartPole
# 200 / 500, Acrobot 500, MountainCar 200, MountainCarContinuous 999, Pendulum 200 steps); stepped from
# the same state they give the same observations to float32 rounding (gymnax computes in float32,
# gymnasium mostly in float64), with one exception: in MountainCarContinuous-v0 gymnax stops a car
# moving left at the goal (position >= 0.45, which never happens) instead of at the left wall
# (position -1.2): there its car keeps its leftward speed, gymnasium's stops.
GYMNASIUM_EVAL_ENVS = (
    "CartPole-v0", "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1",
)
# Seconds between two of evaluate_policies' progress messages.
PROGRESS_EVERY_S = 10.0
# The most environments a sweep's settings are evaluated in at once, in gymnasium (CartPole: one vector environment).
SETTINGS_ENVIRONMENTS = 2**16


def _evaluation_bytes(num_agents: int, num_episodes: int, widths, max_steps: int) -> int:
    d, total = int(widths[0]), sum(int(w) for w in widths)
    return num_agents * num_episodes * (4 * (max_steps + d) + 8 * (2 * total + 8))


def _check_evaluation(num_agents: int, num_episodes, widths, max_steps: int, flag: str = "--episodes",
                      num_settings: int = 1) -> None:
    """Refuses ``num_episodes`` per agent (of ``num_settings`` settings) that this machine's memory cannot hold."""
    name = f"{flag.lstrip('-').replace('-', '_')} ({flag})"
    if not isinstance(num_episodes, (int, np.integer)) or isinstance(num_episodes, bool) or not (
            1 <= int(num_episodes) <= INT32_MAX):
        raise ValueError(f"{name} must be an integer in [1, {INT32_MAX}]; got {num_episodes!r}")
    budget = memory.memory_budget_bytes()
    need = _evaluation_bytes(num_agents, int(num_episodes), widths, max_steps)
    if budget is None or need <= budget:
        return
    fit = budget // _evaluation_bytes(num_agents, 1, widths, max_steps)
    agent = "seed" if num_settings == 1 else "agent"
    agents = (f"{num_agents} seeds" if num_settings == 1 else
              f"{num_agents} agents ({num_settings} settings x {num_agents // num_settings} seeds)")
    what_fits = (f"at most {fit} episodes per {agent} fit" if fit else
                 f"not even one episode per {agent} fits; evaluate fewer "
                 + ("seeds" if num_settings == 1 else "settings or seeds"))
    raise ValueError(
        f"{name} {num_episodes} for {agents} of up to {max_steps} steps would need about "
        f"{memory.format_bytes(need)} of memory to evaluate; this machine has {memory.format_bytes(budget)}: {what_fits}")


def _config_shapes(config):
    spec = env_spec_of(config)
    return config.num_agents, (spec.obs_dim, *config.hidden, spec.n_actions), spec.max_steps


def evaluation_memory_bytes(config, num_episodes: int) -> int:
    """An estimate of the memory, in bytes, that :func:`evaluate_policies` needs for a run of ``config``.

    With ``S = num_agents`` (every seed of every setting), ``E = num_episodes``, ``T`` the episode limit,
    ``d`` the observation size and ``W`` the sum of the policy's layer widths
    (``d + sum(hidden) + actions``)::

        4 S E (T + d)         gymnax's greedy episodes (the reward of every step,
                              and the observation; every seed in one program:
                              :func:`jax_reinforce.core.rollouts.greedy_episodes`)
        8 S E (2 W + 8)       gymnasium's vector environment, in float64: its
                              state, observations, the logits' layers, returns
    """
    num_agents, widths, max_steps = _config_shapes(config)
    return _evaluation_bytes(num_agents, num_episodes, widths, max_steps)


def check_evaluation_size(config, num_episodes: int, flag: str = "--episodes") -> None:
    """Refuses, before any work, an evaluation of ``num_episodes`` per agent that cannot be held.

    ``num_episodes`` must be an integer in ``[1, 2**31 - 1]`` whose
    :func:`evaluation_memory_bytes` fits
    :func:`jax_reinforce.harness.memory.memory_budget_bytes`. :func:`evaluate_policies`
    checks the same itself; call this first where a refusal should come before
    other work (a training run's final evaluation, a script's arguments).
    ``flag``: the command-line flag the message names (``"--eval-episodes"`` for train.py).

    Raises:
      ValueError: one line naming the flag, the memory it would need and what fits.
    """
    num_agents, widths, max_steps = _config_shapes(config)
    _check_evaluation(num_agents, num_episodes, widths, max_steps, flag, config.num_settings)


def evaluate_gymnax(params, env_spec, num_episodes: int, key):
    """Undiscounted returns of greedy episodes in gymnax, for every seed.

    Args:
      params: policy pytree with a leading seed axis ``S``.
      env_spec: :class:`jax_reinforce.core.envs.EnvSpec`.
      num_episodes: ``E`` episodes per seed, from independent resets.
      key: a ``jax.random`` key.

    Returns:
      ``(S, E)`` NumPy float array of episode returns.
    """
    import jax

    num_seeds = jax.tree.leaves(params)[0].shape[0]
    return np.asarray(_start_gymnax_evaluation(params, env_spec, num_episodes, jax.random.split(key, num_seeds)))


def gymnax_evaluation_program(params, env_spec, num_episodes: int):
    """The compiled greedy evaluation of :func:`evaluate_gymnax`, for params shaped like ``params``.

    ``program(params, keys) -> (S, E)`` returns, ``keys`` being ``(S, 2)``
    raw keys, one per seed. Traced once per shape and kept by
    :mod:`jax_reinforce.harness.compilation` when it is on.
    """
    return _evaluation_program(params, env_spec, num_episodes, from_seed=None)


def _evaluation_program(params, env_spec, num_episodes: int, from_seed: int | None, policy=None):
    """The gymnax evaluation, from ``(params, keys)`` or, ``from_seed``, ``(params, seed)``.

    With ``from_seed`` (a period ``P``), agent ``a``'s key ``fold_in(PRNGKey(seed),
    a % P)`` is made inside the program (``seed``: a uint32 scalar).
    """
    import jax

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.rollouts import greedy_episodes

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import agent_keys_from

    def one_seed(p, k):
        return greedy_episodes(p, k, env_spec, num_episodes, policy=policy).returns

    params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.result_type(x)), params)
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    if from_seed:  # the keys of seeds arange(num_seeds) % from_seed (the period of a sweep's seeds)
        def program(p, seed):
            indices = np.arange(num_seeds, dtype=np.uint32) % np.uint32(from_seed)
            return jax.vmap(one_seed)(p, agent_keys_from(seed, indices))

        second = jax.ShapeDtypeStruct((), np.uint32)
    else:
        program = jax.vmap(one_seed)
        second = jax.ShapeDtypeStruct((num_seeds, 2), np.uint32)
    # The trainer's compiler options: on the CPU they compile this program about 40% faster.
    own = code_digest(type(env_spec.env), *(policy[:2] if policy else ()))  # the user's code, if any: None is not cached
    description = None if own is None else (describe_env(env_spec), num_episodes, from_seed, own)
    return compile_program("evaluate_gymnax", description, program, (params, second), None, compiler_options())


def _start_gymnax_evaluation(params, env_spec, num_episodes: int, keys):
    """:func:`evaluate_gymnax`'s ``(S, E)`` returns as a JAX array, dispatched but not waited for.

    ``keys``: ``(S, 2)`` raw keys, one per seed.
    """
    import jax

    keys = np.asarray(keys, np.uint32)
    params = jax.tree.map(np.asarray, params)  # NumPy in: no JAX program runs to stage them
    return gymnax_evaluation_program(params, env_spec, num_episodes)(params, keys)


def numpy_policy_logits(params, obs):
    """``policy_logits`` in NumPy for seed-batched params: the logits, or a Gaussian policy's mean.

    Args:
      params: layers with ``w: (S, fan_in, fan_out)``, ``b: (S, fan_out)``
        (a last layer's ``"log_std"`` is not read).
      obs: ``(S, E, obs_dim)``.

    Returns:
      ``(S, E, A)`` outputs, computed in float64.
    """
    h = np.asarray(obs, np.float64)
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)[:, None, :]
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


def _greedy_actions(outputs, action_space):
    """Greedy actions from ``(..., A)`` outputs: ``argmax`` of the logits, ``(...)``, for a
    ``Discrete`` space; the mean clipped to ``[low, high]``, ``(..., A)``, for a ``Box``."""
    if hasattr(action_space, "n"):
        return np.argmax(outputs, axis=-1)
    return np.clip(outputs, np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64))


def _make_gymnasium_env(env_name: str, **kwargs):
    import warnings

    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CartPole-v0's deprecation notice
        return gym.make(env_name, **kwargs)


def load_gymnasium_evaluation(env_name: str) -> None:
    """Loads gymnasium's implementation of ``env_name`` (its module, its registration) ahead of
    :func:`evaluate_gymnasium`; nothing for an environment without one (:data:`GYMNASIUM_EVAL_ENVS`).

    A run does it while XLA loads its training program (``docs/performance.md``, round 13).
    """
    if env_name in GYMNASIUM_EVAL_ENVS:
        _make_gymnasium_env(env_name).close()


def _gymnasium_sizes(env_name: str):
    """``(obs_dim, A, action_space)`` of gymnasium's ``env_name``: ``A`` actions, or action dimensions of a ``Box``."""
    env = _make_gymnasium_env(env_name)
    try:
        space = env.action_space
        n_actions = int(space.n) if hasattr(space, "n") else int(np.prod(space.shape))
        return int(np.prod(env.observation_space.shape)), n_actions, space
    finally:
        env.close()


def evaluate_gymnasium(params, env_name: str, num_episodes: int, seed: int = 0, period: int | None = None):
    """Undiscounted returns of greedy episodes in gymnasium's own implementation of ``env_name``.

    CartPole runs in ``gymnasium.make_vec(env_name,
    vectorization_mode="vector_entry_point")`` (gymnasium's NumPy
    ``CartPoleVectorEnv``), all ``S * E`` episodes at once, reset once with
    ``seed``. The others have no vector implementation: each episode is a
    ``gymnasium.make(env_name)`` environment (with its time limit), episode
    ``e`` of seed ``s`` reset with ``seed + s * E + e`` (the seeds of
    ``gymnasium.make_vec(..., vectorization_mode="sync")``), played in batches
    of at most 256 per seed; finished episodes are not stepped again.
    Actions are greedy: ``argmax`` of the logits, or the mean clipped to a
    ``Box``'s bounds. Each environment's first episode counts, in full.
    With ``period`` (a sweep's seeds per setting), agent ``a`` plays as seed
    ``a % period`` of a run of ``period`` seeds alone: it meets the starts it
    would meet there (CartPole: the starts gymnasium draws for ``period * E``
    environments, repeated; the others: the reset seeds of seed ``a % period``).

    Args:
      params: policy pytree with a leading seed axis ``S`` (NumPy or JAX arrays);
        for a ``Box`` of actions the outputs are the means (a last layer's
        ``"log_std"`` is not used).
      env_name: one of :data:`GYMNASIUM_EVAL_ENVS`.
      num_episodes: ``E`` per seed.
      seed: the environments' reset seed.

    Returns:
      ``(S, E)`` float array of episode returns.

    Raises:
      ValueError: ``env_name`` has no gymnasium twin here, or the params do
        not fit its observation size and number of actions.
    """

    if env_name not in GYMNASIUM_EVAL_ENVS:
        raise ValueError(f"{env_name!r} has no gymnasium evaluation; evaluated are {', '.join(GYMNASIUM_EVAL_ENVS)}")
    obs_dim, n_actions, action_space = _gymnasium_sizes(env_name)
    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.network import check_params

    check_params([{k: v[0] for k, v in layer.items()} for layer in params], obs_dim, n_actions, env_name)
    num_seeds = params[0]["w"].shape[0]
    if env_name in ("CartPole-v0", "CartPole-v1"):
        return _cartpole_vector_returns(params, env_name, num_episodes, seed, period or num_seeds)
    returns = np.zeros((num_seeds, num_episodes))
    batch = max(1, min(num_episodes, 256))
    envs = [_make_gymnasium_env(env_name) for _ in range(batch)]
    try:
        for s in range(num_seeds):
            one = _seed_params(params, s)
            for start in range(0, num_episodes, batch):
                episodes = range(start, min(start + batch, num_episodes))
                own = s % (period or num_seeds)
                resets = [envs[i].reset(seed=seed + own * num_episodes + e)[0] for i, e in enumerate(episodes)]
                returns[s, start:start + len(episodes)] = _greedy_returns(one, envs[:len(episodes)], resets,
                                                                         action_space)
    finally:
        for env in envs:
            env.close()
    return returns


def _greedy_returns(one, envs, first_obs, action_space):
    """Plays the reset ``envs`` greedily under one seed's params to their ends: ``(len(envs),)`` returns."""
    obs = np.stack(first_obs).astype(np.float64)
    returns = np.zeros(len(envs))
    running = np.ones(len(envs), bool)
    discrete = hasattr(action_space, "n")
    while running.any():
        actions = _greedy_actions(numpy_policy_logits(one, obs[None])[0], action_space)
        for i in np.flatnonzero(running):
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(actions[i]) if discrete else actions[i])
            returns[i] += float(reward)
            running[i] = not (terminated or truncated)
    return returns


def _cartpole_vector_returns(params, env_name: str, num_episodes: int, seed: int, period: int):
    """:func:`evaluate_gymnasium` for CartPole, in gymnasium's ``CartPoleVectorEnv``."""
    import warnings

    import gymnasium as gym

    num_seeds = params[0]["w"].shape[0]
    n = num_seeds * num_episodes

    def vector_env(num_envs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CartPole-v0's deprecation notice
            return gym.make_vec(env_name, num_envs=num_envs, vectorization_mode="vector_entry_point")

    env = vector_env(n)
    try:
        obs, _ = env.reset(seed=seed)
        if period < num_seeds:  # each setting starts where a run of its seeds alone starts
            alone = vector_env(period * num_episodes)
            alone.reset(seed=seed)
            env.unwrapped.state = np.tile(alone.unwrapped.state, (1, num_seeds // period))
            alone.close()
            obs = env.unwrapped.state.T.astype(np.float32)  # what reset returns
        returns = np.zeros(n)
        running = np.ones(n, bool)
        while running.any():
            logits = numpy_policy_logits(params, obs.reshape(num_seeds, num_episodes, -1))
            actions = np.argmax(logits, axis=-1).reshape(n)
            obs, reward, terminated, truncated, _ = env.step(actions)
            returns += reward * running
            running &= ~(terminated | truncated)
    finally:
        env.close()
    return returns.reshape(num_seeds, num_episodes)


def evaluate_policies(params, env_spec, num_episodes: int, seed: int, num_seeds: int | None = None,
                      policy=None, progress=None, program=None) -> dict:
    """Greedy returns of every agent in gymnax and, for CartPole, in gymnasium.

    The evaluation of ``scripts/train.py`` and ``scripts/evaluate.py`` alike:
    gymnax episodes of agent ``a`` (seed ``i = a % num_seeds`` of a sweep's
    setting; ``num_seeds`` ``None``: every agent its own seed, ``i = a``) from
    ``fold_in(PRNGKey((seed + 1) mod 2**32), i)``, and gymnasium's in one
    vector environment per setting (so every agent's returns are those of
    its seed evaluated in a run of its setting alone),
    gymnasium resets seeded with ``seed``, so the same run and seed give the
    same numbers in both. Every seed in ``[0, 2**32)`` has its own key: the
    largest, ``2**32 - 1``, uses ``PRNGKey(0)``, which no other seed uses.

    ``progress``: called with one-line messages while a sweep is evaluated
    (gymnasium takes about 0.08 s per setting of 4 seeds x 100 episodes,
    in vector environments of up to :data:`SETTINGS_ENVIRONMENTS`
    environments: most of an hour for 40,000 settings, ``docs/performance.md``):
    one as it starts, then every 10 s the settings done in gymnasium and the time left.

    ``program``: :func:`policy_evaluation_program`'s for these arguments,
    compiled ahead (``None``: compiled here).

    Returns:
      ``{"gymnax": (S, E)}`` plus ``"gymnasium": (S, E)`` where the
      environment is one of :data:`GYMNASIUM_EVAL_ENVS`.

    Raises:
      ValueError: a seed outside ``[0, 2**32)``, or more episodes than
        :func:`check_evaluation_size` allows, before any work.
    """
    import jax

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed (--seed) must be an integer in [0, 2**32); got {seed!r}")
    params = jax.tree.map(np.asarray, params)  # NumPy in: no JAX program runs to stage them
    widths = ((env_spec.obs_dim, env_spec.n_actions) if policy is not None
              else (env_spec.obs_dim, *(layer["w"].shape[-1] for layer in params)))
    agents = jax.tree.leaves(params)[0].shape[0]
    period = agents if num_seeds is None else int(num_seeds)
    _check_evaluation(agents, num_episodes, widths, env_spec.max_steps, num_settings=agents // period)
    # Seed i's episodes use fold_in(PRNGKey(seed + 1), i), which is split(PRNGKey(seed + 1), S)[i]
    # (JAX's default threefry), made inside the program; seed + 1 wraps to 0 at the top of uint32.
    # JAX runs the gymnax episodes on its own threads while gymnasium's run here, in NumPy.
    if progress is not None and agents > period:
        where = "gymnax" + (", then gymnasium" if gymnasium_unavailable_reason(env_spec, policy) is None else "")
        progress(f"greedy evaluation of {agents} agents ({agents // period} settings x {period} seeds) x "
                 f"{num_episodes} episodes each, in {where}")
    program = program or _evaluation_program(params, env_spec, num_episodes, from_seed=period, policy=policy)
    gymnax_returns = program(params, np.uint32((int(seed) + 1) % 2**32))
    results = {}
    if gymnasium_unavailable_reason(env_spec, policy) is None:
        # One vector environment per setting of a sweep: its seeds then meet the starts they meet alone.
        results["gymnasium"] = np.concatenate(list(_per_setting_in_gymnasium(
            params, env_spec.name, num_episodes, int(seed), period, agents // period, progress)))
    return {"gymnax": np.asarray(gymnax_returns), **results}


def _per_setting_in_gymnasium(params, env_name: str, num_episodes: int, seed: int, period: int, settings: int,
                              progress):
    """The gymnasium returns of :data:`SETTINGS_ENVIRONMENTS` environments' worth of settings at a time, saying every
    :data:`PROGRESS_EVERY_S` how far it got."""
    start = last = time.perf_counter()
    step = max(1, SETTINGS_ENVIRONMENTS // (period * num_episodes))
    for g in range(0, settings, step):
        done = min(settings, g + step)
        yield evaluate_gymnasium([{k: v[g * period:done * period] for k, v in layer.items()} for layer in params],
                                 env_name, num_episodes, seed=seed, period=period)
        now = time.perf_counter()
        if progress is not None and now - last >= PROGRESS_EVERY_S and done < settings:
            last = now
            left = (now - start) / done * (settings - done)
            progress(f"greedy evaluation in gymnasium: {done}/{settings} settings, about {_duration(left)} left")


def _duration(seconds: float) -> str:
    """``'40 s'``, ``'12 min'``, ``'2 h 5 min'``."""
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def policy_evaluation_program(params, env_spec, num_episodes: int, num_seeds: int | None = None, policy=None):
    """The compiled gymnax evaluation of :func:`evaluate_policies` (same arguments; ``params`` may be
    ``jax.ShapeDtypeStruct`` leaves): ``program(params, seed + 1 as uint32) -> (S, E)`` returns. A run
    compiles it while it compiles its training programs."""
    import jax

    agents = jax.tree.leaves(params)[0].shape[0]
    period = agents if num_seeds is None else int(num_seeds)
    return _evaluation_program(params, env_spec, num_episodes, from_seed=period, policy=policy)


def gymnasium_unavailable_reason(env_spec, policy=None) -> str | None:
    """Why gymnasium cannot evaluate ``env_spec``'s policies (``None`` when it can): it has only its own
    classic-control environments (:data:`GYMNASIUM_EVAL_ENVS`), with their default physics, and the policy is
    run there in NumPy, as the MLP (``policy`` ``None``)."""
    if policy is not None:
        return f"the gymnasium evaluation runs the MLP in NumPy, not network {policy.name!r}: evaluated in gymnax only"
    if env_spec.name not in GYMNASIUM_EVAL_ENVS:
        return f"gymnasium has no {env_spec.name}: evaluated in gymnax only"
    if env_spec.env_params_changed:
        changed = ", ".join(f"{k}={v}" for k, v in env_spec.env_params_changed.items())
        return f"gymnasium's {env_spec.name} has its default physics, not this run's ({changed}): evaluated in gymnax only"
    return None


def best_seed(results: dict) -> int:
    """The agent (a seed; in a sweep, agent ``a`` is seed ``a % num_seeds`` of setting ``a // num_seeds``) with the
    highest mean greedy return (gymnasium's if there, else gymnax's)."""
    returns = results.get("gymnasium", results["gymnax"])
    return int(np.argmax(np.mean(returns, axis=1)))


def _seed_params(params, seed: int):
    """One seed's params, kept with a seed axis of 1 for :func:`numpy_policy_logits`."""
    return [{k: np.asarray(v)[seed : seed + 1] for k, v in layer.items()} for layer in params]


def render_unavailable_reason(env_name: str) -> str | None:
    """Why :func:`render_episode` cannot draw ``env_name`` (one line), or ``None`` if it can."""
    if env_name in RENDERABLE_ENVS:
        return None
    return (f"only the classic-control environments are drawn ({', '.join(RENDERABLE_ENVS)}); "
            f"{env_name} is not one")


def render_episode(params, env_name: str, seed: int, reset_seed: int = 0):
    """Frames of one greedy episode of one seed in gymnasium.

    The episode is gymnasium's (``gymnasium.make(env_name)``, reset with
    ``reset_seed``), with :func:`evaluate_gymnasium`'s greedy actions, so its
    return is that of ``evaluate_gymnasium(params of seed, env_name, 1,
    reset_seed)``. Frames are drawn by :func:`jax_reinforce.harness.render.draw_frame`
    from gymnasium's state, never by gymnasium's pygame renderer: the same
    pictures on every machine, with or without pygame and a display.

    Args:
      params: seed-batched policy params.
      env_name: one of :data:`jax_reinforce.harness.render.RENDERABLE_ENVS` (see
        :func:`render_unavailable_reason`).
      seed: which seed's policy plays.
      reset_seed: the episode's reset seed.

    Returns:
      ``(frames, episode_return)``: a list of ``(H, W, 3)`` uint8 arrays, the
      first after the reset and one after every step.

    Raises:
      ValueError: :func:`render_unavailable_reason`'s line, or params that do
        not fit the environment.
    """
    reason = render_unavailable_reason(env_name)
    if reason:
        raise ValueError(reason)

    obs_dim, n_actions, action_space = _gymnasium_sizes(env_name)
    one = _seed_params(params, seed)
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.network import check_params

    check_params([{k: v[0] for k, v in layer.items()} for layer in one], obs_dim, n_actions, env_name)
    discrete = hasattr(action_space, "n")
    env = _make_gymnasium_env(env_name)
    try:
        obs, _ = env.reset(seed=reset_seed)
        frames, total, done = [draw_frame(env_name, env.unwrapped.state)], 0.0, False
        while not done:
            action = _greedy_actions(numpy_policy_logits(one, np.asarray(obs)[None, None, :])[0, 0], action_space)
            obs, reward, terminated, truncated, _ = env.step(int(action) if discrete else action)
            total += float(reward)
            done = terminated or truncated
            frames.append(draw_frame(env_name, env.unwrapped.state))
    finally:
        env.close()
    return frames, total
