"""Every gymnax environment through the trainer: specs, 0/1 observations, stored observations, Box actions.

The per-environment programs are tiny and compiled with ``fast_jit``; the
test of the run loop (``train_run``) is the one that compiles with the
library's own options.
"""

import warnings

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fast_jit import fast_jit

from jax_reinforce import Config, init_policy, load_checkpoint, make_env, make_train, rollout, train_run
from jax_reinforce.core.envs import (
    BINARY_OBS_ENVS,
    CARTPOLE_NAMES,
    REFUSED_ENVS,
    SOLVE_THRESHOLDS,
    encode_obs,
    store_obs,
)
from jax_reinforce.app.run import report_lines
from jax_reinforce.core.training import make_init_state

ENV_NAMES = tuple(name for name in gymnax.registered_envs if name not in REFUSED_ENVS)
BOX_ENVS = ("Pendulum-v1", "MountainCarContinuous-v0", "PointRobot-misc", "Reacher-misc", "Swimmer-misc")


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


# --- make_env: the spec agrees with gymnax ---------------------------------------------------------


@pytest.mark.parametrize("name", ENV_NAMES)
def test_spec_agrees_with_gymnax(name):
    spec = make_env(name)
    env, params = gymnax.make(name)
    obs_space, action_space = env.observation_space(params), env.action_space(params)
    assert spec.name == name
    assert spec.obs_shape == tuple(obs_space.shape)
    if name == "FrozenLake-misc":  # a cell index, one-hot encoded
        assert spec.one_hot and spec.obs_shape == () and spec.obs_dim == obs_space.n == 16
        assert spec.obs_store_dtype == "int32"
    else:
        assert not spec.one_hot
        assert spec.obs_dim == int(np.prod(obs_space.shape))
        assert spec.obs_store_dtype == ("uint8" if name in BINARY_OBS_ENVS else "float32")
    continuous = not hasattr(action_space, "n")
    assert spec.continuous == continuous == (name in BOX_ENVS)
    if continuous:
        size = int(np.prod(action_space.shape))
        assert spec.n_actions == size
        for bound, given in ((action_space.low, spec.action_low), (action_space.high, spec.action_high)):
            assert isinstance(given, tuple) and len(given) == size
            np.testing.assert_array_equal(np.asarray(given, np.float32),
                                          np.broadcast_to(np.asarray(bound, np.float32), action_space.shape).ravel())
    else:
        assert spec.n_actions == action_space.n
        assert spec.action_low is None and spec.action_high is None
    assert isinstance(spec.max_steps, int) and spec.max_steps == params.max_steps_in_episode
    assert spec.solve_threshold == SOLVE_THRESHOLDS.get(name)
    assert repr(spec.params) == repr(params)


def test_cartpole_v0_is_cartpole_with_200_steps():
    spec = make_env("CartPole-v0")
    assert (spec.obs_dim, spec.n_actions, spec.max_steps, spec.solve_threshold) == (4, 2, 200, 195.0)
    assert spec.params.max_steps_in_episode == 200 and not spec.continuous


def test_mnist_bandit_is_refused_in_one_line():
    with pytest.raises(ValueError) as error:
        make_env("MNISTBandit-bsuite")
    message = str(error.value)
    assert "MNISTBandit-bsuite" in message and "MNIST" in message.replace("MNISTBandit", "")
    assert "download" in message and "\n" not in message
    with pytest.raises(ValueError, match="MNIST data set") as error:  # and a Config naming it, before any work
        Config(env="MNISTBandit-bsuite")
    assert "\n" not in str(error.value)


def test_an_unknown_name_lists_every_accepted_name():
    with pytest.raises(ValueError) as error:
        make_env("CartPole-v9")
    message = str(error.value)
    assert "\n" not in message and "'CartPole-v9'" in message
    allowed = message.split("allowed: ", 1)[1].split(", ")
    assert set(allowed) == set(ENV_NAMES) | set(CARTPOLE_NAMES)  # CartPole-v0 is accepted too
    assert "MNISTBandit-bsuite" not in allowed


