"""Pillow drawings of the classic-control environments, greedy gymnasium episodes and their GIF frames."""

import math

import numpy as np
import pytest

from jax_reinforce.harness import evaluation, render
from jax_reinforce.harness.evaluation import evaluate_gymnasium, render_episode, render_unavailable_reason
from jax_reinforce.harness.render import (
    RENDERABLE_ENVS, draw_acrobot, draw_cartpole, draw_frame, draw_mountain_car, draw_pendulum,
)

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
POLE, TEAL, YELLOW, ROD = (202, 152, 101), (0, 204, 204), (204, 204, 0), (204, 77, 77)
# name: (observation size, outputs, continuous)
SIZES = {
    "CartPole-v0": (4, 2, False), "CartPole-v1": (4, 2, False), "Acrobot-v1": (6, 3, False),
    "MountainCar-v0": (2, 3, False), "MountainCarContinuous-v0": (2, 1, True), "Pendulum-v1": (3, 1, True),
}


def colour_at(frame, x, y):
    """The pixel at world point ``(x, y)``: pixels from the left, and up from the bottom row."""
    return tuple(int(c) for c in frame[int(round(frame.shape[0] - 1 - y)), int(round(x))])


def tiny_params(name, num_seeds=2, seed=0, hidden=4):
    """A random policy for ``name`` with a seed axis; continuous ones carry ``log_std`` in the last layer."""
    obs_dim, outputs, continuous = SIZES[name]
    rng = np.random.default_rng(seed)
    params = [
        {"w": rng.normal(size=(num_seeds, obs_dim, hidden)), "b": rng.normal(size=(num_seeds, hidden))},
        {"w": rng.normal(size=(num_seeds, hidden, outputs)), "b": rng.normal(size=(num_seeds, outputs))},
    ]
    if continuous:
        params[-1]["log_std"] = np.full((num_seeds, outputs), -0.5)
    return params


def one_seed(params, s):
    return [{k: v[s:s + 1] for k, v in layer.items()} for layer in params]


def constant_policy(name, mean, log_std=0.0):
    """A linear one-seed policy whose output is ``mean`` whatever it observes."""
    obs_dim, outputs, _ = SIZES[name]
    return [{"w": np.zeros((1, obs_dim, outputs)), "b": np.full((1, outputs), float(mean)),
             "log_std": np.full((1, outputs), float(log_std))}]


# ------------------------------------------------------------------ the drawings


@pytest.mark.parametrize("drawer, state, shape", [
    (draw_cartpole, (0.0, 0.0, 0.0, 0.0), (400, 600, 3)),
    (draw_acrobot, (0.0, 0.0, 0.0, 0.0), (500, 500, 3)),
    (draw_mountain_car, (-0.5, 0.0), (400, 600, 3)),
    (draw_pendulum, (0.0, 0.0), (500, 500, 3)),
])
def test_every_drawer_gives_an_rgb_frame_that_follows_the_state(drawer, state, shape):
    frame = drawer(np.asarray(state))
    assert frame.shape == shape and frame.dtype == np.uint8
    moved = drawer(np.asarray(state) + np.r_[0.3, 0.0, 0.3, 0.0][:len(state)])
    assert moved.shape == shape and np.any(moved != frame)
    np.testing.assert_array_equal(drawer(state), frame)  # a tuple, or gymnasium's float32 array: the same


def test_cartpole_is_drawn_where_its_geometry_says():
    scale = 600 / 4.8
    upright, leaning = draw_cartpole((0.8, 0.0, 0.0, 0.0)), draw_cartpole((0.8, 0.0, 0.3, 0.0))
    cart_x, axle_y = 300 + 0.8 * scale, 100 + 30 / 4
    assert colour_at(upright, cart_x, 100) == colour_at(leaning, cart_x, 100) == BLACK
    assert colour_at(upright, 300, 110) == WHITE  # the cart moved right of the centre (at 100: the track)
    tip = (cart_x + 0.6 * scale * math.sin(0.3), axle_y + 0.6 * scale * math.cos(0.3))  # leaning clockwise
    assert colour_at(leaning, *tip) == POLE and colour_at(upright, *tip) == WHITE
    assert colour_at(upright, cart_x, axle_y + 0.6 * scale) == POLE


