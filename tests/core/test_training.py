"""The trainer: learning, vmapping over seeds and learning rates, manual = autodiff."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fast_jit import fast_jit

from jax_reinforce import Config, agent_keys, make_env, make_train
from jax_reinforce.core.training import make_init_state, make_run_iterations


def _train_seeds(config, axis_name="agent", jit=fast_jit):
    """Trained seeds; ``fast_jit`` (a fifth of the compile time) where a test checks logic, not learning."""
    train = make_train(config, axis_name=axis_name)
    return jit(jax.vmap(train, axis_name=axis_name))(agent_keys(config.seed, config.num_seeds))


def test_short_run_solves_cartpole_v0_for_most_of_8_seeds():
    # The seed program's network (4-8-2) and environment, a small budget.
    config = Config(env="CartPole-v0", hidden=(8,), num_envs=64, num_seeds=8, iterations=60, learning_rate=0.05)
    params, metrics = _train_seeds(config, jit=jax.jit)
    returns = np.asarray(metrics["episode_return"])
    solved = np.isnan(returns[:, -1])  # a solved agent stops: its later rows are NaN
    best = np.nanmax(returns, axis=1)
    assert solved.sum() >= 6, (solved, best)
    assert np.all(best[solved] >= 195.0)


def test_metrics_count_only_real_steps():
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=16, num_seeds=2, iterations=3, stop_when_solved=False)
    _, metrics = _train_seeds(config)
    steps = np.asarray(metrics["env_steps"])
    episodes = np.asarray(metrics["episodes"])
    returns = np.asarray(metrics["episode_return"])
    np.testing.assert_array_equal(episodes, 16)  # the window is the episode limit: no cut episode
    # CartPole pays 1 per real step, so steps = episodes * mean return.
    np.testing.assert_allclose(steps, episodes * returns, rtol=1e-6)
    assert set(metrics) >= {"episode_return", "episodes", "env_steps", "loss", "grad_norm", "entropy"}
    assert all(v.shape == (2, 3) for v in metrics.values())


def test_vmapped_seeds_equal_seeds_trained_one_by_one():
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=3, iterations=4, stop_when_solved=False)
    batched_params, batched_metrics = _train_seeds(config)
    plain_params, _ = fast_jit(jax.vmap(make_train(config)))(agent_keys(config.seed, config.num_seeds))
    train_one = fast_jit(make_train(config))
    for i, key in enumerate(agent_keys(config.seed, config.num_seeds)):
        params, metrics = train_one(key)
        # One agent unbatched compiles to other (unbatched) dot products than a vmapped batch, so
        # float32 rounding differs: about 1e-6 after 4 Adam steps at lr 0.1. The episodes are the same.
        for a, b, c in zip(jax.tree.leaves(params), jax.tree.leaves(batched_params), jax.tree.leaves(plain_params)):
            np.testing.assert_allclose(a, b[i], atol=5e-6)
            np.testing.assert_allclose(a, c[i], atol=5e-6)
        np.testing.assert_array_equal(metrics["env_steps"], batched_metrics["env_steps"][i])


def test_learning_rate_can_be_vmapped():
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=1, iterations=3, stop_when_solved=False)
    train = make_train(config)
    key = agent_keys(0, 1)[0]
    rates = jnp.array([1e-3, 3e-2])
    params, _ = fast_jit(jax.vmap(train, in_axes=(None, 0)))(key, rates)
    for i, lr in enumerate(rates):
        expected, _ = fast_jit(make_train(config.replace(learning_rate=float(lr))))(key)
        for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params)):
            np.testing.assert_allclose(a, b[i], atol=1e-6)
    assert not np.allclose(jax.tree.leaves(params)[0][0], jax.tree.leaves(params)[0][1])


def test_manual_gradient_trains_exactly_like_autodiff_in_float64():
    with jax.enable_x64(True):
        base = Config(env="CartPole-v1", hidden=(8, 4), num_envs=8, num_seeds=1, iterations=5,
                      entropy_coef=0.01, stop_when_solved=False)
        key = agent_keys(0, 1)[0]
        results = {}
        for grad in ("autodiff", "manual"):
            results[grad] = fast_jit(make_train(base.replace(grad=grad), dtype=jnp.float64))(key)
        for a, b in zip(jax.tree.leaves(results["autodiff"][0]), jax.tree.leaves(results["manual"][0])):
            assert a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(results["autodiff"][1]["env_steps"], results["manual"][1]["env_steps"])


def test_chunked_runs_equal_one_run():
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=2, iterations=6, stop_when_solved=False)
    # XLA's default options: under fast_jit's the 6- and 4-iteration programs differ by an ulp.
    init = jax.jit(jax.vmap(make_init_state(config)))
    run = jax.jit(jax.vmap(make_run_iterations(config, axis_name="a"), in_axes=(0, None), axis_name="a"),
                  static_argnums=1)
    keys = agent_keys(config.seed, config.num_seeds)
    whole, whole_metrics = run(init(keys), 6)
    state = init(keys)
    rows = []
    for _ in range(3):
        state, m = run(state, 4)  # the last call runs 2 iterations, then stops at config.iterations
        rows.append(np.asarray(m["loss"]))
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    chunked_loss = np.concatenate(rows, axis=1)[:, :6]
    np.testing.assert_array_equal(chunked_loss, whole_metrics["loss"])


def test_acrobot_by_name():
    config = Config(env="Acrobot-v1", hidden=(8,), num_envs=4, num_seeds=1, iterations=2, stop_when_solved=False)
    spec = make_env("Acrobot-v1")
    assert (spec.obs_dim, spec.n_actions) == (6, 3)
    params, metrics = _train_seeds(config)
    assert params[-1]["w"].shape == (1, 8, 3)
    assert np.all(np.asarray(metrics["episodes"]) >= 0)
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))


def test_unknown_or_unsuitable_environment_is_refused():
    with pytest.raises(ValueError, match="not a gymnax environment"):
        make_env("CartPole-v9")
    with pytest.raises(ValueError, match="MNISTBandit-bsuite.*downloads the MNIST data set"):
        make_env("MNISTBandit-bsuite")


@pytest.mark.parametrize("action", [0, 1])
def test_gymnax_cartpole_step_matches_gymnasium(action):
    """A guard for gymnax upgrades: the same state and action give the same next state."""
    spec = make_env("CartPole-v1")
    reference = gymnasium.make("CartPole-v1").unwrapped
    reference.reset(seed=0)
    rng = np.random.default_rng(action)
    for _ in range(20):
        s = rng.uniform(-0.2, 0.2, size=4)
        reference.state = s.copy()
        ref_obs, ref_reward, ref_terminated, _, _ = reference.step(action)
        cartpole = type(spec.env)
        state = spec.env.reset_env(jax.random.PRNGKey(0), spec.params)[1].replace(
            x=jnp.float32(s[0]), x_dot=jnp.float32(s[1]), theta=jnp.float32(s[2]), theta_dot=jnp.float32(s[3]))
        obs, _, reward, terminated, _ = spec.env.step_env(jax.random.PRNGKey(0), state, action, spec.params)
        del cartpole
        np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-6)
        assert float(reward) == ref_reward
        assert bool(terminated) == ref_terminated


def test_a_solve_is_confirmed_by_the_greedy_policy_on_fresh_episodes():
    """Two agents whose training episodes met the threshold: a greedy policy that balances, one that does not."""
    from jax_reinforce.core.training import confirmation_episodes

    config = Config(hidden=(), num_envs=32, num_seeds=2, iterations=5)
    state = jax.vmap(make_init_state(config))(agent_keys(0, 2))
    gains = jnp.array([1.0, 1.0, 10.0, 2.0]) * 10  # push towards where the pole falls: balances for 500 steps
    balancing = jnp.stack([-gains, gains], axis=1)
    w = state.params[0]["w"].at[0].set(balancing)  # agent 0 balances; agent 1 is a fresh (near-uniform) policy
    window = state.recent_episodes.shape[1]
    state = state._replace(params=[{"w": w, "b": state.params[0]["b"]}],
                           recent_return_sum=jnp.full((2, window), 1e5), recent_episodes=jnp.full((2, window), 32.0))
    after, metrics = fast_jit(jax.vmap(make_run_iterations(config), in_axes=(0, None)), static_argnums=1)(state, 2)
    episodes = confirmation_episodes(32)
    assert episodes == 128
    np.testing.assert_array_equal(after.confirm_attempts, [1, 1])
    # Agent 0: solved at iteration 0, with the parameters that balanced, after 128 full episodes; it then stops.
    assert int(after.solved_at[0]) == 0 and int(after.confirm_steps[0]) == episodes * 500
    np.testing.assert_array_equal(after.params[0]["w"][0], balancing)
    # Agent 1: its greedy episodes fall early: not solved, its window emptied; it learned at iteration 1 only.
    assert int(after.solved_at[1]) == -1 and 0 < int(after.confirm_steps[1]) < episodes * 100
    assert float(after.recent_episodes[1].sum()) == 32.0
    assert not np.array_equal(after.params[0]["w"][1], state.params[0]["w"][1])
    # The confirmation's rollouts are not iterations: no row of metrics, no training steps.
    np.testing.assert_array_equal(after.iteration, [1, 2])
    np.testing.assert_array_equal(metrics["episodes"], [[32, 0], [32, 32]])
    assert int(metrics["env_steps"][1, 0]) <= 32 * 500
    one = fast_jit(jax.vmap(make_run_iterations(config), in_axes=(0, None)), static_argnums=1)(state, 1)[0]
    np.testing.assert_array_equal(one.params[0]["w"][1], state.params[0]["w"][1])  # the candidate updates nothing
    # Without stop_when_solved nothing is tested.
    off = fast_jit(jax.vmap(make_run_iterations(config.replace(stop_when_solved=False)), in_axes=(0, None)),
                   static_argnums=1)(state, 1)[0]
    np.testing.assert_array_equal(off.confirm_attempts, [0, 0])
