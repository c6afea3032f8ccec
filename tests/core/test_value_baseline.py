"""The learned value baseline in the trainer (``baseline="value"``): config, update, checkpoint, resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_reinforce as jr
from jax_reinforce import Config, agent_keys, make_train
from jax_reinforce.harness.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, load_train_state
from jax_reinforce.core.returns import apply_baseline

from _fast_jit import fast_jit

BASE = dict(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=2, stop_when_solved=False,
            baseline="value", value_hidden=(8,))


@pytest.mark.parametrize("changes, match", [
    ({"value_hidden": (0,)}, r"value_hidden \(--value-hidden\)"),
    ({"value_hidden": "64"}, r"value_hidden \(--value-hidden\)"),
    ({"value_learning_rate": 0.0}, r"value_learning_rate \(--value-lr\) must be a finite number > 0"),
    ({"value_learning_rate": float("inf")}, r"value_learning_rate \(--value-lr\)"),
    ({"value_learning_rate": 1e-50}, r"value_learning_rate \(--value-lr\).*float32"),
    ({"value_learning_rate": True}, r"value_learning_rate \(--value-lr\)"),
    ({"normalize_advantages": 1}, r"normalize_advantages \(--normalize-advantages\) must be True or False"),
    ({"baseline": "critic"}, r"baseline \(--baseline\) must be one of none, mean, normalize, value"),
])
def test_config_refuses_bad_value_baseline_fields(changes, match):
    with pytest.raises(ValueError, match=match):
        Config(**{**BASE, **changes})


def test_flags_give_the_value_baseline_fields():
    config = Config.from_flags({"baseline": "value", "value_hidden": "32,16", "value_learning_rate": "0.003",
                                "normalize_advantages": "false"})
    assert (config.value_hidden, config.value_learning_rate, config.normalize_advantages) == ((32, 16), 0.003, False)
    assert Config.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"value_learning_rate \(--value-lr\) takes one value"):
        Config.from_flags({"value_learning_rate": "0.1,0.2"})


def test_value_weights_are_the_advantages_and_normalised_per_batch():
    returns = jnp.array([[3.0, 1.0], [2.0, 5.0], [1.0, 0.0]])
    values = jnp.array([[1.0, 2.0], [0.5, 1.0], [4.0, 9.0]])
    mask = jnp.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    raw = apply_baseline(returns, mask, "value", values=values, normalize_advantages=False)
    np.testing.assert_allclose(raw, (returns - values) * mask)
    normalised = apply_baseline(returns, mask, "value", values=values)
    picked = np.asarray(normalised)[np.asarray(mask) > 0]
    np.testing.assert_allclose([picked.mean(), picked.std()], [0.0, 1.0], atol=1e-6)
    assert float(normalised[2, 1]) == 0.0
    with pytest.raises(ValueError, match="needs the values"):
        apply_baseline(returns, mask, "value")


def test_value_network_is_trained_and_part_of_the_state():
    config = Config(**BASE, iterations=4)
    init = jr.make_init_state(config)(agent_keys(0, 1)[0])
    assert [layer["w"].shape for layer in init.value_params] == [(4, 8), (8, 1)]
    state, metrics = fast_jit(jr.make_run_iterations(config), static_argnums=1)(init, 4)
    assert int(state.iteration) == 4 and np.all(np.isfinite(np.asarray(metrics["loss"])))
    for before, after in zip(jax.tree.leaves(init.value_params), jax.tree.leaves(state.value_params)):
        assert not np.array_equal(before, after)
    # Without a value baseline the state holds no value network at all.
    plain = jr.make_init_state(Config(**{**BASE, "baseline": "normalize"}))(agent_keys(0, 1)[0])
    assert plain.value_params == () and plain.value_opt_state == ()


def test_value_baseline_changes_the_policy_update():
    key = agent_keys(0, 1)[0]
    results = [fast_jit(make_train(Config(**{**BASE, "iterations": 3, "baseline": b})))(key)[0]
               for b in ("value", "normalize")]
    assert not all(np.array_equal(a, b) for a, b in zip(*map(jax.tree.leaves, results)))


def test_manual_gradient_with_value_baseline_trains_like_autodiff_in_float64():
    with jax.enable_x64(True):
        key = agent_keys(0, 1)[0]
        results = {}
        for grad in ("autodiff", "manual"):
            config = Config(**{**BASE, "iterations": 4, "grad": grad, "entropy_coef": 0.01})
            init = jr.make_init_state(config, dtype=jnp.float64)(key)
            results[grad] = fast_jit(jr.make_run_iterations(config), static_argnums=1)(init, 4)
        (auto, auto_metrics), (manual, manual_metrics) = results["autodiff"], results["manual"]
        for a, b in zip(jax.tree.leaves((auto.params, auto.value_params)),
                        jax.tree.leaves((manual.params, manual.value_params))):
            assert a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(auto_metrics["env_steps"], manual_metrics["env_steps"])


@pytest.fixture(scope="module")
def value_runs(tmp_path_factory):
    """A 4-iteration value-baseline run, and the same run made of 2 iterations and a resume."""
    root = tmp_path_factory.mktemp("value_runs")
    config = Config(**BASE, iterations=4)
    whole = jr.train_run(config, root / "whole", eval_episodes=0, compile_cache=False)
    jr.train_run(config.replace(iterations=2), root / "part", eval_episodes=0, compile_cache=False)
    resumed = jr.train_run(config, root / "part", resume=True, typed_fields=["iterations"], eval_episodes=0,
                           compile_cache=False)
    return config, root, whole, resumed


def test_value_baseline_run_resumes_bitwise_and_checkpoints_its_network(value_runs):
    config, root, whole, resumed = value_runs
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    assert (root / "whole" / "metrics.csv").read_bytes() == (root / "part" / "metrics.csv").read_bytes()
    with np.load(root / "whole" / CHECKPOINT_NAME) as archive:
        names = set(archive.files)
        assert int(archive["format_version"]) == 3
    assert {"state/value_params/0/w", "state/value_params/1/b"} <= names
    params, loaded_config = load_checkpoint(root / "whole")
    assert loaded_config == config
    state, _, _ = load_train_state(root / "whole", whole.state)
    for a, b in zip(jax.tree.leaves(state.value_params), jax.tree.leaves(whole.state.value_params)):
        np.testing.assert_array_equal(a, b)


def test_non_finite_value_network_in_a_checkpoint_is_refused(value_runs, tmp_path):
    with np.load(value_runs[1] / "whole" / CHECKPOINT_NAME) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["state/value_params/0/w"] = np.full_like(arrays["state/value_params/0/w"], np.nan)
    with open(tmp_path / CHECKPOINT_NAME, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(CheckpointError, match=r"non-finite values in 'state/value_params/0/w' of seeds \[0, 1\]"):
        load_checkpoint(tmp_path)


def test_a_version_2_checkpoint_is_evaluated_but_not_resumed(tmp_path):
    config = Config(**{**BASE, "baseline": "normalize"}, iterations=1)
    run = jr.train_run(config, tmp_path, eval_episodes=0, compile_cache=False)
    with np.load(tmp_path / CHECKPOINT_NAME) as archive:  # what version 2 held: no confirmation counts
        arrays = {name: archive[name] for name in archive.files if "confirm_" not in name}
    arrays["format_version"] = np.asarray(2, np.int64)
    with open(tmp_path / CHECKPOINT_NAME, "wb") as f:
        np.savez(f, **arrays)
    params, _ = load_checkpoint(tmp_path)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(run.state.params)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="format version 2.*can be evaluated.*but not resumed"):
        load_train_state(tmp_path, run.state)