def test_acrobot_is_drawn_where_its_geometry_says():
    scale, c = 500 / 4.4, 250.0
    hanging, upright = draw_acrobot((0.0, 0.0, 0.0, 0.0)), draw_acrobot((math.pi, 0.0, 0.0, 0.0))
    assert colour_at(hanging, c, c - 1.5 * scale) == TEAL and colour_at(hanging, c, c + 1.5 * scale) == WHITE
    assert colour_at(upright, c, c + 1.5 * scale) == TEAL and colour_at(upright, c, c - 1.5 * scale) == WHITE
    assert colour_at(hanging, c, c) == YELLOW  # the pivot's disc
    # The first link out to the right, the second bent a further quarter turn: straight up from the joint.
    bent = draw_acrobot((math.pi / 2, math.pi / 2, 0.0, 0.0))
    assert colour_at(bent, c + 0.5 * scale, c) == TEAL and colour_at(bent, c + scale, c + 0.6 * scale) == TEAL
    assert colour_at(bent, c + scale, c) == YELLOW  # the joint's disc
    assert colour_at(bent, c + scale, c - 0.6 * scale) == WHITE and colour_at(bent, c, c - 0.5 * scale) == WHITE
    assert colour_at(hanging, c - 2.0 * scale, c + scale) == BLACK  # the goal line, 1 above the pivot


def test_mountain_car_is_drawn_where_its_geometry_says():
    scale = 600 / 1.8

    def car_centre(p):
        tilt = math.cos(3 * p)
        x, y = (p + 1.2) * scale, 10 + (0.45 * math.sin(3 * p) + 0.55) * scale
        return x - 10 * math.sin(tilt), y + 10 * math.cos(tilt)  # 10 px up the car's own axis

    low, high = draw_mountain_car((-0.5, 0.0)), draw_mountain_car((0.3, 0.0))
    assert colour_at(low, *car_centre(-0.5)) == BLACK and colour_at(high, *car_centre(-0.5)) == WHITE
    assert colour_at(high, *car_centre(0.3)) == BLACK and colour_at(low, *car_centre(0.3)) == WHITE

    def pennant(goal):  # a point inside the flag's triangle
        return (goal + 1.2) * scale + 8, (0.45 * math.sin(3 * goal) + 0.55) * scale + 50 - 5

    discrete = draw_frame("MountainCar-v0", (-0.5, 0.0))
    continuous = draw_frame("MountainCarContinuous-v0", (-0.5, 0.0))
    assert colour_at(discrete, *pennant(0.5)) == YELLOW and colour_at(discrete, *pennant(0.45)) == WHITE
    assert colour_at(continuous, *pennant(0.45)) == YELLOW and colour_at(continuous, *pennant(0.5)) == WHITE


def test_pendulum_is_drawn_where_its_geometry_says():
    scale, c = 500 / 4.4, 250.0
    up, left, down = (draw_pendulum((theta, 0.0)) for theta in (0.0, math.pi / 2, math.pi))
    assert colour_at(up, c, c + 0.6 * scale) == ROD and colour_at(up, c, c - 0.6 * scale) == WHITE
    assert colour_at(left, c - 0.6 * scale, c) == ROD and colour_at(left, c, c + 0.6 * scale) == WHITE
    assert colour_at(down, c, c - 0.6 * scale) == ROD
    assert colour_at(up, c, c) == BLACK  # the axle


def test_draw_frame_picks_the_drawer_and_refuses_other_names():
    assert draw_frame("CartPole-v0", (0.1, 0, 0.1, 0)).shape == (400, 600, 3)
    np.testing.assert_array_equal(draw_frame("Acrobot-v1", (0.1, 0.2, 0, 0)), draw_acrobot((0.1, 0.2, 0, 0)))
    np.testing.assert_array_equal(draw_frame("Pendulum-v1", (0.4, 0)), draw_pendulum((0.4, 0)))
    with pytest.raises(ValueError, match="Breakout-MinAtar"):
        draw_frame("Breakout-MinAtar", (0.0,))
    assert evaluation.draw_cartpole is render.draw_cartpole  # still importable where it was


