"""The rollout's own forward pass for acting equals the policy's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_reinforce import init_policy, policy_logits
from jax_reinforce.core.rollouts import _acting_logits


@pytest.mark.parametrize("hidden", [(), (8,), (8, 4)])
def test_acting_logits_equal_policy_logits_to_rounding(hidden):
    key_params, key_obs = jax.random.split(jax.random.key(3))
    params = init_policy(key_params, 4, hidden, 2, output_scale=1.0)
    obs = jax.random.normal(key_obs, (3, 17, 4)) * 2.0
    acting = jax.jit(_acting_logits)(params, obs)
    expected = jax.jit(policy_logits)(params, obs)
    assert acting.shape == expected.shape == (3, 17, 2)
    np.testing.assert_allclose(acting, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(expected)).max() > 0.1  # not trivially zero


def test_acting_logits_refuse_the_wrong_observation_size():
    params = init_policy(jax.random.key(0), 4, (8,), 2)
    with pytest.raises(ValueError):
        _acting_logits(params, np.zeros((5, 3), np.float32))


def test_rollout_accepts_numpy_integers_none_and_a_window_past_the_episode_limit():
    from jax_reinforce import make_env, rollout

    spec = make_env("CartPole-v0")
    params = init_policy(jax.random.key(0), 4, (8,), 2)
    key = jax.random.PRNGKey(1)

    def shape(*args, **kwargs):
        return jax.eval_shape(lambda: rollout(params, key, spec, *args, **kwargs)).actions.shape

    assert shape(np.int64(3), np.int32(5)) == (5, 3)
    assert shape(2, None, np.bool_(True), greedy=np.bool_(True)) == (200, 2)
    longer = jax.jit(lambda p, k: rollout(p, k, spec, 2, 250))(params, key)
    assert longer.actions.shape == (250, 2) and int(longer.length.max()) <= 200


@pytest.mark.parametrize("env_name", ["CartPole-v1", "MountainCarContinuous-v0"])
def test_greedy_episodes_are_the_greedy_rollouts_episodes_bit_for_bit(env_name):
    """Same keys, actions and rewards as rollout(greedy=True); the returns summed the same way (fractional
    rewards in MountainCarContinuous), under vmap with and without an axis name, and nothing when inactive."""
    import jax.numpy as jnp

    from jax_reinforce import greedy_episodes, init_gaussian_policy, make_env, rollout

    spec = make_env(env_name)
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    if spec.continuous:
        init = jax.vmap(lambda k: init_gaussian_policy(k, spec.obs_dim, (8,), spec.action_low, spec.action_high))
    else:
        init = jax.vmap(lambda k: init_policy(k, spec.obs_dim, (8,), spec.n_actions, output_scale=1.0))
    params = init(jax.random.split(jax.random.PRNGKey(9), 3))
    active = jnp.asarray([True, False, True])

    def both(p, k, a, axis_name=None):
        traj = rollout(p, k, spec, 6, None, a, axis_name, greedy=True)
        episodes = greedy_episodes(p, k, spec, 6, a, axis_name)
        return (traj.rewards.sum(axis=0), traj.length, traj.finished), tuple(episodes)

    for axis_name in (None, "agents"):
        expected, got = jax.jit(jax.vmap(lambda p, k, a: both(p, k, a, axis_name), axis_name=axis_name))(
            params, keys, active)
        for e, g, name in zip(expected, got, ("returns", "length", "finished")):
            np.testing.assert_array_equal(np.asarray(e), np.asarray(g), err_msg=f"{name}, axis {axis_name}")
        returns, length, _ = (np.asarray(x) for x in got)
        assert (length[1] == 0).all() and (returns[1] == 0).all()  # the inactive agent steps nothing
        assert (length[[0, 2]] > 0).all()
    if spec.continuous:  # fractional returns: the sum's order matters here
        assert not np.all(returns[[0, 2]] == np.round(returns[[0, 2]]))


@pytest.mark.parametrize("env_name", ["CartPole-v1", "MountainCarContinuous-v0"])
def test_a_traced_greedy_flag_plays_the_greedy_or_the_sampled_episodes_bit_for_bit(env_name):
    """The trainer's confirmation: one rollout program for both kinds of episode, the flag an input."""
    from jax_reinforce import init_gaussian_policy, make_env, rollout

    spec = make_env(env_name)
    key = jax.random.PRNGKey(3)
    if spec.continuous:
        params = init_gaussian_policy(jax.random.PRNGKey(9), spec.obs_dim, (8,), spec.action_low, spec.action_high)
    else:
        params = init_policy(jax.random.PRNGKey(9), spec.obs_dim, (8,), spec.n_actions, output_scale=1.0)
    traced = jax.jit(lambda flag: rollout(params, key, spec, 4, 64, greedy=flag))
    for flag in (True, False):
        expected = jax.jit(lambda: rollout(params, key, spec, 4, 64, greedy=flag))()
        got = traced(jnp.bool_(flag))
        for name, e, g in zip(expected._fields, expected, got):
            np.testing.assert_array_equal(np.asarray(e), np.asarray(g), err_msg=f"greedy={flag}: {name}")
    assert not np.array_equal(np.asarray(traced(jnp.bool_(True)).actions), np.asarray(traced(jnp.bool_(False)).actions))
