"""Networks and metrics as inputs (issue 24): Policy(init, apply), the CNN, metrics_fn, return_state, value_loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fast_jit import fast_jit
from example_policies import LINEAR, linear_apply, linear_init

import jax_reinforce as jr
from jax_reinforce.core.policies import policy_apply, resolve_policy


def test_an_own_network_trains_on_discrete_actions():
    config = jr.Config(env="CartPole-v1", num_seeds=2, num_envs=16, iterations=25)
    state, metrics = jax.jit(jax.vmap(jr.make_train(config, policy=LINEAR, return_state=True)))(jr.agent_keys(0, 2))
    assert set(state.params) == {"w", "b"} and state.params["w"].shape == (2, 4, 2)
    first, last = np.nanmean(metrics["episode_return"][:, :3]), np.nanmax(metrics["episode_return"])
    assert last > 2 * first, (first, last)  # it learns
    assert np.isfinite(metrics["grad_norm"][:, 0]).all()


def test_an_own_network_on_box_actions_gets_a_learned_log_std():
    config = jr.Config(env="Pendulum-v1", num_seeds=2, num_envs=8, iterations=3, stop_when_solved=False)
    init_state = jax.vmap(jr.make_init_state(config, policy=LINEAR))(jr.agent_keys(0, 2))
    assert set(init_state.params) == {"net", "log_std"} and init_state.params["log_std"].shape == (2, 1)
    np.testing.assert_allclose(init_state.params["log_std"][0], jr.initial_log_std((-2.0,), (2.0,)))
    state, metrics = fast_jit(jax.vmap(jr.make_train(config, policy=LINEAR, return_state=True)))(jr.agent_keys(0, 2))
    assert not np.array_equal(state.params["log_std"], init_state.params["log_std"])  # learned
    assert metrics["loss"].shape == (2, 3) and np.isfinite(metrics["loss"]).all()


def test_the_cnn_trains_on_a_minatar_game_and_refuses_flat_observations():
    config = jr.Config(env="Breakout-MinAtar", network="cnn", hidden=(16,), num_seeds=2, num_envs=4, iterations=2)
    params, metrics = fast_jit(jax.vmap(jr.make_train(config)))(jr.agent_keys(0, 2))  # shapes: compiled fast
    assert params["conv"][0]["w"].shape == (2, 3, 3, 4, 16)  # (seeds, k, k, MinAtar Breakout's 4 channels, 16)
    assert params["dense"][0]["w"].shape == (2, 10 * 10 * 16, 16) and params["dense"][-1]["w"].shape == (2, 16, 3)
    assert np.isfinite(metrics["loss"]).all()
    with pytest.raises(ValueError, match=r"network='cnn' takes image observations \(H, W\) or \(H, W, C\); got shape \(4,\)"):
        jr.make_train(jr.Config(network="cnn", num_seeds=1))(jr.agent_keys(0, 1)[0])


def test_the_cnn_reads_two_dimensional_images_too():
    cnn = jr.cnn_policy(hidden=(8,))
    params = cnn.init(jax.random.PRNGKey(0), (10, 5), 3)  # Catch's (10, 5) grid: one channel
    assert params["conv"][0]["w"].shape == (3, 3, 1, 16)
    assert cnn.apply(params, jnp.zeros((7, 10, 5))).shape == (7, 3)
    assert cnn.apply(params, jnp.zeros((10, 5))).shape == (3,)


def test_mlp_policy_is_the_built_in_network():
    spec = jr.make_env("Breakout-MinAtar")
    mlp = jr.mlp_policy((8,))
    params = mlp.init(jax.random.PRNGKey(0), spec.input_shape, spec.n_actions)
    images = jax.random.uniform(jax.random.PRNGKey(1), (5, *spec.input_shape))
    np.testing.assert_array_equal(mlp.apply(params, images), jr.policy_logits(params, images.reshape(5, -1)))
    assert resolve_policy("mlp") is None and resolve_policy(mlp) is None  # the trainer's own MLP code


def test_manual_gradients_with_another_network_are_refused():
    with pytest.raises(ValueError, match=r"^grad \(--grad\) must be 'autodiff' with network='cnn': the "
                                         r"hand-derived gradient is the MLP's"):
        jr.Config(env="Breakout-MinAtar", network="cnn", grad="manual")
    with pytest.raises(ValueError, match=r"^network 'example_policies:nothing' cannot be imported"):
        resolve_policy("example_policies:nothing")
    with pytest.raises(ValueError, match=r"is a function, not a jax_reinforce.Policy"):
        resolve_policy("example_policies:linear_apply")
    assert resolve_policy("example_policies:LINEAR").apply is linear_apply


def test_a_policy_object_is_recorded_and_needed_again():
    anonymous = jr.Policy(linear_init, linear_apply)
    config = jr.Config(network=anonymous, num_seeds=1)
    stored = config.to_dict()
    assert stored["network"] == "linear_apply" and stored["network_importable"] is False
    with pytest.raises(ValueError, match=r"network 'linear_apply' of this run is a Policy with no import path"):
        jr.Config.from_dict(stored)
    assert jr.Config.from_dict(stored, policy=anonymous).attached_policy is anonymous
    named = jr.Config(network="example_policies:LINEAR")
    assert "network_importable" not in named.to_dict()


def test_metrics_fn_and_value_loss_join_the_metrics():
    def metrics_fn(state, traj):
        return {"steps_per_episode": jnp.sum(traj.length) / traj.length.shape[0], "updates": state.iteration}

    config = jr.Config(env="CartPole-v1", num_seeds=2, num_envs=8, iterations=3, baseline="value",
                       stop_when_solved=False)
    _, metrics = fast_jit(jax.vmap(jr.make_train(config, metrics_fn=metrics_fn)))(jr.agent_keys(0, 2))
    assert {"steps_per_episode", "updates", "value_loss"} <= set(metrics)
    np.testing.assert_array_equal(metrics["updates"], [[1, 2, 3], [1, 2, 3]])  # the state after the update
    np.testing.assert_allclose(metrics["steps_per_episode"], metrics["env_steps"] / 8, rtol=1e-6)
    assert (metrics["value_loss"] > 0).all() and metrics["value_loss"].dtype == jnp.float32
    _, plain = fast_jit(jax.vmap(jr.make_train(config.replace(baseline="normalize"))))(jr.agent_keys(0, 2))
    assert "value_loss" not in plain


def test_bad_metrics_are_one_line():
    config = jr.Config(num_seeds=1, num_envs=4, iterations=1)
    for bad, message in ((lambda s, t: {"loss": 1.0}, r"clashing \['loss'\]"),
                         (lambda s, t: {"lengths": t.length}, r"non-scalar or unnamed \['lengths'\]"),
                         (lambda s, t: 3.0, r"must return a dict")):
        with pytest.raises(ValueError, match=message):
            jax.jit(jr.make_train(config, metrics_fn=bad))(jr.agent_keys(0, 1)[0])


def test_a_flax_module_plugs_in_through_init_and_apply():
    flax_linen = pytest.importorskip("flax.linen")

    class Net(flax_linen.Module):
        @flax_linen.compact
        def __call__(self, x):
            x = flax_linen.relu(flax_linen.Dense(16)(x))
            return flax_linen.Dense(2)(x)

    net = Net()
    policy = jr.Policy(lambda key, shape, n: net.init(key, jnp.zeros(shape)), net.apply, "flax-net")
    config = jr.Config(num_seeds=2, num_envs=8, iterations=3)
    params, metrics = fast_jit(jax.vmap(jr.make_train(config, policy=policy)))(jr.agent_keys(0, 2))
    assert params["params"]["Dense_0"]["kernel"].shape == (2, 4, 16)
    spec = jr.make_env("CartPole-v1")
    one = jax.tree.map(lambda x: x[0], params)
    assert policy_apply(policy, one, jnp.zeros((3, 4)), spec).shape == (3, 2)


def test_the_cnn_is_the_same_function_as_xlas_convolution():
    """cnn_policy computes its convolutions as patches @ weights (faster on the CPU): lax.conv's function."""
    cnn = jr.cnn_policy(hidden=(8,), channels=(6, 5))
    params = cnn.init(jax.random.PRNGKey(0), (7, 6, 3), 4)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (9, 7, 6, 3))
    h = obs
    for layer in params["conv"]:
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, layer["w"], (1, 1), "SAME",
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + layer["b"])
    h = h.reshape(9, -1)
    for i, layer in enumerate(params["dense"]):
        h = h @ layer["w"] + layer["b"]
        h = jax.nn.relu(h) if i < len(params["dense"]) - 1 else h
    np.testing.assert_allclose(cnn.apply(params, obs), h, rtol=1e-5, atol=1e-6)
