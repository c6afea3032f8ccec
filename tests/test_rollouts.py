"""The rollout's own forward pass for acting equals the policy's."""

import jax
import numpy as np
import pytest

from jax_reinforce import init_policy, policy_logits
from jax_reinforce.rollouts import _acting_logits


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