# --- 0/1 observations --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BINARY_OBS_ENVS)
def test_binary_obs_envs_give_only_zeros_and_ones(name):
    spec = make_env(name)
    env, env_params = spec.env, spec.params
    num_envs, num_steps = 8, 32

    def observations(key):
        """The reset's and each step's observations ``(1 + T, N, ...)``, and which are of live episodes.

        Random actions; no reset after an episode ends (its later rows are
        not counted), as in the trainer's rollout.
        """
        reset_key, steps_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(reset_key, num_envs), env_params)

        def step(carry, key):
            state, alive = carry
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (num_envs,), 0, spec.n_actions)
            obs, state, _, terminated, _ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, num_envs), state, actions, env_params)
            ended = terminated | jax.vmap(env.is_truncated, in_axes=(0, None))(state, env_params)
            return (state, alive & ~ended), (obs, alive)

        _, (later, alive) = jax.lax.scan(step, (state, jnp.ones(num_envs, bool)), jax.random.split(steps_key, num_steps))
        return jnp.concatenate([obs[None], later]), jnp.concatenate([jnp.ones((1, num_envs), bool), alive])

    obs, live = (np.asarray(x) for x in fast_jit(observations)(jax.random.PRNGKey(0)))
    assert obs.shape == (1 + num_steps, num_envs, *spec.obs_shape)
    obs = obs[live]  # each episode's observations, its last included
    assert len(obs) > 2 * num_envs
    assert np.isin(obs, (0, 1)).all(), np.unique(obs)
    assert (obs == 1).any()  # not vacuous: the board shows something
    # Exact in uint8, and back.
    stored = store_obs(spec, obs, jnp.float32)
    assert stored.dtype == jnp.uint8
    np.testing.assert_array_equal(encode_obs(spec, stored, jnp.float32), obs.reshape(len(obs), -1))


# --- store_obs / encode_obs ------------------------------------------------------------------------


def test_float_observations_are_stored_bit_for_bit():
    spec = make_env("CartPole-v1")
    raw = np.array([[[0.0, -0.0, 1e-40, -3.4e38], [np.pi, -1.5, 7e-8, 2.0]],
                    [[np.inf, 1 / 3, -1e-20, 4.8], [-np.inf, 0.1, 1e30, -2.5]]], np.float32)  # (2, 2, 4)
    for obs in (raw, raw[0, 0]):
        stored = store_obs(spec, obs, jnp.float32)
        assert stored.dtype == jnp.float32 and stored.shape == obs.shape
        np.testing.assert_array_equal(np.asarray(stored).view(np.uint32), obs.view(np.uint32))
        encoded = encode_obs(spec, stored, jnp.float32)
        assert encoded.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(encoded).view(np.uint32), obs.view(np.uint32))


@pytest.mark.parametrize("name", ["Breakout-MinAtar", "Catch-bsuite"])
def test_binary_images_are_stored_flat_in_uint8(name):
    spec = make_env(name)
    rng = np.random.default_rng(0)
    # Catch's gymnax observation space is int32, MinAtar's float32.
    dtype = np.int32 if name == "Catch-bsuite" else np.float32
    for batch in ((), (3,), (2, 5)):
        raw = rng.integers(0, 2, (*batch, *spec.obs_shape)).astype(dtype)
        stored = store_obs(spec, raw, jnp.float32)
        assert stored.dtype == jnp.uint8 and stored.shape == (*batch, spec.obs_dim)
        encoded = encode_obs(spec, stored, jnp.float32)
        assert encoded.dtype == jnp.float32
        np.testing.assert_array_equal(encoded, raw.reshape(*batch, spec.obs_dim).astype(np.float32))


