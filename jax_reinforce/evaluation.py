"""Evaluating trained policies: greedy episodes in gymnax and in gymnasium.

Two independent implementations of CartPole judge the same parameters:
gymnax's (JAX, the one the agent trained in) and gymnasium's own
``CartPoleVectorEnv`` (NumPy, the reference implementation). A policy that
only exploited a quirk of one would fail in the other.

:func:`render_episode` plays one greedy episode in gymnasium and returns its
frames, for an animated GIF (:func:`jax_reinforce.reporting.write_gif`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_evaluation_size",
    "evaluation_memory_bytes",
    "evaluate_gymnax",
    "gymnax_evaluation_program",
    "evaluate_gymnasium",
    "evaluate_policies",
    "best_seed",
    "numpy_policy_logits",
    "render_episode",
    "render_unavailable_reason",
    "GYMNASIUM_EVAL_ENVS",
]

# Environments with a gymnasium twin evaluated by :func:`evaluate_gymnasium`.
GYMNASIUM_EVAL_ENVS = ("CartPole-v0", "CartPole-v1")


def _evaluation_bytes(num_seeds: int, num_episodes: int, widths, max_steps: int) -> int:
    d, total = int(widths[0]), sum(int(w) for w in widths)
    return num_seeds * num_episodes * (4 * max_steps * (d + 2) + 8 * (2 * total + 8))


def _check_evaluation(num_seeds: int, num_episodes, widths, max_steps: int, flag: str = "--episodes") -> None:
    from jax_reinforce.config import INT32_MAX, format_bytes, memory_budget_bytes

    name = f"{flag.lstrip('-').replace('-', '_')} ({flag})"
    if not isinstance(num_episodes, (int, np.integer)) or isinstance(num_episodes, bool) or not (
            1 <= int(num_episodes) <= INT32_MAX):
        raise ValueError(f"{name} must be an integer in [1, {INT32_MAX}]; got {num_episodes!r}")
    budget = memory_budget_bytes()
    need = _evaluation_bytes(num_seeds, int(num_episodes), widths, max_steps)
    if budget is None or need <= budget:
        return
    fit = budget // _evaluation_bytes(num_seeds, 1, widths, max_steps)
    what_fits = f"at most {fit} episodes per seed fit" if fit else "not even one episode per seed fits"
    raise ValueError(
        f"{name} {num_episodes} for {num_seeds} seeds of up to {max_steps} steps would need about "
        f"{format_bytes(need)} of memory to evaluate; this machine has {format_bytes(budget)}: {what_fits}")


def _config_shapes(config):
    from jax_reinforce.envs import make_env

    spec = make_env(config.env)
    return config.num_seeds, (spec.obs_dim, *config.hidden, spec.n_actions), spec.max_steps


def evaluation_memory_bytes(config, num_episodes: int) -> int:
    """An estimate of the memory, in bytes, that :func:`evaluate_policies` needs for a run of ``config``.

    With ``S = num_seeds``, ``E = num_episodes``, ``T`` the episode limit,
    ``d`` the observation size and ``W`` the sum of the policy's layer widths
    (``d + sum(hidden) + actions``)::

        4 S E T (d + 2)       gymnax's rollout buffers (observation, action and
                              reward of every step; every seed in one program)
        8 S E (2 W + 8)       gymnasium's vector environment, in float64: its
                              state, observations, the logits' layers, returns
    """
    num_seeds, widths, max_steps = _config_shapes(config)
    return _evaluation_bytes(num_seeds, num_episodes, widths, max_steps)


def check_evaluation_size(config, num_episodes: int, flag: str = "--episodes") -> None:
    """Refuses, before any work, an evaluation of ``num_episodes`` per seed that cannot be held.

    ``num_episodes`` must be an integer in ``[1, 2**31 - 1]`` whose
    :func:`evaluation_memory_bytes` fits
    :func:`jax_reinforce.config.memory_budget_bytes`. :func:`evaluate_policies`
    checks the same itself; call this first where a refusal should come before
    other work (a training run's final evaluation, a script's arguments).
    ``flag``: the command-line flag the message names (``"--eval-episodes"`` for train.py).

    Raises:
      ValueError: one line naming the flag, the memory it would need and what fits.
    """
    num_seeds, widths, max_steps = _config_shapes(config)
    _check_evaluation(num_seeds, num_episodes, widths, max_steps, flag)


def evaluate_gymnax(params, env_spec, num_episodes: int, key):
    """Undiscounted returns of greedy episodes in gymnax, for every seed.

    Args:
      params: policy pytree with a leading seed axis ``S``.
      env_spec: :class:`jax_reinforce.envs.EnvSpec`.
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
    :mod:`jax_reinforce.program_cache` when it is on.
    """
    return _evaluation_program(params, env_spec, num_episodes, from_seed=None)


def _evaluation_program(params, env_spec, num_episodes: int, from_seed: int | None):
    """The gymnax evaluation, from ``(params, keys)`` or, ``from_seed``, ``(params, seed)``.

    With ``from_seed`` (a period ``P``), agent ``a``'s key ``fold_in(PRNGKey(seed),
    a % P)`` is made inside the program (``seed``: a uint32 scalar).
    """
    import jax

    from jax_reinforce.compilation import compiler_options
    from jax_reinforce.envs import describe_env
    from jax_reinforce.program_cache import compile_program
    from jax_reinforce.rollouts import rollout
    from jax_reinforce.training import agent_keys_from

    def one_seed(p, k):
        traj = rollout(p, k, env_spec, num_episodes, None, True, greedy=True)
        return traj.rewards.sum(axis=0)

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
    return compile_program("evaluate_gymnax", (describe_env(env_spec), num_episodes, from_seed), program,
                           (params, second), None, compiler_options())


def _start_gymnax_evaluation(params, env_spec, num_episodes: int, keys):
    """:func:`evaluate_gymnax`'s ``(S, E)`` returns as a JAX array, dispatched but not waited for.

    ``keys``: ``(S, 2)`` raw keys, one per seed.
    """
    import jax

    keys = np.asarray(keys, np.uint32)
    params = jax.tree.map(np.asarray, params)  # NumPy in: no JAX program runs to stage them
    return gymnax_evaluation_program(params, env_spec, num_episodes)(params, keys)


def numpy_policy_logits(params, obs):
    """``policy_logits`` in NumPy for seed-batched params.

    Args:
      params: layers with ``w: (S, fan_in, fan_out)``, ``b: (S, fan_out)``.
      obs: ``(S, E, obs_dim)``.

    Returns:
      ``(S, E, A)`` logits, computed in float64.
    """
    h = np.asarray(obs, np.float64)
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)[:, None, :]
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


def evaluate_gymnasium(params, env_name: str, num_episodes: int, seed: int = 0):
    """Undiscounted returns of greedy episodes in gymnasium's own CartPole.

    Uses ``gymnasium.make_vec(env_name, vectorization_mode="vector_entry_point")``
    (gymnasium's NumPy ``CartPoleVectorEnv``, with its own time limit: 500
    steps for v1, 200 for v0), ``S * E`` environments at once, and counts the
    first episode of each.

    Args:
      params: policy pytree with a leading seed axis ``S`` (NumPy or JAX arrays).
      env_name: ``"CartPole-v1"`` or ``"CartPole-v0"``.
      num_episodes: ``E`` per seed.
      seed: the environments' reset seed.

    Returns:
      ``(S, E)`` float array of episode returns.
    """
    import warnings

    import gymnasium as gym

    from jax_reinforce.policy import _check_params

    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
    _check_params([{k: v[0] for k, v in layer.items()} for layer in params], 4, 2, env_name)  # CartPole's sizes
    num_seeds = params[0]["w"].shape[0]
    n = num_seeds * num_episodes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CartPole-v0's deprecation notice
        env = gym.make_vec(env_name, num_envs=n, vectorization_mode="vector_entry_point")
    try:
        obs, _ = env.reset(seed=seed)
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


def evaluate_policies(params, env_spec, num_episodes: int, seed: int, num_seeds: int | None = None) -> dict:
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
    widths = (env_spec.obs_dim, *(layer["w"].shape[-1] for layer in params))
    _check_evaluation(jax.tree.leaves(params)[0].shape[0], num_episodes, widths, env_spec.max_steps)
    # Seed i's episodes use fold_in(PRNGKey(seed + 1), i), which is split(PRNGKey(seed + 1), S)[i]
    # (JAX's default threefry), made inside the program; seed + 1 wraps to 0 at the top of uint32.
    # JAX runs the gymnax episodes on its own threads while gymnasium's run here, in NumPy.
    agents = jax.tree.leaves(params)[0].shape[0]
    period = agents if num_seeds is None else int(num_seeds)
    program = _evaluation_program(params, env_spec, num_episodes, from_seed=period)
    gymnax_returns = program(params, np.uint32((int(seed) + 1) % 2**32))
    results = {}
    if env_spec.name in GYMNASIUM_EVAL_ENVS:
        # One vector environment per setting of a sweep: its seeds then meet the starts they meet alone.
        results["gymnasium"] = np.concatenate([
            evaluate_gymnasium([{k: v[start:start + period] for k, v in layer.items()} for layer in params],
                               env_spec.name, num_episodes, seed=int(seed))
            for start in range(0, agents, period)])
    return {"gymnax": np.asarray(gymnax_returns), **results}


def best_seed(results: dict) -> int:
    """The seed with the highest mean greedy return (gymnasium's if there, else gymnax's)."""
    returns = results.get("gymnasium", results["gymnax"])
    return int(np.argmax(np.mean(returns, axis=1)))


def _seed_params(params, seed: int):
    """One seed's params, kept with a seed axis of 1 for :func:`numpy_policy_logits`."""
    return [{k: np.asarray(v)[seed : seed + 1] for k, v in layer.items()} for layer in params]