# ------------------------------------------------------------------ greedy episodes in gymnasium


@pytest.mark.parametrize("name", RENDERABLE_ENVS)
def test_a_rendered_episode_is_the_evaluated_one(name):
    params = tiny_params(name)
    frames, episode_return = render_episode(params, name, 1, reset_seed=3)
    assert len(frames) >= 2 and len({f.shape for f in frames}) == 1
    assert frames[0].dtype == np.uint8 and frames[0].ndim == 3 and frames[0].shape[2] == 3
    assert episode_return == evaluate_gymnasium(one_seed(params, 1), name, 1, seed=3)[0, 0]
    steps = len(frames) - 1
    if name.startswith("CartPole"):
        assert episode_return == steps
    elif name == "MountainCar-v0":
        assert episode_return == -steps
    elif name == "Pendulum-v1":
        assert steps == 200  # never terminates: the time limit


@pytest.mark.parametrize("name", RENDERABLE_ENVS)
def test_gymnasium_returns_are_finite_and_deterministic(name):
    params = tiny_params(name, seed=1)
    returns = evaluate_gymnasium(params, name, 2, seed=7)
    assert returns.shape == (2, 2) and np.all(np.isfinite(returns))
    np.testing.assert_array_equal(evaluate_gymnasium(params, name, 2, seed=7), returns)


def test_each_episode_has_its_own_reset_seed():
    """Episode ``e`` of seed ``s`` starts from ``seed + s * E + e``, also past a batch of 256.

    Equal to rounding only: NumPy's matmul may round differently for another
    number of episodes in the batch, and Pendulum's torque is continuous.
    """
    name = "Pendulum-v1"
    params = tiny_params(name)
    returns = evaluate_gymnasium(params, name, 2, seed=5)
    alone = [[evaluate_gymnasium(one_seed(params, s), name, 1, seed=5 + 2 * s + e)[0, 0] for e in range(2)]
             for s in range(2)]
    np.testing.assert_allclose(returns, alone, rtol=1e-9)
    assert np.all(np.abs(np.diff(np.sort(returns.ravel()))) > 1.0)  # four different starts
    many = evaluate_gymnasium(one_seed(params, 0), name, 257, seed=5)
    np.testing.assert_allclose(many[0, :2], returns[0], rtol=1e-9)
    np.testing.assert_allclose(many[0, 256], evaluate_gymnasium(one_seed(params, 0), name, 1, seed=5 + 256)[0, 0],
                               rtol=1e-9)


def test_a_continuous_policy_acts_with_its_mean_clipped_to_the_bounds():
    """MountainCarContinuous charges 0.1 a^2 for the action as given: an unclipped huge mean would cost ~1e11."""
    name = "MountainCarContinuous-v0"

    def episode(mean, log_std=0.0):
        return evaluate_gymnasium(constant_policy(name, mean, log_std), name, 1, seed=2)[0, 0]

    at_bound = episode(1.0)
    assert episode(1e6) == at_bound == episode(1.0, log_std=3.0)  # log_std plays no part
    assert episode(-1e6) == episode(-1.0)
    assert episode(0.5) != at_bound
    assert render_episode(constant_policy(name, 1e6), name, 0, reset_seed=2)[1] == at_bound


def test_the_evaluation_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="Acrobot-v1"):
        evaluate_gymnasium(tiny_params("CartPole-v1"), "Acrobot-v1", 1)
    with pytest.raises(ValueError, match="Catch-bsuite"):
        evaluate_gymnasium(tiny_params("CartPole-v1"), "Catch-bsuite", 1)


@pytest.mark.parametrize("name", ["Catch-bsuite", "SpaceInvaders-MinAtar", "Breakout-MinAtar"])
def test_only_the_classic_control_environments_render(name):
    reason = render_unavailable_reason(name)
    assert isinstance(reason, str) and "\n" not in reason
    assert name in reason and "classic-control" in reason and "Pendulum-v1" in reason
    with pytest.raises(ValueError) as refused:
        render_episode(tiny_params("CartPole-v1"), name, 0)
    assert str(refused.value) == reason
    assert all(render_unavailable_reason(env) is None for env in RENDERABLE_ENVS)