def test_frozen_lake_stores_the_index_and_encodes_one_hot_rows():
    spec = make_env("FrozenLake-misc")
    for raw in (np.int32(5), np.arange(16, dtype=np.int32).reshape(4, 4), np.array([[[0, 15, 3]]], np.int32)):
        stored = store_obs(spec, raw, jnp.float32)
        assert stored.dtype == jnp.int32 and stored.shape == raw.shape
        np.testing.assert_array_equal(stored, raw)
        for dtype in (jnp.float32, jnp.bfloat16):
            encoded = encode_obs(spec, stored, dtype)
            assert encoded.dtype == dtype and encoded.shape == (*raw.shape, 16)
            np.testing.assert_array_equal(np.asarray(encoded, np.float32), np.eye(16, dtype=np.float32)[raw])


def test_multi_dimensional_float_observations_are_flattened():
    spec = make_env("SimpleBandit-bsuite")  # (1, 1) float observations
    raw = np.arange(6, dtype=np.float32).reshape(2, 3, 1, 1) / 7
    stored = store_obs(spec, raw, jnp.float32)
    assert stored.dtype == jnp.float32 and stored.shape == (2, 3, 1)
    np.testing.assert_array_equal(encode_obs(spec, stored, jnp.float32), raw.reshape(2, 3, 1))


# --- the rollout's buffers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, obs_dtype, obs_tail", [("FrozenLake-misc", jnp.int32, ()),
                                                     ("CartPole-v1", jnp.float32, (4,))])
def test_rollout_buffers_hold_the_stored_form(name, obs_dtype, obs_tail):
    # Breakout's uint8 buffers: test_minatar_rollout_buffers_hold_uint8_observations; Box actions:
    # test_actions_are_stored_unclipped_and_sent_clipped.
    spec = make_env(name)
    key = jax.random.PRNGKey(0)
    params = init_policy(key, spec.obs_dim, (4,), spec.n_actions)
    traj = jax.eval_shape(lambda p, k: rollout(p, k, spec, 3, 7), params, key)
    assert (traj.obs.dtype, traj.obs.shape) == (obs_dtype, (7, 3, *obs_tail))
    assert (traj.actions.dtype, traj.actions.shape) == (jnp.int32, (7, 3))
    assert (traj.rewards.dtype, traj.rewards.shape) == (jnp.float32, (7, 3))


def test_minatar_rollout_buffers_hold_uint8_observations():
    spec = make_env("Breakout-MinAtar")
    params = init_policy(jax.random.PRNGKey(1), spec.obs_dim, (), spec.n_actions)
    traj = fast_jit(lambda p, k: rollout(p, k, spec, 2, 12))(params, jax.random.PRNGKey(2))
    obs = np.asarray(traj.obs)
    assert obs.dtype == np.uint8 and obs.shape == (12, 2, spec.obs_dim)
    assert traj.actions.dtype == jnp.int32 and traj.actions.shape == (12, 2)
    assert np.isin(obs, (0, 1)).all()
    alive = np.asarray(traj.alive)
    assert alive[0].all() and (obs[0].sum(axis=-1) > 0).all()  # the paddle, ball and bricks
    assert (obs[~alive] == 0).all()


# --- one short training run in every environment ---------------------------------------------------


# The trainer's program is compiled and run in every environment but six of the 0/1 ones: their own
# code (MinAtar's the costliest to compile, up to 4 s) is compiled and run by
# test_binary_obs_envs_give_only_zeros_and_ones, the trainer's uint8 path by Breakout and Catch (whose
# gymnax observations are int32); the six trainers are traced only (compiling them: 17 s more).
TRACED_ONLY_ENVS = tuple(name for name in BINARY_OBS_ENVS if name not in ("Breakout-MinAtar", "Catch-bsuite"))


def _short_config(name):
    # Whole episodes (the window is the episode limit), so every episode ends and is learned from; the
    # entropy bonus gives every parameter a gradient even where all returns are equal.
    return Config(env=name, hidden=(4,), num_envs=2, num_seeds=1, iterations=2, entropy_coef=0.01,
                  stop_when_solved=False)


