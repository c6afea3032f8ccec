"""One stop test for a whole vmapped batch: batch_any / batch_max, and the loops that use them."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from _fast_jit import fast_jit

from jax_reinforce import Config, agent_keys, init_policy, make_env, make_train, rollout
from jax_reinforce.core.batching import batch_any, batch_max, batched_under_vmap
from jax_reinforce.core.network import policy_logits
from jax_reinforce.core.policy import actions_from_uniform
from jax_reinforce.core.rollouts import _acting_actions, _acting_logits


def test_identity_outside_vmap():
    assert int(batch_max(jnp.int32(7))) == 7
    assert int(jax.jit(batch_max)(jnp.int32(-3))) == -3
    assert bool(batch_any(False)) is False and bool(batch_any(True)) is True


def test_under_vmap_the_batch_maximum_unbatched():
    x = jnp.array([3, 9, 1], jnp.int32)
    out = jax.jit(jax.vmap(batch_max))(x)
    np.testing.assert_array_equal(out, [9, 9, 9])
    # The value is the same for every member: vmap sees it as unbatched.
    jaxpr = jax.make_jaxpr(jax.vmap(lambda v: batch_max(v) + 0 * v))(x)
    assert jaxpr.out_avals[0].shape == (3,)


def test_nested_vmaps_reduce_every_axis():
    x = jnp.arange(12, dtype=jnp.int32).reshape(3, 4) % 7
    out = jax.jit(jax.vmap(jax.vmap(batch_max)))(x)
    np.testing.assert_array_equal(out, np.full((3, 4), int(x.max())))
    flags = jnp.zeros((2, 5), bool).at[1, 3].set(True)
    np.testing.assert_array_equal(jax.vmap(jax.vmap(batch_any))(flags), np.ones((2, 5), bool))
    np.testing.assert_array_equal(jax.vmap(jax.vmap(batch_any))(jnp.zeros((2, 5), bool)), np.zeros((2, 5), bool))


def test_batched_under_vmap_is_the_identity_outside_vmap():
    tree = {"k": jnp.array([1, 2], jnp.uint32), "x": jnp.float32(0.5), "n": (jnp.int32(3),)}
    for out in (batched_under_vmap(tree), jax.jit(batched_under_vmap)(tree)):
        assert jax.tree.structure(out) == jax.tree.structure(tree)
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(tree)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def _loop_carry_shapes(fun, *args):
    """The shapes of the first ``while`` loop's carry in ``jax.make_jaxpr(fun)(*args)``."""
    (loop,) = [eqn for eqn in jax.make_jaxpr(fun)(*args).jaxpr.eqns if eqn.primitive.name == "while"]
    return [v.aval.shape for v in loop.outvars]


def test_batched_under_vmap_batches_every_leaf_of_a_loops_carry_under_nested_vmaps():
    def count(n, carry=lambda c: c):  # a counter and a sum: the counter alone is the same for every member
        def body(c):
            t, total = c
            return t + 1, total + n

        return jax.lax.while_loop(lambda c: c[0] < 3, body, carry((jnp.int32(0), 0 * n)))

    n = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
    plain = jax.vmap(jax.vmap(count))
    marked = jax.vmap(jax.vmap(lambda v: count(v, batched_under_vmap)))
    assert _loop_carry_shapes(plain, n) == [(), (2, 3)]  # vmap's own choice: the counter stays unbatched
    assert _loop_carry_shapes(marked, n) == [(2, 3), (2, 3)]
    for a, b in zip(plain(n), marked(n)):  # the same values
        np.testing.assert_array_equal(np.broadcast_to(a, (2, 3)), b)
    np.testing.assert_array_equal(marked(n)[1], 3 * n)


def _count_down_loop(n):
    """Counts n down to 0 while appending to a buffer; extra steps past 0 change nothing."""

    def go_on(carry):
        return batch_any(carry[0] > 0)

    def body(carry):
        k, buf, t = carry
        live = k > 0
        buf = buf.at[t].set(jnp.where(live, k, 0))
        return k - live.astype(k.dtype), buf, t + 1

    _, buf, _ = jax.lax.while_loop(go_on, body, (n, jnp.zeros((16,), jnp.int32), jnp.int32(0)))
    return buf


