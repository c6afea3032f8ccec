"""Evaluating trained policies: greedy episodes in gymnax and in gymnasium.

Two independent implementations of CartPole judge the same parameters:
gymnax's (JAX, the one the agent trained in) and gymnasium's own
``CartPoleVectorEnv`` (NumPy, the reference implementation). A policy that
only exploited a quirk of one would fail in the other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["evaluate_gymnax", "evaluate_gymnasium", "numpy_policy_logits"]


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

    from jax_reinforce.rollout import rollout

    def one_seed(p, k):
        traj = rollout(p, k, env_spec, num_episodes, None, True, "seed", greedy=True)
        return traj.rewards.sum(axis=0)

    num_seeds = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(key, num_seeds)
    returns = jax.jit(jax.vmap(one_seed, axis_name="seed"))(params, keys)
    return np.asarray(returns)


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

    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
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