def _pygame_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("pygame") is not None


def render_unavailable_reason(env_name: str) -> str | None:
    """Why :func:`render_episode` cannot draw ``env_name``, or ``None`` if it can."""
    import gymnasium as gym

    if env_name not in gym.envs.registry:
        return f"{env_name} has no gymnasium version to render"
    if env_name not in GYMNASIUM_EVAL_ENVS and not _pygame_installed():
        return f"rendering {env_name} needs pygame (pip install 'gymnasium[classic-control]')"
    return None


def draw_cartpole(state, width: int = 600, height: int = 400) -> np.ndarray:
    """A CartPole frame drawn like gymnasium's renderer, without pygame.

    Args:
      state: ``(x, x_dot, theta, theta_dot)``.

    Returns:
      ``(height, width, 3)`` uint8 RGB: the track, the cart at ``x`` and the
      pole at angle ``theta`` (gymnasium's geometry: 4.8 units of track across
      the frame, a pole 2 half-lengths long).
    """
    from PIL import Image, ImageDraw

    x, _, theta, _ = (float(v) for v in state)
    scale = width / 4.8
    pole_width, pole_len, cart_w, cart_h = 10.0, scale * 1.0, 50.0, 30.0
    cart_x = x * scale + width / 2.0
    cart_y = height - 100.0  # the cart's centre line, 100 px above the bottom as in gymnasium
    axle_y = cart_y - cart_h / 4.0
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.line([(0, cart_y), (width, cart_y)], fill=(0, 0, 0))
    draw.rectangle([cart_x - cart_w / 2, cart_y - cart_h / 2, cart_x + cart_w / 2, cart_y + cart_h / 2], fill=(0, 0, 0))
    # The pole as a rectangle rotated by theta about the axle (clockwise for theta > 0).
    c, s = np.cos(theta), np.sin(theta)
    corners = []
    for u, v in ((-pole_width / 2, -pole_width / 2), (-pole_width / 2, pole_len - pole_width / 2),
                 (pole_width / 2, pole_len - pole_width / 2), (pole_width / 2, -pole_width / 2)):
        corners.append((cart_x + u * c + v * s, axle_y - (-u * s + v * c)))
    draw.polygon(corners, fill=(202, 152, 101))
    r = pole_width / 2
    draw.ellipse([cart_x - r, axle_y - r, cart_x + r, axle_y + r], fill=(129, 132, 203))
    return np.asarray(image)