@pytest.mark.parametrize("name", TRACED_ONLY_ENVS)
def test_trainer_traces_in_the_other_binary_obs_envs(name):
    spec = make_env(name)
    params, metrics = jax.eval_shape(make_train(_short_config(name)), jax.random.PRNGKey(0))
    assert [{k: v.shape for k, v in layer.items()} for layer in params] == [
        {"w": (spec.obs_dim, 4), "b": (4,)}, {"w": (4, spec.n_actions), "b": (spec.n_actions,)}]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    assert {k: v.shape for k, v in metrics.items()} == {k: (2,) for k in metrics}


@pytest.mark.parametrize("name", [name for name in ENV_NAMES if name not in TRACED_ONLY_ENVS])
def test_short_training_run(name):
    config = _short_config(name)
    spec = make_env(name)
    init_state, train = make_init_state(config), make_train(config)
    initial, (params, metrics) = fast_jit(lambda k: (init_state(k).params, train(k)))(jax.random.PRNGKey(0))
    assert jax.tree.structure(params) == jax.tree.structure(initial)
    assert params[0]["w"].shape == (spec.obs_dim, 4) and params[-1]["w"].shape == (4, spec.n_actions)
    for before, after in zip(_leaves(initial), _leaves(params)):
        assert np.isfinite(after).all()
        assert not np.array_equal(before, after)  # the two updates were applied
    if spec.continuous:
        assert params[-1]["log_std"].shape == (spec.n_actions,)
    else:
        assert "log_std" not in params[-1]
    metrics = {k: np.asarray(v) for k, v in metrics.items()}
    np.testing.assert_array_equal(metrics["episodes"], [2, 2])
    assert ((metrics["env_steps"] > 0) & (metrics["env_steps"] <= 2 * spec.max_steps)).all()
    for name_ in ("episode_return", "loss", "grad_norm", "entropy"):
        assert np.isfinite(metrics[name_]).all(), (name_, metrics[name_])
    assert (metrics["grad_norm"] > 0).all()


# --- Box actions -------------------------------------------------------------------------------------


def test_manual_gaussian_gradient_trains_exactly_like_autodiff_in_float64():
    with jax.enable_x64(True):
        base = Config(env="Pendulum-v1", hidden=(8, 4), num_envs=4, num_seeds=1, iterations=3,
                      entropy_coef=0.01, stop_when_solved=False)
        key = jax.random.PRNGKey(3)
        init_state = make_init_state(base, dtype=jnp.float64)
        trained = {}
        for grad in ("autodiff", "manual"):
            train = make_train(base.replace(grad=grad), dtype=jnp.float64)
            initial, (trained[grad], _) = fast_jit(lambda k: (init_state(k).params, train(k)))(key)
        assert jax.tree.structure(trained["manual"]) == jax.tree.structure(trained["autodiff"])
        for a, b, c in zip(_leaves(trained["autodiff"]), _leaves(trained["manual"]), _leaves(initial)):
            assert a.dtype == b.dtype == np.float64
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
            assert np.abs(a - c).max() > 1e-4  # they moved, by the same amounts
        assert trained["manual"][-1]["log_std"].shape == (1,)


CAR = "MountainCarContinuous-v0"  # actions in [-1, 1]; its reward, -0.1 a^2 per step, takes the action unclipped


def _constant_policy(mean, log_std=None):
    """A linear policy of the car whose output is ``mean`` in every state (zero weights)."""
    spec = make_env(CAR)
    params = init_policy(jax.random.PRNGKey(0), spec.obs_dim, (), 1)
    layer = {"w": jnp.zeros_like(params[0]["w"]), "b": jnp.full((1,), mean, jnp.float32)}
    if log_std is not None:
        layer["log_std"] = jnp.full((1,), log_std, jnp.float32)
    return [layer]


