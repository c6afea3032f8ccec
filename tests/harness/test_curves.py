"""Curves people compare: wall-clock seconds per iteration, kept across a resume, and three panels.

The runner measures each chunk's wall-clock and keeps it apart from the
bitwise history; checkpoints carry it (an older checkpoint without it loads,
NaN); the learning curve draws the median against iterations, environment
steps and seconds.
"""

import numpy as np
import pytest
from PIL import Image

from jax_reinforce import Config, agent_keys, make_env
from jax_reinforce.harness import reporting
from jax_reinforce.harness.checkpoint import load_train_state, save_checkpoint
from jax_reinforce.harness.reporting import aggregate_metrics, plot_learning_curve
from jax_reinforce.harness.runner import Runner
from jax_reinforce.core.training import METRIC_NAMES

CONFIG = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=2, iterations=6, stop_when_solved=False)


def _runner(config=CONFIG, chunks=None):
    runner = Runner(config, make_env(config.env), 2)
    runner.init(agent_keys(config.seed, config.num_seeds))
    while runner.running().any() and chunks != 0:
        runner.run_chunk()
        chunks = None if chunks is None else chunks - 1
    return runner


@pytest.fixture(scope="module")
def trained():
    return _runner()


def test_the_runner_records_increasing_seconds_apart_from_the_history(trained):
    assert trained.seconds.shape == (CONFIG.iterations,) and trained.seconds.dtype == np.float32
    assert np.all(trained.seconds > 0) and np.all(np.diff(trained.seconds) > 0)
    assert set(trained.history) == set(METRIC_NAMES)  # the bitwise history has no wall-clock in it
    saved = trained.history_with_seconds()
    assert saved["seconds"].shape == (CONFIG.num_agents, CONFIG.iterations)
    np.testing.assert_array_equal(saved["seconds"], np.tile(trained.seconds, (CONFIG.num_agents, 1)))


def test_a_checkpoint_keeps_the_seconds_and_a_resumed_clock_goes_on(tmp_path):
    first = _runner(chunks=1)
    save_checkpoint(tmp_path, first.state.params, CONFIG, first.state, first.history_with_seconds())
    state, history, _ = load_train_state(tmp_path, first.state)
    np.testing.assert_array_equal(history["seconds"][0], first.seconds)
    resumed = Runner(CONFIG, make_env(CONFIG.env), 2)
    resumed.restore(state, history)
    np.testing.assert_array_equal(resumed.seconds, first.seconds)
    resumed.run_chunk()
    assert resumed.seconds.shape == (4,)
    np.testing.assert_array_equal(resumed.seconds[:2], first.seconds)
    assert np.all(np.diff(resumed.seconds) > 0)


def test_an_older_checkpoint_without_seconds_loads_with_nan(tmp_path):
    first = _runner(chunks=1)
    save_checkpoint(tmp_path, first.state.params, CONFIG, first.state, first.history)  # no "seconds"
    state, history, _ = load_train_state(tmp_path, first.state)
    assert history["seconds"].shape == (CONFIG.num_agents, 2) and np.isnan(history["seconds"]).all()
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(history[name], first.history[name])
    resumed = Runner(CONFIG, make_env(CONFIG.env), 2)
    resumed.restore(state, history)
    resumed.run_chunk()
    assert np.isnan(resumed.seconds[:2]).all()
    assert np.all(resumed.seconds[2:] > 0) and resumed.seconds[3] > resumed.seconds[2]  # timed from the resume


def test_aggregate_rows_carry_cumulative_steps_and_seconds(trained):
    state = trained.state
    rows = aggregate_metrics(trained.history_with_seconds(), np.asarray(state.solved_at), trained.solve_scores())
    steps = np.median(np.cumsum(trained.history["env_steps"], axis=1), axis=0)
    np.testing.assert_array_equal([r["env_steps_total"] for r in rows], steps)
    np.testing.assert_array_equal([r["seconds"] for r in rows], trained.seconds.astype(np.float64))
    plain = aggregate_metrics(trained.history, np.asarray(state.solved_at), trained.solve_scores())
    assert all(np.isnan(r["seconds"]) for r in plain)
    assert not {"env_steps_total", "seconds"} & set(reporting.CSV_COLUMNS)  # metrics.csv is the same run to run


def _ramp(n=101):
    return [{"iteration": i, "return_median": 4.0 * i, "return_q25": 4.0 * i - 20, "return_q75": 4.0 * i + 20,
             "env_steps_total": 500.0 * i * (1 + i / 50), "seconds": 0.5 + 0.02 * i} for i in range(n)]


def _median_pixels(pixels, area):
    inside = pixels[round(area.top) + 1 : round(area.bottom), round(area.left) + 1 : round(area.right)]
    return np.all(inside == reporting._MEDIAN, axis=-1)


def test_the_learning_curve_has_three_panels_each_with_its_median(tmp_path):
    path = tmp_path / "learning_curve.png"
    rows = _ramp()
    plot_learning_curve(path, rows, 475.0, "t")
    with Image.open(path) as image:
        assert image.size == (3 * reporting._PANEL[0], reporting._PANEL[1])
        pixels = np.asarray(image.convert("RGB"))
    areas = [reporting._plot_area(rows, 475.0, panel) for panel in range(3)]
    assert areas[0].right < areas[1].left and areas[1].right < areas[2].left <= areas[2].right < pixels.shape[1]
    for area, field in zip(areas, ("iteration", "env_steps_total", "seconds")):
        assert _median_pixels(pixels, area).sum() > 100, field
        # The median at the last row, where the panel's mapping puts it.
        column = round(area.px(rows[-1][field]))
        line = np.flatnonzero(np.all(pixels[:, column] == reporting._MEDIAN, axis=-1))
        assert line.size and np.all(np.abs(line - area.py(400.0)) <= 3), (field, line)


def test_a_panel_without_its_field_is_drawn_empty(tmp_path):
    path = tmp_path / "learning_curve.png"
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in _ramp()]
    plot_learning_curve(path, rows, None, "t")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    areas = [reporting._plot_area(rows, None, panel) for panel in range(3)]
    assert _median_pixels(pixels, areas[1]).sum() > 100
    assert _median_pixels(pixels, areas[2]).sum() == 0