def _batched_stop_tests(jaxpr) -> int:
    """``while`` loops in ``jaxpr`` (and its sub-jaxprs) whose stop test differs per batch member.

    JAX lowers such a loop with a select between every member's new and old
    carry at every step (the stop test has rank > 0).
    """
    count = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while" and eqn.params["cond_jaxpr"].out_avals[0].shape != ():
            count += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            count += _batched_stop_tests(sub)
    return count


def test_a_loop_with_a_shared_stop_test_gives_each_members_result_and_selects_no_buffer():
    n = jnp.array([0, 3, 11], jnp.int32)
    batched = jax.jit(jax.vmap(_count_down_loop))(n)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], _count_down_loop(n[i]))
    # A per-member stop test would make vmap select between old and new buffers at every step.
    assert _batched_stop_tests(jax.make_jaxpr(jax.vmap(_count_down_loop))(n).jaxpr) == 0


def test_plain_vmapped_rollout_equals_named_axis_rollout_and_selects_no_buffer():
    spec = make_env("CartPole-v1")
    keys = jax.random.split(jax.random.key(1), 3)
    params = jax.vmap(lambda k: init_policy(k, 4, (8,), 2, output_scale=1.0))(keys)

    def plain(p, k):
        return rollout(p, k, spec, 6, 40)

    def named(p, k):
        return rollout(p, k, spec, 6, 40, axis_name="a")

    a = fast_jit(jax.vmap(plain))(params, keys)
    b = fast_jit(jax.vmap(named, axis_name="a"))(params, keys)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert int(np.asarray(a.length).min()) < int(np.asarray(a.length).max())  # members differ in length
    assert _batched_stop_tests(jax.make_jaxpr(jax.vmap(plain))(params, keys).jaxpr) == 0


def test_plain_idiom_equals_named_axis_and_nested_vmap_over_learning_rates():
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=3, iterations=5, stop_when_solved=False)
    keys = agent_keys(config.seed, config.num_seeds)
    # No loop of the trainer has a per-agent stop test under the plain idiom, nested or not.
    assert _batched_stop_tests(jax.make_jaxpr(jax.vmap(make_train(config)))(keys).jaxpr) == 0
    # Every program here is compiled the same way (fast_jit: tiny programs, compiling is their cost).
    plain = fast_jit(jax.vmap(make_train(config)))(keys)
    named = fast_jit(jax.vmap(make_train(config, axis_name="s"), axis_name="s"))(keys)
    for x, y in zip(jax.tree.leaves(plain), jax.tree.leaves(named)):
        np.testing.assert_array_equal(x, y)
    rates = jnp.array([0.01, 0.1])
    grid = fast_jit(jax.vmap(jax.vmap(make_train(config), in_axes=(0, None)), in_axes=(None, 0)))(keys, rates)
    assert grid[1]["env_steps"].shape == (2, 3, 5)
    one, one_metrics = fast_jit(jax.vmap(make_train(config.replace(learning_rate=0.1))))(keys)
    np.testing.assert_array_equal(grid[1]["env_steps"][1], one_metrics["env_steps"])
    np.testing.assert_allclose(grid[0][0]["w"][1], one[0]["w"], atol=1e-6)


@pytest.mark.parametrize("num_actions", [2, 3, 5])
def test_acting_actions_equal_inverse_cdf_sampling_away_from_rounding(num_actions):
    key_logits, key_u = jax.random.split(jax.random.key(num_actions))
    logits = jax.random.normal(key_logits, (4000, num_actions)) * 2.0
    uniform = jax.random.uniform(key_u, (4000,))
    fast = np.asarray(jax.jit(_acting_actions)(logits, uniform))
    reference = np.asarray(jax.jit(actions_from_uniform)(logits, uniform))
    cdf = np.cumsum(np.asarray(jax.nn.softmax(logits.astype(jnp.float64) if jax.config.jax_enable_x64 else logits)), -1)
    clear = np.all(np.abs(cdf[:, :-1] - np.asarray(uniform)[:, None]) > 1e-5, axis=1)
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(fast[clear], reference[clear])
    assert set(np.unique(fast)) == set(range(num_actions))


@pytest.mark.parametrize("hidden", [(), (8,), (40,), (8, 4)])
def test_acting_logits_with_wide_and_narrow_layers(hidden):
    params = init_policy(jax.random.key(2), 4, hidden, 3, output_scale=1.0)
    obs = jax.random.normal(jax.random.key(5), (7, 4))
    np.testing.assert_allclose(jax.jit(_acting_logits)(params, obs), policy_logits(params, obs), rtol=1e-5, atol=1e-5)