def test_actions_are_stored_unclipped_and_sent_clipped():
    spec = make_env(CAR)
    key = jax.random.PRNGKey(4)
    num_envs, num_steps = 3, 20
    greedy = fast_jit(lambda p, k: rollout(p, k, spec, num_envs, num_steps, greedy=True))
    sampled = fast_jit(lambda p, k: rollout(p, k, spec, num_envs, num_steps))
    # Greedy policies need no log_std: the mean is the action.
    at_high, at_low = greedy(_constant_policy(1.0), key), greedy(_constant_policy(-1.0), key)
    far_high, far_low = greedy(_constant_policy(100.0), key), greedy(_constant_policy(-100.0), key)
    noisy = sampled(_constant_policy(100.0, log_std=0.0), key)
    np.testing.assert_array_equal(far_high.actions, 100.0)  # the mean, unclipped
    np.testing.assert_array_equal(far_low.actions, -100.0)
    np.testing.assert_array_equal(at_high.actions, 1.0)
    assert noisy.actions.dtype == jnp.float32 and noisy.actions.shape == (num_steps, num_envs, 1)
    noise = np.asarray(noisy.actions) - 100.0  # a = mu + sigma eps, sigma = 1, unclipped
    assert 0.5 < noise.std() < 1.5 and np.abs(noise).max() < 6 and np.unique(noise).size == noise.size
    # The environment was sent the bound each time: the rewards (-0.1 a^2, not -1000) and the
    # states of the policy sitting on it.
    np.testing.assert_allclose(at_high.rewards, -0.1, rtol=1e-6)
    for beyond, bound in ((far_high, at_high), (noisy, at_high), (far_low, at_low)):
        np.testing.assert_array_equal(beyond.rewards, bound.rewards)
        np.testing.assert_array_equal(beyond.obs, bound.obs)
    assert not np.array_equal(at_high.obs, at_low.obs)  # the action matters


def test_a_sampling_gaussian_policy_needs_log_std():
    spec = make_env(CAR)
    # Warnings as errors: the refusal must not rest on behaviour JAX deprecates (jnp.shape(None)).
    with warnings.catch_warnings(), pytest.raises(ValueError) as error:
        warnings.simplefilter("error")
        rollout(_constant_policy(0.0), jax.random.PRNGKey(0), spec, 2, 4)
    message = str(error.value)
    assert "log_std" in message and CAR in message and "\n" not in message
    with pytest.raises(ValueError, match="log_std"):  # (A,) it must be
        rollout([{**_constant_policy(0.0)[0], "log_std": jnp.zeros((2,))}], jax.random.PRNGKey(0), spec, 2, 4)


# --- the run loop ----------------------------------------------------------------------------------


def test_train_run_on_pendulum(tmp_path):
    config = Config(env="Pendulum-v1", hidden=(4,), num_envs=2, num_seeds=1, iterations=2)
    result = train_run(config, tmp_path / "run", eval_episodes=2, compile_cache=False, log=lambda line: None)
    assert result.status == "finished", result.message
    summary = result.summary
    assert summary["solve_threshold"] is None and summary["seeds_solved"] == 0
    assert summary["iterations_run"] == 2 and summary["env_steps"] == 2 * 2 * 200
    assert not any(key.startswith("seeds_at_threshold") for key in summary)
    assert set(summary["evaluation"]) == {"gymnax_mean", "gymnasium_mean"}
    for means in summary["evaluation"].values():
        assert len(means) == 1 and -16.3 * 200 <= means[0] <= 0  # Pendulum's reward is in [-16.3, 0]
    assert any("no solve threshold" in line for line in report_lines(summary, result.run_dir))
    params, saved = load_checkpoint(result.run_dir)
    assert saved == config
    assert params[-1]["log_std"].shape == (1, 1)
    for a, b in zip(_leaves(params), _leaves(result.state.params)):
        np.testing.assert_array_equal(a, b)
