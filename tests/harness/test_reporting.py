"""The learning curve, drawn with Pillow alone: a valid PNG, the median where the mapping puts it.

Also the nice-ticks helper behind its axes, and that drawing it imports no matplotlib.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFont

from jax_reinforce.harness import reporting
from jax_reinforce.harness.reporting import plot_learning_curve

NAN = float("nan")


def _row(iteration, median, q25, q75):
    return {"iteration": iteration, "return_median": median, "return_q25": q25, "return_q75": q75}


def _ramp(n=101):
    """A median rising 0 -> 400 over ``n`` iterations, a band of +-20 around it."""
    return [_row(i, 4.0 * i, 4.0 * i - 20, 4.0 * i + 20) for i in range(n)]


def _draw(tmp_path, rows, threshold=475.0, title="REINFORCE on CartPole-v1, 8 seeds"):
    path = tmp_path / "learning_curve.png"
    plot_learning_curve(path, rows, threshold, title)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == reporting._SIZE and image.mode == "RGB"
        return np.asarray(image.convert("RGB"))


def _rows_of_colour(pixels, column, colour):
    return np.flatnonzero(np.all(pixels[:, column] == colour, axis=-1))


def test_median_line_band_and_threshold_where_the_mapping_puts_them(tmp_path):
    rows = _ramp()
    pixels = _draw(tmp_path, rows)
    area = reporting._plot_area(rows, 475.0)
    for iteration in (10, 25, 40):  # left of the legend, which sits lower right
        column = round(area.px(iteration))
        expected = area.py(4.0 * iteration)
        line = _rows_of_colour(pixels, column, reporting._MEDIAN)
        assert line.size and np.all(np.abs(line - expected) <= 2), (iteration, expected, line)
        band = _rows_of_colour(pixels, column, reporting._BAND)
        assert band.size and band.min() >= area.py(4.0 * iteration + 20) - 1
        assert band.max() <= area.py(4.0 * iteration - 20) + 1
    # The dashed threshold line: black dashes along its row, inside the frame.
    threshold_row = pixels[round(area.py(475.0)), round(area.left) + 1 : round(area.right)]
    black = np.all(threshold_row == 0, axis=-1)
    assert 0.4 < black.mean() < 0.9


def test_axis_limits_fit_the_data_and_the_threshold_above_it(tmp_path):
    rows = [_row(i, 10.0 + i, 5.0 + i, 15.0 + i) for i in range(30)]
    area = reporting._plot_area(rows, 195.0)
    assert area.y_limits[0] < 5.0 and area.y_limits[1] > 195.0
    assert area.x_limits[0] < 0 and area.x_limits[1] > 29
    assert area.top < area.py(195.0) < area.bottom
    assert all(t == int(t) for t in area.x_ticks)  # whole iterations
    pixels = _draw(tmp_path, rows, threshold=195.0)
    assert np.all(pixels[round(area.py(195.0)), round(area.left) + 2 : round(area.left) + 8] == 0)


def test_nan_values_break_the_line_and_the_band(tmp_path):
    rows = _ramp()
    for i in range(30, 40):
        rows[i]["return_median"] = NAN
    for i in range(60, 70):
        rows[i]["return_q25"] = NAN
    rows[80] = _row(80, NAN, NAN, NAN)
    pixels = _draw(tmp_path, rows)
    area = reporting._plot_area(rows, 475.0)
    gap = round(area.px(35))
    assert _rows_of_colour(pixels, gap, reporting._MEDIAN).size == 0
    assert _rows_of_colour(pixels, gap, reporting._BAND).size > 0
    assert _rows_of_colour(pixels, round(area.px(65)), reporting._BAND).size == 0
    assert _rows_of_colour(pixels, round(area.px(20)), reporting._MEDIAN).size > 0


@pytest.mark.parametrize(
    "rows, threshold",
    [
        ([], 475.0),
        ([], None),
        ([_row(0, 20.0, 15.0, 25.0)], None),
        ([_row(3, 20.0, NAN, 25.0)], 475.0),
        ([_row(i, 500.0, 500.0, 500.0) for i in range(10)], 475.0),
        ([_row(i, 0.0, 0.0, 0.0) for i in range(10)], None),
        ([_row(i, NAN, NAN, NAN) for i in range(5)], None),
        ([_row(0, 10.0, 5.0, 15.0), _row(1, 20.0, 12.0, 30.0)], 195.0),
        ([_row(i, float(v), float(v), float(v)) for i, v in enumerate([1, NAN, 2, NAN, 3])], None),
        ([_row(i, math.inf if i == 2 else 1.0 * i, 0.0, 1.0 * i) for i in range(5)], None),
    ],
    ids=["empty", "empty-no-threshold", "single", "single-nan-band", "constant", "zeros", "all-nan",
         "two", "alternating-nan", "inf"],
)
def test_awkward_rows_still_give_a_valid_png(tmp_path, rows, threshold):
    _draw(tmp_path, rows, threshold)


def test_a_single_row_is_a_dot(tmp_path):
    rows = [_row(7, 20.0, 15.0, 25.0)]
    pixels = _draw(tmp_path, rows, threshold=None)
    area = reporting._plot_area(rows, None)
    assert np.all(pixels[round(area.py(20.0)), round(area.px(7))] == reporting._MEDIAN)


def test_without_freetype_the_bitmap_font_is_used(tmp_path, monkeypatch):
    # Pillow < 10.1's load_default() is the bitmap font, and takes no size.
    bitmap_font = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)

    def load_default(size=None):
        if size is not None:
            raise ImportError("The _imagingft C module is not installed")
        return bitmap_font()

    monkeypatch.setattr(ImageFont, "load_default", load_default)
    _draw(tmp_path, _ramp())


def test_the_png_is_written_atomically(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(reporting, "atomic_write_bytes", lambda path, data: written.append((path, data)))
    plot_learning_curve(tmp_path / "curve.png", _ramp(), None, "t")
    assert [path for path, _ in written] == [tmp_path / "curve.png"]
    assert written[0][1].startswith(b"\x89PNG")
    assert not (tmp_path / "curve.png").exists()


def test_drawing_the_curve_imports_no_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "import jax_reinforce.harness.reporting as r\n"
        "rows = [{'iteration': i, 'return_median': 1.0 * i, 'return_q25': 0.0, 'return_q75': 2.0 * i}"
        " for i in range(10)]\n"
        f"r.plot_learning_curve({str(tmp_path / 'c.png')!r}, rows, 475.0, 'title')\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert (tmp_path / "c.png").stat().st_size > 0


# ------------------------------------------------------------------ nice ticks


def _nice_step(step, rel_tol):
    """The 1, 2 or 5 x 10^k within ``rel_tol`` of ``step``, or ``None``."""
    magnitude = 10.0 ** math.floor(math.log10(step))
    return next((m * magnitude for m in (1, 2, 5, 10) if math.isclose(step, m * magnitude, rel_tol=rel_tol)), None)


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-3, 1e6, allow_nan=False),
)
def test_nice_ticks_are_evenly_spaced_nice_values_within_the_range(low, width):
    high = low + width
    ticks = reporting._nice_ticks(low, high)
    assert 3 <= len(ticks) <= 7, ticks
    # Ticks far from 0 carry rounding error, large next to a small step.
    rounding = 1e-15 * max(abs(low), abs(high)) / width
    step = _nice_step((ticks[-1] - ticks[0]) / (len(ticks) - 1), rel_tol=1e-9 + rounding)
    assert step is not None, ticks
    multiples = np.array(ticks) / step
    assert np.allclose(multiples, np.round(multiples), rtol=0, atol=1e-6 + 100 * rounding)
    assert np.all(np.diff(np.round(multiples)) == 1)
    tolerance = 1e-6 * step
    assert low - tolerance <= ticks[0] and ticks[-1] <= high + tolerance
    # They cover the range: no room for a whole further step at either end.
    assert ticks[0] - step < low and ticks[-1] + step > high


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0, 500, [0, 100, 200, 300, 400, 500]),
        (-25, 525, [0, 100, 200, 300, 400, 500]),
        (-15, 314, [0, 100, 200, 300]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (427.5, 522.5, [440, 460, 480, 500, 520]),
    ],
)
def test_nice_ticks_examples(low, high, expected):
    assert np.allclose(reporting._nice_ticks(low, high), expected)


def test_nice_ticks_respect_a_minimum_step():
    assert reporting._nice_ticks(-0.05, 1.05, min_step=1.0) == [0, 1]
    assert all(t == int(t) for t in reporting._nice_ticks(-0.2, 4.2, min_step=1.0))


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0), (0.0, math.inf), (NAN, 1.0)])
def test_nice_ticks_refuse_an_empty_or_unbounded_range(low, high):
    with pytest.raises(ValueError):
        reporting._nice_ticks(low, high)


def test_sweep_and_metrics_csv_print_every_float_exactly(tmp_path):
    """``--lr 0.1,0.1000001`` (distinct in float32) is two settings: sweep.csv must show two values (issue 26, 17)."""
    from jax_reinforce import Config

    config = Config(hidden=(8,), num_seeds=1, learning_rate=(0.1, 0.1000001), gamma=1 / 3)
    rows = [{k: 0 for k in reporting.SWEEP_COLUMNS} | {"setting": g, **setting, "max_grad_norm": "none",
                                                      "final_return_median": np.float64(2 / 3),
                                                      "env_steps_to_solve_median": None}
            for g, setting in enumerate(config.settings())]
    reporting.write_sweep_csv(tmp_path / "sweep.csv", rows)
    lines = [line.split(",") for line in (tmp_path / "sweep.csv").read_text().splitlines()]
    column = {name: i for i, name in enumerate(lines[0])}
    assert [float(line[column["learning_rate"]]) for line in lines[1:]] == [0.1, 0.1000001]
    assert {line[column["gamma"]] for line in lines[1:]} == {repr(1 / 3)}
    assert {line[column["final_return_median"]] for line in lines[1:]} == {repr(2 / 3)}
    assert {line[column["env_steps_to_solve_median"]] for line in lines[1:]} == {""}
    reporting.write_metrics_csv(tmp_path / "metrics.csv", [{"loss_median": 1 / 7, "entropy_median": NAN,
                                                           "grad_norm_median": np.float32(0.1)}])
    cells = dict(zip(*(line.split(",") for line in (tmp_path / "metrics.csv").read_text().splitlines())))
    assert (float(cells["loss_median"]), cells["entropy_median"], cells["grad_norm_median"]) == (1 / 7, "nan", "0.1")


def test_loading_ahead_imports_what_the_plots_and_the_gymnasium_evaluation_use_and_nothing_else():
    """What a run loads while XLA loads its training program: Pillow's PNG writer and the fonts, and only the
    gymnasium environment it will be evaluated in (none for an environment gymnasium lacks)."""
    code = """
import sys
from jax_reinforce.harness import evaluation, reporting
before = set(sys.modules)
evaluation.load_gymnasium_evaluation("Breakout-MinAtar")
print(sorted(m for m in set(sys.modules) - before if "gymnasium.envs" in m))
reporting.load_plotting()
print("PIL.PngImagePlugin" in set(sys.modules) - before, reporting._fonts() is reporting._fonts())
evaluation.load_gymnasium_evaluation("Acrobot-v1")
print("gymnasium.envs.classic_control.acrobot" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["[]", "True True", "True"]
