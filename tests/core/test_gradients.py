"""The hand-derived REINFORCE gradient and the policy's sampling, checked inside ``jax.jit``.

``reinforce_grad_manual`` is compared with ``jax.grad(reinforce_loss)`` for
several network shapes, action counts, batch shapes, masks and entropy
coefficients, in float64 at a relative tolerance of 1e-12, and with central
finite differences. The mask and entropy-coefficient variants of one problem
are vmapped through a single compiled function. float64 runs under
``jax.enable_x64`` (a module fixture), so x64 does not leak into other files.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.test_util import check_grads

from _fast_jit import fast_jit
from jax_reinforce import (
    actions_from_uniform,
    greedy_actions,
    init_policy,
    log_prob,
    policy_logits,
    reinforce_grad_manual,
    reinforce_loss,
    reinforce_objective,
    reinforce_value_and_grad_manual,
    softmax,
)

HIDDEN = [(), (8,), (16, 8), (5, 4, 3)]
N_ACTIONS = [2, 3]
BATCH_SHAPES = [(7,), (3, 5)]
OBS_DIM = 4
ENTROPY_COEFS = [0.0, 0.1]
# Relative to the largest gradient entry: a few float64 roundings.
GRAD_RTOL = 1e-12


_jit = fast_jit


@pytest.fixture(autouse=True, scope="module")
def _x64():
    with jax.enable_x64(True):
        yield


def _problem(hidden, n_actions, batch_shape, dtype="float64", seed=0):
    """Random params (He-scaled, random biases, a far from uniform policy) and samples.

    Built with NumPy so no eager JAX op needs compiling; the layout is
    :func:`init_policy`'s (``test_problem_has_the_layout_of_init_policy``).
    """
    rng = np.random.default_rng([seed, len(hidden), *hidden, n_actions, *batch_shape])
    sizes = (OBS_DIM, *hidden, n_actions)
    params = [
        {
            "w": jnp.asarray(rng.standard_normal((m, n)) * np.sqrt(2.0 / m), dtype),
            "b": jnp.asarray(0.3 * rng.standard_normal(n), dtype),
        }
        for m, n in zip(sizes[:-1], sizes[1:])
    ]
    obs = jnp.asarray(rng.standard_normal((*batch_shape, OBS_DIM)), dtype)
    actions = jnp.asarray(rng.integers(0, n_actions, batch_shape), jnp.int32)
    weights = jnp.asarray(rng.standard_normal(batch_shape), dtype)
    mask = jnp.asarray(rng.random(batch_shape) < 0.7, dtype)
    return params, obs, actions, weights, mask


def test_problem_has_the_layout_of_init_policy():
    params = _problem((5, 4, 3), 2, (7,))[0]
    # eval_shape: the layout without compiling init_policy's random draws.
    reference = jax.eval_shape(
        lambda key: init_policy(key, OBS_DIM, (5, 4, 3), 2, dtype=jnp.float64), jax.random.key(0)
    )
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(reference)):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype


def _max_abs(tree):
    """The largest ``|entry|`` over every leaf of a pytree."""
    leaves = jax.tree.leaves(tree)
    return max(float(np.max(np.abs(np.asarray(leaf, np.float64)))) for leaf in leaves)


def _max_abs_diff(a, b):
    """The largest ``|a - b|`` over two pytrees of the same structure, in float64."""
    return _max_abs(jax.tree.map(lambda x, y: np.asarray(x, np.float64) - y, a, b))


@_jit
def _manual_and_autodiff(params, obs, actions, weights, masks, entropy_coefs):
    """Both gradients for each ``(mask, entropy_coef)`` pair, vmapped over pairs.

    The coefficient is traced here, so the entropy term is always built; the
    defaults (``mask=None``, a Python ``0.0``) are exercised separately.
    """

    def both(mask, coef):
        args = (params, obs, actions, weights, mask, coef)
        return reinforce_grad_manual(*args), jax.grad(reinforce_loss)(*args)

    return jax.vmap(both)(masks, entropy_coefs)


def _mask_variants(mask):
    """(random mask, all ones, all zeros) x ENTROPY_COEFS, stacked for vmap."""
    mask = np.asarray(mask)
    masks = [mask, np.ones_like(mask), np.zeros_like(mask)]
    pairs = [(m, c) for m in masks for c in ENTROPY_COEFS]
    return np.stack([m for m, _ in pairs]), np.asarray([c for _, c in pairs], mask.dtype)


ZERO_MASK_VARIANTS = (4, 5)


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
@pytest.mark.parametrize("n_actions", N_ACTIONS)
@pytest.mark.parametrize("hidden", HIDDEN, ids=str)
def test_manual_gradient_matches_autodiff(hidden, n_actions, batch_shape):
    params, obs, actions, weights, mask = _problem(hidden, n_actions, batch_shape)
    masks, coefs = _mask_variants(mask)
    manual, autodiff = jax.device_get(
        _manual_and_autodiff(params, obs, actions, weights, masks, coefs)
    )
    assert jax.tree.structure(manual) == jax.tree.structure(params)
    assert jax.tree.structure(autodiff) == jax.tree.structure(params)
    for v in range(len(coefs)):
        m = jax.tree.map(lambda x: x[v], manual)
        a = jax.tree.map(lambda x: x[v], autodiff)
        error = _max_abs_diff(m, a)
        assert error <= GRAD_RTOL * max(_max_abs(a), 1.0), (v, error)
    # With every step masked out nothing counts: the gradient is exactly 0.
    for v in ZERO_MASK_VARIANTS:
        assert _max_abs(jax.tree.map(lambda x: x[v], manual)) == 0.0
        assert _max_abs(jax.tree.map(lambda x: x[v], autodiff)) == 0.0


@_jit
def _defaults_and_python_coefs(params, obs, actions, weights, mask):
    """Both gradients with ``mask=None``, Python-float coefficients, a given ``D``."""
    plain = (params, obs, actions, weights)
    variants = {"defaults": plain}
    for coef in ENTROPY_COEFS:
        variants[f"mask=None, entropy_coef={coef}"] = (*plain, None, coef)
    variants["denominator=2.5"] = (*plain, mask, 0.1, 2.5)
    return {
        name: (reinforce_grad_manual(*args), jax.grad(reinforce_loss)(*args))
        for name, args in variants.items()
    }


@pytest.mark.parametrize(
    "hidden, n_actions, batch_shape", [((), 2, (7,)), ((5, 4, 3), 3, (3, 5))], ids=str
)
def test_manual_gradient_with_default_arguments(hidden, n_actions, batch_shape):
    problem = _problem(hidden, n_actions, batch_shape, seed=1)
    grads = jax.device_get(_defaults_and_python_coefs(*problem))
    for name, (manual, autodiff) in grads.items():
        error = _max_abs_diff(manual, autodiff)
        assert error <= GRAD_RTOL * max(_max_abs(autodiff), 1.0), (name, error)


def test_manual_gradient_jit_equals_eager():
    params, obs, actions, weights, mask = _problem((8,), 3, (7,), seed=2)
    args = (params, obs, actions, weights, mask, 0.1)
    eager = jax.device_get(reinforce_grad_manual(*args))
    jitted = jax.device_get(jax.jit(reinforce_grad_manual)(*args))
    assert _max_abs_diff(eager, jitted) <= GRAD_RTOL * _max_abs(eager)


def test_check_grads_on_loss():
    params, obs, actions, weights, mask = _problem((8,), 3, (7,), seed=3)

    def loss(p):
        return reinforce_loss(p, obs, actions, weights, mask, 0.1)

    check_grads(jax.jit(loss), (params,), order=2, modes=("fwd", "rev"))


FD_STEP = 1e-6


@_jit
def _manual_and_finite_differences(params, obs, actions, weights, mask):
    """The manual gradient and central differences along every parameter."""
    flat, unravel = ravel_pytree(params)

    def loss(x):
        return reinforce_loss(unravel(x), obs, actions, weights, mask, 0.1)

    basis = jnp.eye(flat.size, dtype=flat.dtype) * FD_STEP
    fd = jax.vmap(lambda e: loss(flat + e) - loss(flat - e))(basis) / (2 * FD_STEP)
    manual = ravel_pytree(reinforce_grad_manual(params, obs, actions, weights, mask, 0.1))[0]
    return manual, fd


@pytest.mark.parametrize("hidden", [(), (16, 8)], ids=str)
def test_manual_gradient_matches_finite_differences(hidden):
    manual, fd = _manual_and_finite_differences(*_problem(hidden, 3, (3, 5), seed=4))
    np.testing.assert_allclose(manual, fd, rtol=0, atol=1e-8)


@_jit
def _log_prob_logits_greedy(params, obs, actions):
    return log_prob(params, obs, actions), policy_logits(params, obs), greedy_actions(params, obs)


@pytest.mark.parametrize("n_actions", N_ACTIONS)
def test_log_prob_and_greedy_actions(n_actions):
    params, obs, actions, _, _ = _problem((8,), n_actions, (3, 5), seed=5)
    log_pi, logits, greedy = jax.device_get(_log_prob_logits_greedy(params, obs, actions))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    expected = np.take_along_axis(log_p, np.asarray(actions)[..., None], axis=-1)[..., 0]
    assert log_pi.shape == (3, 5)
    np.testing.assert_allclose(log_pi, expected, rtol=1e-13, atol=1e-14)
    assert greedy.dtype == np.int32
    np.testing.assert_array_equal(greedy, np.argmax(logits, axis=-1))


N_DRAWS = 200_000


@_jit
def _frequencies_and_probs(logits, key):
    """Frequency of each action over N_DRAWS uniforms per row, and softmax: ``(rows, A)``."""
    uniform = jax.random.uniform(key, (N_DRAWS, logits.shape[0]), logits.dtype)
    actions = actions_from_uniform(jnp.broadcast_to(logits, (N_DRAWS, *logits.shape)), uniform)
    one_hot = jax.nn.one_hot(actions, logits.shape[-1], dtype=logits.dtype)
    return jnp.mean(one_hot, axis=0), softmax(logits)


@pytest.mark.parametrize("n_actions", [2, 3, 5])
def test_actions_from_uniform_samples_softmax(n_actions):
    logits = np.random.default_rng(n_actions).standard_normal((4, n_actions)).astype(np.float32)
    frequencies, probs = _frequencies_and_probs(logits, jax.random.key(6))
    # The standard error is at most 0.5 / sqrt(N_DRAWS) ~ 0.0011.
    np.testing.assert_allclose(frequencies, probs, rtol=0, atol=0.006)


@_jit
def _draw_at_every_boundary(logits):
    """Actions at ``u = F(a)`` and at the float just below, for every ``a < A - 1``."""
    cdf = jnp.cumsum(softmax(logits), axis=-1)[..., :-1]  # (rows, A-1)
    below = jnp.nextafter(cdf, jnp.zeros_like(cdf))
    draw = jax.vmap(actions_from_uniform, in_axes=(None, -1), out_axes=-1)
    return draw(logits, cdf), draw(logits, below)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_actions", [2, 3])
def test_actions_from_uniform_exact_at_every_boundary(n_actions, dtype):
    logits = np.random.default_rng(7).standard_normal((6, n_actions)).astype(dtype)
    at, below = jax.device_get(_draw_at_every_boundary(logits))
    a = np.arange(n_actions - 1)
    # F(a) is the first u that draws a + 1; the float just below still draws a.
    np.testing.assert_array_equal(at, np.broadcast_to(a + 1, at.shape))
    np.testing.assert_array_equal(below, np.broadcast_to(a, below.shape))


BIG = 1e4
# (logits, [(u, action), ...]): probabilities 1/2, 1/4 and 0 are exact in floating point.
BOUNDARY_CASES = [
    ([0.0, 0.0], [(0.0, 0), ("below 0.5", 0), (0.5, 1), ("below 1", 1)]),
    ([BIG, -BIG], [(0.0, 0), (0.5, 0), ("below 1", 0)]),  # s = [1, 0]
    ([-BIG, BIG], [(0.0, 1), (0.5, 1), ("below 1", 1)]),  # s = [0, 1]: never 0
    ([0.0, 0.0, -BIG], [("below 0.5", 0), (0.5, 1), ("below 1", 1)]),  # never 2
    ([0.0, -BIG, 0.0], [("below 0.5", 0), (0.5, 2), ("below 1", 2)]),  # never 1
    ([-BIG, 0.0, 0.0], [(0.0, 1), ("below 0.5", 1), (0.5, 2)]),  # never 0
    ([0.0, 0.0, 0.0, 0.0], [("below 0.25", 0), (0.25, 1), (0.5, 2), ("below 0.75", 2), (0.75, 3)]),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_actions_from_uniform_exact_boundaries_by_hand(dtype):
    def uniform(u):
        if isinstance(u, str):  # "below x": the largest float under x
            x = np.asarray(float(u.split()[1]), dtype)
            return np.nextafter(x, np.asarray(0.0, dtype))
        return np.asarray(u, dtype)

    by_n_actions = {}
    for logits, draws in BOUNDARY_CASES:
        for u, action in draws:
            rows = by_n_actions.setdefault(len(logits), ([], [], []))
            rows[0].append(logits)
            rows[1].append(uniform(u))
            rows[2].append(action)
    draw = _jit(actions_from_uniform)
    for logits, uniforms, expected in by_n_actions.values():
        got = draw(np.asarray(logits, dtype), np.asarray(uniforms, dtype))
        np.testing.assert_array_equal(got, expected, err_msg=str(logits))


@_jit
def _everything(params, obs, actions, weights, mask):
    args = (params, obs, actions, weights, mask, 0.1)
    return {
        "loss": reinforce_loss(*args),
        "manual grad": reinforce_grad_manual(*args),
        "autodiff grad": jax.grad(reinforce_loss)(*args),
        "log_prob": log_prob(params, obs, actions),
        "logits": policy_logits(params, obs),
    }


DTYPES = ["float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved(dtype):
    out = _everything(*_problem((8,), 3, (7,), dtype=dtype, seed=8))
    for leaf in jax.tree.leaves(out):
        assert leaf.dtype == jnp.dtype(dtype)


def _extreme_problem(big, dtype):
    """A 4-8-3 policy whose logits are ``+-big`` (or 0): obs ``e_i`` picks row ``i``.

    The hidden layer maps ``e_i`` to ``e_i`` (pre-activations 1 or -0.5, away
    from the ReLU kink); the output layer holds the logits.
    """
    eye = np.eye(4)
    w1 = np.concatenate([1.5 * eye, -eye], axis=1)
    logit_rows = np.array([[big, -big, 0.0], [-big, big, 0.0], [0.0, 0.0, big], [0.0, 0.0, 0.0]])
    w2 = np.concatenate([logit_rows, np.zeros((4, 3))])
    params = [
        {"w": jnp.asarray(w1, dtype), "b": jnp.full((8,), -0.5, dtype)},
        {"w": jnp.asarray(w2, dtype), "b": jnp.zeros((3,), dtype)},
    ]
    obs = jnp.asarray(eye[[0, 1, 2, 3, 0, 1, 2]], dtype)
    actions = jnp.asarray([0, 0, 1, 2, 1, 2, 2], jnp.int32)
    weights = jnp.asarray([1.0, -1.0, 0.5, 2.0, -0.5, 1.0, 0.25], dtype)
    expected_log_prob = [0.0, -2 * big, -big, -np.log(3), -2 * big, -big, 0.0]
    return (params, obs, actions, weights, jnp.ones((7,), dtype)), expected_log_prob


@pytest.mark.parametrize(
    "dtype, big, rtol",
    [
        ("float16", 3e4, 1e-2),
        ("bfloat16", 1e4, 2e-2),
        ("float32", 1e4, 1e-6),
        ("float64", 1e4, 1e-12),
    ],
)
def test_stable_at_extreme_logits(dtype, big, rtol):
    problem, expected_log_prob = _extreme_problem(big, dtype)
    out = jax.device_get(_everything(*problem))
    assert np.asarray(out["logits"], np.float64).max() >= 0.99 * big
    for leaf in jax.tree.leaves(out):
        assert np.all(np.isfinite(np.asarray(leaf, np.float64)))
    manual = jax.tree.map(lambda x: np.asarray(x, np.float64), out["manual grad"])
    autodiff = jax.tree.map(lambda x: np.asarray(x, np.float64), out["autodiff grad"])
    assert _max_abs_diff(manual, autodiff) <= rtol * _max_abs(autodiff)
    np.testing.assert_allclose(
        np.asarray(out["log_prob"], np.float64), expected_log_prob, rtol=rtol, atol=rtol
    )


def test_inputs_not_mutated():
    params, obs, actions, weights, mask = _problem((8,), 3, (7,), seed=9)
    params = jax.tree.map(np.array, params)
    arrays = [np.array(x) for x in (obs, actions, weights, mask)]
    before = jax.tree.map(np.copy, (params, arrays))
    _everything(params, *arrays)
    reinforce_loss(params, *arrays)
    _jit(actions_from_uniform)(arrays[0][:, :2], np.full((7,), 0.5))
    for x, y in zip(jax.tree.leaves(before), jax.tree.leaves((params, arrays))):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_shape_mismatch_names_both_shapes(jit):
    wrap = jax.jit if jit else (lambda f: f)
    params, obs, actions, weights, mask = _problem((8,), 3, (7,), seed=10)
    cases = [
        (reinforce_loss, (params, obs, actions[:5], weights), r"\(7, 4\).*\(5,\)"),
        (reinforce_loss, (params, obs, actions, weights[:5]), r"\(7, 4\).*\(5,\)"),
        (reinforce_grad_manual, (params, obs, actions, weights, mask[:5]), r"\(7, 4\).*\(5,\)"),
        (reinforce_grad_manual, (params, obs[:, :3], actions, weights), r"\(7, 3\).*\(4, 8\)"),
        (policy_logits, (params, obs[:, :3]), r"\(7, 3\).*\(4, 8\)"),
        (log_prob, (params, obs, actions[:1]), r"\(7, 4\).*\(1,\)"),
        (actions_from_uniform, (np.zeros((7, 2)), np.zeros((7, 1))), r"\(7, 2\).*\(7, 1\)"),
        (actions_from_uniform, (np.zeros((7, 3)), np.zeros((4,))), r"\(7, 3\).*\(4,\)"),
    ]
    for fn, args, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            wrap(fn)(*args)


@pytest.mark.parametrize("hidden", [(), (8,), (16, 8)])
@pytest.mark.parametrize("entropy_coef", [0.0, 0.1])
def test_manual_value_and_grad_equals_autodiff_value_and_grad(hidden, entropy_coef):
    key = jax.random.PRNGKey(7)
    params = init_policy(key, 4, hidden, 3, dtype=jnp.float64, output_scale=1.0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    obs = jax.random.normal(k1, (3, 5, 4), jnp.float64)
    actions = jax.random.randint(k2, (3, 5), 0, 3)
    weights = jax.random.normal(k3, (3, 5), jnp.float64)
    mask = (jax.random.uniform(k4, (3, 5)) > 0.3).astype(jnp.float64)
    manual = fast_jit(reinforce_value_and_grad_manual)(params, obs, actions, weights, mask, entropy_coef, 7.0)
    auto = fast_jit(jax.value_and_grad(reinforce_objective, has_aux=True))(
        params, obs, actions, weights, mask, entropy_coef, 7.0)
    (loss_m, ent_m), grads_m = manual
    (loss_a, ent_a), grads_a = auto
    np.testing.assert_allclose(loss_m, loss_a, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ent_m, ent_a, rtol=1e-13, atol=1e-15)
    for a, b in zip(jax.tree.leaves(grads_m), jax.tree.leaves(grads_a)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