def render_episode(params, env_name: str, seed: int, reset_seed: int = 0):
    """Frames of one greedy episode of one seed in gymnasium.

    Frames come from gymnasium's ``render_mode="rgb_array"``; where pygame
    (which gymnasium draws with) is not installed, CartPole is drawn by
    :func:`draw_cartpole` from the same states.

    Args:
      params: seed-batched policy params.
      env_name: a gymnasium environment id (see :func:`render_unavailable_reason`).
      seed: which seed's policy plays.
      reset_seed: the episode's reset seed.

    Returns:
      ``(frames, episode_return)``: a list of ``(H, W, 3)`` uint8 arrays, the
      first after the reset and one after every step.
    """
    import warnings

    import gymnasium as gym

    reason = render_unavailable_reason(env_name)
    if reason:
        raise ValueError(reason)
    own_drawing = not _pygame_installed()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CartPole-v0's deprecation notice
        env = gym.make(env_name, render_mode=None if own_drawing else "rgb_array")
    one = _seed_params(params, seed)
    try:
        obs, _ = env.reset(seed=reset_seed)

        def frame():
            return draw_cartpole(env.unwrapped.state) if own_drawing else env.render()

        frames, total, done = [frame()], 0.0, False
        while not done:
            action = int(np.argmax(numpy_policy_logits(one, np.asarray(obs)[None, None, :])[0, 0]))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            frames.append(frame())
    finally:
        env.close()
    return frames, total
