"""Reward-to-go, episode masks and baselines against hand-computed trajectories."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_reinforce.core.envs import make_env
from jax_reinforce.core.network import init_policy
from jax_reinforce.core.returns import apply_baseline, complete_episode_mask, reward_to_go
from jax_reinforce.core.rollouts import rollout

reward_to_go_jit = jax.jit(reward_to_go)
complete_jit = jax.jit(complete_episode_mask)


def test_reward_to_go_two_episodes_and_a_cut_one_by_hand():
    # One environment, window of 6 steps, gamma = 0.5:
    #   episode A: steps 0-1 (ends at 1), episode B: steps 2-4 (ends at 4),
    #   episode C: step 5, still running when the window closes (cut).
    rewards = jnp.array([1.0, 2.0, 1.0, 1.0, 4.0, 8.0])
    ends = jnp.array([0, 1, 0, 0, 1, 0], bool)
    g = reward_to_go_jit(rewards, ends, 0.5)
    # A: G1 = 2, G0 = 1 + 0.5 * 2 = 2.   B: G4 = 4, G3 = 1 + 2 = 3, G2 = 1 + 1.5 = 2.5.
    # C: the truncated sum 8, which must carry no weight.
    np.testing.assert_allclose(g, [2.0, 2.0, 2.5, 3.0, 4.0, 8.0])
    mask = complete_jit(ends)
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 0])


def test_reward_to_go_is_per_environment_and_never_leaks_across_episodes():
    rewards = jnp.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    ends = jnp.array([[1, 0], [0, 0], [1, 1]], bool)
    g = reward_to_go_jit(rewards, ends, 0.9)
    np.testing.assert_allclose(g[:, 0], [1.0, 1.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(g[:, 1], [1 + 0.9 + 0.81, 1.9, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(complete_jit(ends), [[1, 1], [1, 1], [1, 1]])


def test_baselines_by_hand():
    g = jnp.array([1.0, 2.0, 3.0, 100.0])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(apply_baseline(g, mask, "none"), [1, 2, 3, 0])
    np.testing.assert_allclose(apply_baseline(g, mask, "mean"), [-1, 0, 1, 0])
    std = np.sqrt(2 / 3)
    np.testing.assert_allclose(apply_baseline(g, mask, "normalize"), [-1 / std, 0, 1 / std, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="baseline"):
        apply_baseline(g, mask, "median")


def test_rollout_masks_steps_after_the_end_and_marks_window_cuts():
    spec = make_env("CartPole-v1")
    params = init_policy(jax.random.PRNGKey(0), 4, (8,), 2)
    window = 12
    traj = jax.jit(lambda p, k: rollout(p, k, spec, 16, window))(params, jax.random.PRNGKey(3))
    length = np.asarray(traj.length)
    finished = np.asarray(traj.finished)
    alive = np.asarray(traj.alive)
    # Episodes that ran the whole window without ending are cut, not finished.
    assert np.all(length[~finished] == window)
    assert (~finished).any() and finished.any(), "the test needs both cut and finished episodes"
    # Rows after each episode's end hold nothing.
    np.testing.assert_array_equal(np.asarray(traj.rewards) * ~alive, 0)
    np.testing.assert_array_equal(np.abs(np.asarray(traj.obs)).sum(-1) * ~alive, 0)
    np.testing.assert_array_equal(np.asarray(traj.rewards).sum(0), length)  # CartPole pays 1 per step
    # The episode_end flags sit on the last step of finished episodes only.
    ends = np.asarray(traj.episode_end)
    np.testing.assert_array_equal(ends.sum(0), finished.astype(int))
    # A cut episode's steps get no weight; a finished one's all do.
    mask = np.asarray(complete_episode_mask(traj.episode_end)) & alive
    np.testing.assert_array_equal(mask.sum(0), np.where(finished, length, 0))


def test_rollout_of_an_inactive_agent_runs_no_step():
    spec = make_env("CartPole-v0")
    params = init_policy(jax.random.PRNGKey(0), 4, (8,), 2)
    traj = rollout(params, jax.random.PRNGKey(1), spec, 4, None, active=False)
    np.testing.assert_array_equal(traj.length, 0)
    assert not np.asarray(traj.finished).any()


def test_normalize_gives_no_weight_when_all_returns_are_equal():
    # float32 rounding leaves noise of ~1e-7 of the mean in G - mean(G); noise
    # divided by its own spread must not become weights of order 1.
    for value, n in ((0.1, 7), (0.3, 64), (123.4, 33)):
        w = apply_baseline(jnp.full((n,), value, jnp.float32), jnp.ones((n,)), "normalize")
        np.testing.assert_array_equal(w, 0.0)


@pytest.mark.parametrize("rows", [0, 1, 7, 23, 40])
def test_reward_to_go_over_the_used_rows_equals_the_full_scan_bitwise(rows):
    from jax_reinforce.core.returns import reward_to_go_rows

    horizon, num_envs = 40, 6
    key_r, key_e = jax.random.split(jax.random.key(rows))
    rewards = jax.random.uniform(key_r, (horizon, num_envs)) * (jnp.arange(horizon) < rows)[:, None]
    ends = jax.random.bernoulli(key_e, 0.15, (horizon, num_envs)) & (jnp.arange(horizon) < rows)[:, None]
    full = jax.jit(reward_to_go)(rewards, ends, 0.97)
    used = jax.jit(reward_to_go_rows)(rewards, ends, 0.97, rows)
    np.testing.assert_array_equal(np.asarray(used), np.asarray(full))
    # Batched over agents with a shared row count, as the trainer calls it.
    batched = jax.jit(jax.vmap(reward_to_go_rows, in_axes=(0, 0, None, None)))(
        jnp.stack([rewards, rewards * 2]), jnp.stack([ends, ends]), 0.97, rows)
    np.testing.assert_array_equal(np.asarray(batched[0]), np.asarray(full))
    np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(jax.jit(reward_to_go)(rewards * 2, ends, 0.97)))
