"""The NumPy reference against JAX, against finite differences, and a short training run."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jax_reinforce
from jax_reinforce import numpy_reference as nr

DEPTHS = [(), (8,), (16, 8)]


@pytest.fixture
def x64():
    """float64 in JAX for one test only; the context restores the flag afterwards."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True, scope="module")
def _x64_left_as_found():
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before, "a test of this file left jax_enable_x64 changed"


def _batch(seed, shape=(3, 7), obs_dim=4, n_actions=3):
    """Random observations, actions, weights and a mask with one row fully masked."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((*shape, obs_dim))
    actions = rng.integers(0, n_actions, shape)
    weights = rng.standard_normal(shape)
    mask = (rng.random(shape) < 0.7).astype(np.float64)
    mask[-1] = 0.0
    return obs, actions, weights, mask


def _max_abs_diff(tree_a, tree_b):
    leaves_a, leaves_b = jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)
    assert len(leaves_a) == len(leaves_b)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(leaves_a, leaves_b))


# --- gradient ------------------------------------------------------------------------


@pytest.mark.parametrize(("masked", "entropy_coef"), [(True, 0.0), (False, 0.0), (True, 0.1)])
@pytest.mark.parametrize("hidden", DEPTHS, ids=str)
def test_grad_matches_jax(x64, hidden, masked, entropy_coef):
    params = nr.init_params(1, obs_dim=4, hidden=hidden, n_actions=3, output_scale=1.0)
    obs, actions, weights, mask = _batch(2)
    mask = mask if masked else None
    grad_fn = jax.jit(jax.grad(jax_reinforce.reinforce_loss), static_argnames="entropy_coef")
    expected = grad_fn(params, obs, actions, weights, mask, entropy_coef=entropy_coef)
    got = nr.reinforce_grad(params, obs, actions, weights, mask, entropy_coef=entropy_coef)

    assert jax.tree.structure(got) == jax.tree.structure(params)
    assert all(g.dtype == np.float64 for g in jax.tree.leaves(got))
    assert jax.tree.leaves(expected)[0].dtype == jnp.float64
    assert _max_abs_diff(got, expected) < 1e-12
    loss_jax = jax_reinforce.reinforce_loss(params, obs, actions, weights, mask, entropy_coef)
    assert nr.reinforce_loss(params, obs, actions, weights, mask, entropy_coef) == pytest.approx(
        float(loss_jax), abs=1e-12)


@pytest.mark.parametrize("hidden", DEPTHS, ids=str)
def test_grad_matches_finite_differences(hidden):
    params = nr.init_params(3, obs_dim=4, hidden=hidden, n_actions=3, output_scale=1.0)
    obs, actions, weights, mask = _batch(4, shape=(2, 5))
    grads = nr.reinforce_grad(params, obs, actions, weights, mask, entropy_coef=0.05)

    def loss_at(layer, key, index, delta):
        shifted = [{k: v.copy() for k, v in p.items()} for p in params]
        shifted[layer][key][index] += delta
        return nr.reinforce_loss(shifted, obs, actions, weights, mask, entropy_coef=0.05)

    eps = 1e-6
    worst = 0.0
    for layer, layer_grads in enumerate(grads):
        for key, grad in layer_grads.items():
            for index in np.ndindex(grad.shape):
                numeric = (loss_at(layer, key, index, eps) - loss_at(layer, key, index, -eps)) / (2 * eps)
                worst = max(worst, abs(numeric - grad[index]))
    assert worst < 1e-8


def test_fully_masked_batch_has_zero_grad():
    params = nr.init_params(0)
    obs, actions, weights, _ = _batch(5, n_actions=2)
    grads = nr.reinforce_grad(params, obs, actions, weights, np.zeros(weights.shape))
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads))


def test_grad_rejects_mismatched_shapes():
    params = nr.init_params(0)
    with pytest.raises(ValueError, match="weights"):
        nr.reinforce_grad(params, np.zeros((5, 4)), np.zeros(5, int), np.zeros(4))


# --- softmax, policy, returns --------------------------------------------------------


def test_softmax_and_log_softmax_match_jax(x64):
    rng = np.random.default_rng(6)
    logits = np.concatenate([rng.standard_normal((4, 5)) * 3, [[1000.0, -1000.0, 0.0, 1.0, 2.0]]])
    before = logits.copy()
    for axis in (-1, 0):
        assert np.allclose(nr.softmax(logits, axis), jax.nn.softmax(logits, axis=axis), rtol=1e-14, atol=1e-300)
        assert np.allclose(nr.log_softmax(logits, axis), jax.nn.log_softmax(logits, axis=axis), rtol=1e-14)
    assert np.allclose(nr.softmax(logits), jax_reinforce.softmax(logits), rtol=1e-14, atol=1e-300)
    assert np.allclose(nr.log_softmax(logits), jax_reinforce.log_softmax(logits), rtol=1e-14)
    assert np.array_equal(logits, before)                        # input not modified
    assert np.all(np.isfinite(nr.log_softmax(logits)))
    assert np.allclose(nr.softmax(logits).sum(axis=-1), 1.0)
    assert np.allclose(nr.softmax([1.0, 2.0]), [0.26894142, 0.73105858])


def test_softmax_keeps_float32():
    assert nr.softmax(np.zeros(3, np.float32)).dtype == np.float32
    assert nr.softmax([1, 2]).dtype == np.float64


@pytest.mark.parametrize("hidden", DEPTHS, ids=str)
def test_policy_matches_jax(x64, hidden):
    params = nr.init_params(7, hidden=hidden, output_scale=1.0)
    obs = np.random.default_rng(8).standard_normal((6, 4))
    expected = jax.nn.softmax(jax_reinforce.policy_logits(params, obs))
    assert np.allclose(nr.policy_probs(params, obs), expected, rtol=1e-13)
    assert nr.policy_probs(params, obs[0]).shape == (2,)


def test_init_params_structure():
    params = nr.init_params(0, obs_dim=4, hidden=(16, 8), n_actions=3)
    reference = jax.eval_shape(lambda: jax_reinforce.init_policy(jax.random.key(0), 4, (16, 8), 3))
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    assert [p["w"].shape for p in params] == [(4, 16), (16, 8), (8, 3)]
    assert all(np.all(p["b"] == 0) for p in params)
    assert np.array_equal(params[0]["w"], nr.init_params(0, hidden=(16, 8), n_actions=3)[0]["w"])


def test_reward_to_go_by_hand():
    # G_2 = 3, G_1 = 2 + 0.5 * 3 = 3.5, G_0 = 1 + 0.5 * 3.5 = 2.75
    assert np.allclose(nr.reward_to_go([1.0, 2.0, 3.0], 0.5), [2.75, 3.5, 3.0])
    assert np.allclose(nr.reward_to_go(np.ones(4), 1.0), [4.0, 3.0, 2.0, 1.0])
    assert np.allclose(nr.reward_to_go([5.0, 1.0], 0.0), [5.0, 1.0])
    assert nr.reward_to_go([], 0.9).shape == (0,)


def test_normalise():
    x = nr.normalise([1.0, 2.0, 3.0, 6.0])
    assert x.mean() == pytest.approx(0.0, abs=1e-12)
    assert x.std() == pytest.approx(1.0, abs=1e-6)


# --- optimisers ----------------------------------------------------------------------


def test_adam_matches_optax(x64):
    params = nr.init_params(9, hidden=(8,), output_scale=1.0)
    rng = np.random.default_rng(10)
    grads_seq = [jax.tree.map(lambda p: rng.standard_normal(p.shape), params) for _ in range(3)]
    opt = optax.adam(0.05)
    opt_state, optax_params = opt.init(params), params
    state, ours = nr.adam_init(params), params
    for grads in grads_seq:
        updates, opt_state = opt.update(grads, opt_state)
        optax_params = optax.apply_updates(optax_params, updates)
        ours, state = nr.adam_step(ours, grads, state, 0.05)
    assert state.count == 3
    assert _max_abs_diff(ours, optax_params) < 1e-12
    assert _max_abs_diff(params, nr.init_params(9, hidden=(8,), output_scale=1.0)) == 0.0


def test_sgd_step():
    params = nr.init_params(0)
    grads = jax.tree.map(np.ones_like, params)
    stepped = nr.sgd_step(params, grads, 0.1)
    assert _max_abs_diff(jax.tree.map(lambda p, q: (p - q) / 0.1, params, stepped), grads) < 1e-12


# --- import and training -------------------------------------------------------------


def test_import_does_not_load_jax():
    code = (
        "import sys, jax_reinforce.numpy_reference\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_train_smoke():
    result = nr.train(seed=0, max_episodes=6, episodes_per_update=2, quiet=True)
    assert isinstance(result, nr.TrainResult)
    assert result.solved is False and result.episodes_to_solve is None
    assert result.episodes == len(result.returns) == 6
    assert result.env_steps == sum(result.returns)               # CartPole pays 1 per step
    assert all(1 <= r <= 200 for r in result.returns)
    assert result.seconds > 0
    assert [p["w"].shape for p in result.params] == [(4, 8), (8, 2)]
    assert nr.train(seed=0, max_episodes=6, episodes_per_update=2, quiet=True).returns == result.returns


def test_train_stops_when_solved(capsys):
    result = nr.train(seed=1, max_episodes=50, solve_threshold=1.0, solve_window=3, print_every=1)
    assert result.solved and result.episodes_to_solve == result.episodes == 3
    assert "episode     1" in capsys.readouterr().out


def test_main_reports(capsys):
    assert nr.main(["--seed", "0", "1", "--max-episodes", "2", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "seed 0: not solved in 2 episodes" in out and "0/2 solved" in out
