"""The library refuses what it cannot do, in one line, when the program is traced (issue 14, item 8).

Each case here ran silently (or failed with an unrelated error deep inside
JAX) before: a 5-action policy sent actions 0-4 to CartPole, ``num_steps=0``
meant the whole episode, ``num_envs=0`` returned an empty trajectory.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_reinforce import actions_from_uniform, init_policy, log_prob, make_env, policy_logits
from jax_reinforce.core.rollouts import rollout

KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def cartpole():
    return make_env("CartPole-v1")


def _one_line_error(call, *fragments):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_rollout_refuses_a_policy_with_another_action_count_when_traced(cartpole):
    params = init_policy(KEY, 4, (8,), 5)
    # Abstract arguments: the check reads static shapes only, before any computation.
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    _one_line_error(lambda: jax.eval_shape(lambda p, k: rollout(p, k, cartpole, 4, 10), abstract, KEY),
                    "5 outputs", "(8, 5)", "CartPole-v1 has 2 actions")
    # Vmapped over agents (a leading seed axis), as the trainer calls it.
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), params)
    _one_line_error(lambda: jax.vmap(lambda p, k: rollout(p, k, cartpole, 4, 10))(stacked, jax.random.split(KEY)),
                    "5 outputs", "2 actions")


def test_rollout_names_the_environment_when_the_observation_size_differs(cartpole):
    _one_line_error(lambda: rollout(init_policy(KEY, 3, (8,), 2), KEY, cartpole, 4, 10),
                    "3 inputs", "(3, 8)", "CartPole-v1's observations have 4")


@pytest.mark.parametrize("num_steps", [0, -1, 2.5, True, np.float32(3)])
def test_rollout_refuses_a_window_that_is_not_none_or_a_positive_integer(cartpole, num_steps):
    params = init_policy(KEY, 4, (8,), 2)
    _one_line_error(lambda: rollout(params, KEY, cartpole, 4, num_steps),
                    "num_steps must be None (the episode limit, 500 steps of CartPole-v1) or an integer in [1, ")


@pytest.mark.parametrize("num_envs", [0, -2, 1.5, True])
def test_rollout_refuses_a_count_of_environments_that_is_not_a_positive_integer(cartpole, num_envs):
    params = init_policy(KEY, 4, (8,), 2)
    _one_line_error(lambda: rollout(params, KEY, cartpole, num_envs, 10), "num_envs must be an integer in [1, ")


def test_rollout_refuses_a_non_scalar_active_and_a_non_bool_greedy(cartpole):
    params = init_policy(KEY, 4, (8,), 2)
    _one_line_error(lambda: rollout(params, KEY, cartpole, 3, 10, active=jnp.array([True, False, True])),
                    "active must be a scalar bool", "(3,)")
    _one_line_error(lambda: rollout(params, KEY, cartpole, 3, 10, active=1), "active must be a scalar bool")
    _one_line_error(lambda: rollout(params, KEY, cartpole, 3, 10, greedy="no"), "greedy must be a scalar bool", "got 'no'")


@pytest.mark.parametrize("sizes", [(4.7, (8,), 2), (True, (8,), 2), (4, "64", 2), (4, 8, 2), (4, (8,), 2.0),
                                   (4, (0,), 2)])
def test_init_policy_refuses_sizes_that_are_not_integers_at_least_one(sizes):
    obs_dim, hidden, n_actions = sizes
    _one_line_error(lambda: init_policy(KEY, obs_dim, hidden, n_actions),
                    "obs_dim and n_actions must be integers >= 1 and hidden a sequence of them", repr(hidden))


def test_init_policy_refuses_a_non_float_dtype_and_a_non_finite_output_scale():
    _one_line_error(lambda: init_policy(KEY, 4, (8,), 2, dtype=jnp.int32), "dtype must be a floating dtype; got int32")
    _one_line_error(lambda: init_policy(KEY, 4, (8,), 2, output_scale=float("nan")),
                    "output_scale must be a finite number; got nan")


def test_policy_logits_refuses_params_that_are_not_a_chain_of_layers():
    obs = jnp.zeros((3, 4))
    broken = [{"w": jnp.zeros((4, 8)), "b": jnp.zeros(8)}, {"w": jnp.zeros((7, 2)), "b": jnp.zeros(2)}]
    _one_line_error(lambda: policy_logits(broken, obs), "each fan_in the previous fan_out", "w (7, 2) b (2,)")
    _one_line_error(lambda: policy_logits([], obs), "params must be a non-empty list of layers", "0 items")
    integer = [{"w": jnp.zeros((4, 2), jnp.int32), "b": jnp.zeros(2, jnp.int32)}]
    _one_line_error(lambda: policy_logits(integer, obs), "of floats")


def test_actions_from_uniform_refuses_logits_without_actions():
    _one_line_error(lambda: actions_from_uniform(jnp.zeros((3, 0)), jnp.zeros(3)), "A >= 1", "(3, 0)")


def test_log_prob_refuses_non_integer_actions():
    params = init_policy(KEY, 4, (8,), 2)
    _one_line_error(lambda: log_prob(params, jnp.zeros((3, 4)), jnp.array([0.0, 1.0, 1.0])),
                    "actions must be integers", "float32")
