"""Run-directory files: seed-aggregated metrics, the CSV, the learning curve, JSON, GIFs.

NumPy and Pillow only (the learning curve is drawn with Pillow, which is far
quicker to import than a plotting library); every write goes through
:func:`jax_reinforce.harness.files.atomic_write_bytes`, so a crash leaves each
file whole, old or new.
"""

from __future__ import annotations

import functools
import io
import math
import warnings

import numpy as np

from jax_reinforce.core.config import SWEEPABLE, Config, flag_of
from jax_reinforce.harness.files import atomic_write_bytes

__all__ = [
    "seed_returns_for_curve",
    "aggregate_metrics",
    "write_metrics_csv",
    "csv_cell",
    "plot_learning_curve",
    "first_solved_iteration",
    "evaluation_table",
    "write_gif",
    "CSV_COLUMNS",
    "extra_columns",
    "BEST_RULE",
    "SWEEP_COLUMNS",
    "env_steps_to_solve",
    "per_agent_results",
    "sweep_rows",
    "best_setting",
    "write_sweep_csv",
    "setting_label",
    "setting_evaluation_lines",
    "plot_sweep",
]

_AGGREGATED = ("loss", "grad_norm", "entropy")
# History entries aggregated in their own way; any other (value_loss, a metrics_fn's) gets a <name>_median column.
_BUILT_IN = ("episode_return", "episodes", "env_steps", *_AGGREGATED, "seconds")
# The columns of metrics.csv, one row per iteration (see aggregate_metrics).
CSV_COLUMNS = (
    "setting", "iteration", "return_median", "return_q25", "return_q75", "episodes", "env_steps",
    "seeds_solved", "seeds_training", *(f"{name}_median" for name in _AGGREGATED), "seeds_diverged",
)


def seed_returns_for_curve(episode_return, solved_at, solve_score):
    """Per-seed returns for the learning curve, ``(S, I)``.

    A seed that solved stops training and its later rows are NaN; on the curve
    it carries its solving score (the mean of the episodes that solved it,
    measured with the very parameters it keeps) from then on.
    """
    returns = np.array(episode_return, dtype=np.float64, copy=True)
    for i, (at, score) in enumerate(zip(np.asarray(solved_at), np.asarray(solve_score))):
        if at >= 0:
            returns[i, at + 1 :] = score
    return returns


def _nanquantile(x, q):
    finite = np.isfinite(x)
    out = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        col = x[finite[:, j], j]
        if col.size:
            out[j] = np.quantile(col, q)
    return out


def aggregate_metrics(history, solved_at, solve_score, failed_at=None):
    """Seed-aggregated rows, one per iteration.

    Args:
      history: dict of ``(S, I)`` per-seed metrics (``episode_return``,
        ``episodes``, ``env_steps``, ``loss``, ``grad_norm``, ``entropy``;
        optionally ``seconds``, the cumulative training wall-clock).
      solved_at: ``(S,)`` iteration at which each seed solved, or -1.
      solve_score: ``(S,)`` the solving mean return (ignored where unsolved).
      failed_at: ``(S,)`` iteration at which each seed diverged (non-finite
        values; frozen since), or -1; ``None``: none did.

    Returns:
      A list of dicts with ``iteration``, ``return_median``, ``return_q25``,
      ``return_q75``, ``episodes``, ``env_steps``, ``seeds_solved``,
      ``seeds_training``, the median of ``loss``, ``grad_norm``, ``entropy``,
      ``seeds_diverged`` (by the end of the iteration), ``<name>_median`` of every other metric of the history
      (``value_loss``, a ``metrics_fn``'s), and, for the learning
      curve but not :data:`CSV_COLUMNS` (wall-clock differs from run to run),
      ``env_steps_total`` (the median over seeds of each seed's cumulative
      environment steps) and ``seconds`` (the training wall-clock at the end of
      the iteration; NaN without ``history["seconds"]``).
    """
    curve = seed_returns_for_curve(history["episode_return"], solved_at, solve_score)
    num_iterations = curve.shape[1]
    med, q25, q75 = (_nanquantile(curve, q) for q in (0.5, 0.25, 0.75))
    extra = [name for name in history if name not in _BUILT_IN]
    others = {name: _nanquantile(np.asarray(history[name], np.float64), 0.5) for name in (*_AGGREGATED, *extra)}
    steps_total = np.median(np.cumsum(np.asarray(history["env_steps"], np.int64), axis=1), axis=0)
    seconds = (_nanquantile(np.asarray(history["seconds"], np.float64), 1.0) if "seconds" in history
               else np.full(num_iterations, np.nan))
    solved_at = np.asarray(solved_at)
    failed_at = np.full(solved_at.shape, -1) if failed_at is None else np.asarray(failed_at)
    rows = []
    for j in range(num_iterations):
        row = {
            "iteration": j,
            "return_median": med[j],
            "return_q25": q25[j],
            "return_q75": q75[j],
            "episodes": int(np.sum(history["episodes"][:, j])),
            "env_steps": int(np.sum(history["env_steps"][:, j])),
            "seeds_solved": int(np.sum((solved_at >= 0) & (solved_at <= j))),
            "seeds_training": int(np.sum(np.isfinite(np.asarray(history["loss"])[:, j]))),
        }
        row.update({f"{name}_median": others[name][j] for name in _AGGREGATED})
        row["seeds_diverged"] = int(np.sum((failed_at >= 0) & (failed_at <= j)))
        row.update({f"{name}_median": others[name][j] for name in extra})
        row["env_steps_total"] = float(steps_total[j])
        row["seconds"] = float(seconds[j])
        rows.append(row)
    return rows


def first_solved_iteration(rows, num_seeds: int):
    """The first iteration at which every seed is solved, or ``None``."""
    for row in rows:
        if row["seeds_solved"] == num_seeds:
            return row["iteration"]
    return None


def csv_cell(value) -> str:
    """``value`` as a CSV cell that reads back as the same number: a float's shortest ``repr`` (``0.1000001``,
    not ``0.1``), ``nan``, ``inf``; an integer's digits; ``None`` empty; anything else its ``str``."""
    if value is None:
        return ""
    if isinstance(value, float):  # np.float64 too, whose own repr is "np.float64(0.1)"
        return "nan" if math.isnan(value) else repr(float(value))
    return str(value)  # np.float32's str is its shortest repr as a float32


def write_metrics_csv(path, rows) -> None:
    """Writes the aggregated rows as CSV (:data:`CSV_COLUMNS`, then :func:`extra_columns`), atomically.

    ``setting``: the sweep's setting each row aggregates (0 without a sweep,
    and for rows that have none).

    With no rows (a run that has not trained yet) the file holds the header.
    """
    columns = (*CSV_COLUMNS, *extra_columns(rows))
    lines = [",".join(columns)] + [",".join(csv_cell(row.get(k, 0)) for k in columns) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def extra_columns(rows) -> list[str]:
    """The ``<name>_median`` columns of metrics beyond :data:`CSV_COLUMNS` (``value_loss``, a ``metrics_fn``'s)."""
    known = {*CSV_COLUMNS, "env_steps_total", "seconds"}
    return [k for k in (rows[0] if rows else {}) if k not in known]


# The learning curve: three panels side by side (against iterations, environment steps, wall-clock seconds);
# a panel's size in pixels, the image's, margins around each plot area, colours.
_PANEL = (480, 400)
_PANEL_X = ("iteration", "env_steps_total", "seconds")  # the row field each panel plots against
_PANEL_LABELS = ("iteration (one policy update)", "environment steps (median over seeds)",
                 "training wall-clock seconds")
_SIZE = (_PANEL[0] * len(_PANEL_X), _PANEL[1])
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 72, 20, 36, 50
_WHITE, _BLACK, _GRID = (255, 255, 255), (0, 0, 0), (225, 225, 225)
_MEDIAN = (31, 119, 180)
_BAND = (188, 214, 233)  # the median's colour at 30% over white
_MEDIAN_WIDTH = 2


def _nice_ticks(low: float, high: float, target: int = 5, min_step: float = 0.0) -> list[float]:
    """Evenly spaced ticks within ``[low, high]``, a 1, 2 or 5 x 10^k step apart.

    Of the candidate steps (none below ``min_step``, itself such a step where
    given), the one giving the count nearest ``target`` wins, the more ticks on
    a tie: 3 to 7 ticks for the default target of 5, unless ``min_step`` allows
    fewer.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"ticks need a finite range with low < high, got [{low}, {high}]")
    magnitude = 10.0 ** math.floor(math.log10((high - low) / target))
    steps = [m * magnitude * 10.0**e for e in (-1, 0, 1) for m in (1, 2, 5)]
    steps = [step for step in steps if step >= min_step] or [min_step]

    def ticks_with(step):
        first = math.ceil(low / step - 1e-9)
        last = math.floor(high / step + 1e-9)
        return [k * step for k in range(first, last + 1)]

    return min(map(ticks_with, steps), key=lambda ticks: (abs(len(ticks) - target), -len(ticks)))


def _axis_limits(values) -> tuple[float, float]:
    """``(low, high)`` around the finite ``values``, 5% of their range to spare each side.

    Values all (nearly) equal get a range of their own; no finite value, ``(0, 1)``.
    """
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-9 * max(1.0, abs(low), abs(high)):
        pad = max(1.0, 0.1 * abs(low))
    else:
        pad = 0.05 * (high - low)
    return low - pad, high + pad


class _PlotArea:
    """One panel's plot area in pixels, its axis limits and ticks, and the data -> pixel mapping.

    ``offset``: the panel's left edge in the image; ``min_x_step``: the
    smallest x tick step (1 for whole iterations or steps).
    """

    def __init__(self, x_limits, y_limits, size=_PANEL, offset=0, min_x_step=1.0):
        self.x_limits, self.y_limits = x_limits, y_limits
        self.x_ticks = _nice_ticks(*x_limits, min_step=min_x_step)
        self.y_ticks = _nice_ticks(*y_limits)
        self.left, self.top = offset + _MARGIN_LEFT, _MARGIN_TOP
        self.right, self.bottom = offset + size[0] - _MARGIN_RIGHT, size[1] - _MARGIN_BOTTOM

    def px(self, x: float) -> float:
        """The pixel column of ``x`` (an iteration, a step count or seconds)."""
        lo, hi = self.x_limits
        return self.left + (x - lo) / (hi - lo) * (self.right - self.left)

    def py(self, y: float) -> float:
        """The pixel row of return ``y``."""
        lo, hi = self.y_limits
        return self.bottom - (y - lo) / (hi - lo) * (self.bottom - self.top)


def _curve_arrays(rows, x="iteration"):
    """``x`` (a row field), median, q25 and q75 of ``rows`` as float arrays (NaN kept, and where ``x`` is missing)."""
    keys = (x, "return_median", "return_q25", "return_q75")
    return [np.array([row.get(k, np.nan) for row in rows], dtype=np.float64) for k in keys]


def _plot_area(rows, threshold, panel: int = 0) -> _PlotArea:
    """The plot area of panel ``panel`` (0: iterations, 1: steps, 2: seconds) fitting ``rows`` and the threshold."""
    xs, med, q25, q75 = _curve_arrays(rows, _PANEL_X[panel])
    ys = np.concatenate([med, q25, q75, [np.nan if threshold is None else threshold]])
    return _PlotArea(_axis_limits(xs), _axis_limits(ys), offset=panel * _PANEL[0],
                     min_x_step=0.0 if _PANEL_X[panel] == "seconds" else 1.0)


def _tick_label(x: float) -> str:
    """A short tick label: ``250k``, ``1.5M`` for large values."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _runs(mask):
    """``(start, stop)`` of each run of consecutive ``True`` in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))


def load_plotting() -> None:
    """Loads what the plots draw with (Pillow, its PNG writer, the fonts) ahead of the first plot.

    A run does it while XLA loads its training program, which leaves the main thread idle
    (``docs/performance.md``, round 13).
    """
    from PIL import Image, ImageDraw  # noqa: F401  (what plot_learning_curve and plot_sweep import)

    Image.preinit()  # the PNG writer, which Image.save would register
    _fonts()


@functools.cache
def _fonts():
    """``(title, label)`` fonts: Pillow's built-in font, sized where FreeType is available."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or no FreeType
        font = ImageFont.load_default()
        return font, font


def _text(draw, xy, text, font, anchor):
    """``text`` placed at ``xy`` by ``anchor`` ("lm", "rm", "mt", ...), in black.

    Placed by hand from the text's box: Pillow's own ``anchor`` needs a
    FreeType font, and the fallback bitmap font is not one.
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]] - left
    y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]] - top
    draw.text((round(x), round(y)), text, fill=_BLACK, font=font)


def _vertical_text(image, centre, text, font):
    """``text`` turned 90 degrees anticlockwise, centred on ``centre``."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)
    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font)
    mask = mask.rotate(90, expand=True)
    image.paste(_BLACK, (round(centre[0] - mask.width / 2), round(centre[1] - mask.height / 2)), mask)


def _dashed_hline(draw, y, x0, x1, dash=8, gap=5):
    """A 1 px dashed horizontal line from ``x0`` to ``x1`` at height ``y``."""
    for x in range(round(x0), round(x1), dash + gap):
        draw.line([(x, y), (min(x + dash - 1, x1), y)], fill=_BLACK, width=1)


def _legend(draw, area, entries, font):
    """A framed legend in the plot area's lower right: ``(label, draw_sample)`` pairs.

    ``draw_sample(x0, y, x1)`` draws an entry's sample between ``x0`` and ``x1``
    at height ``y``.
    """
    sample, pad, line_height = 28, 6, 18
    text_width = max(draw.textlength(label, font=font) for label, _ in entries)
    width = pad + sample + pad + text_width + pad
    height = pad + line_height * len(entries) + pad
    x0, y1 = area.right - 8 - width, area.bottom - 8
    y0 = y1 - height
    draw.rectangle([x0, y0, x0 + width, y1], fill=_WHITE, outline=(200, 200, 200))
    for i, (label, draw_sample) in enumerate(entries):
        y = y0 + pad + line_height * (i + 0.5)
        draw_sample(x0 + pad, y, x0 + pad + sample)
        _text(draw, (x0 + pad + sample + pad, y), label, font, "lm")


def _draw_panel(draw, area, xs, med, q25, q75, threshold, font) -> None:
    """One panel: grid and ticks, the inter-quartile band, the threshold, the median and the frame."""
    for x in area.x_ticks:
        px = round(area.px(x))
        draw.line([(px, area.top), (px, area.bottom)], fill=_GRID)
        draw.line([(px, area.bottom), (px, area.bottom + 4)], fill=_BLACK)
        _text(draw, (px, area.bottom + 7), _tick_label(x), font, "mt")
    for y in area.y_ticks:
        py = round(area.py(y))
        draw.line([(area.left, py), (area.right, py)], fill=_GRID)
        draw.line([(area.left - 4, py), (area.left, py)], fill=_BLACK)
        _text(draw, (area.left - 7, py), f"{y:g}", font, "rm")

    for start, stop in _runs(np.isfinite(xs) & np.isfinite(q25) & np.isfinite(q75)):
        upper = [(area.px(x), area.py(y)) for x, y in zip(xs[start:stop], q75[start:stop])]
        lower = [(area.px(x), area.py(y)) for x, y in zip(xs[start:stop], q25[start:stop])]
        if stop - start == 1:
            draw.line(upper + lower, fill=_BAND, width=5)
        else:
            draw.polygon(upper + lower[::-1], fill=_BAND)
    if threshold is not None:
        _dashed_hline(draw, round(area.py(threshold)), area.left, area.right)
    for start, stop in _runs(np.isfinite(xs) & np.isfinite(med)):
        points = [(area.px(x), area.py(y)) for x, y in zip(xs[start:stop], med[start:stop])]
        if stop - start == 1:
            (x, y), r = points[0], _MEDIAN_WIDTH + 1
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_MEDIAN)
        else:
            draw.line(points, fill=_MEDIAN, width=_MEDIAN_WIDTH, joint="curve")
    draw.rectangle([area.left, area.top, area.right, area.bottom], outline=_BLACK)


def plot_learning_curve(path, rows, threshold, title: str) -> None:
    """Writes a PNG of the median return over seeds, the inter-quartile band and the threshold.

    Three panels side by side, the same curve against (a) iterations, (b)
    cumulative environment steps (the rows' ``env_steps_total``) and (c)
    training wall-clock seconds (``seconds``); a panel whose field the rows
    lack (or hold NaN) is drawn empty. Drawn with Pillow alone. Non-finite
    values are left out: the median line and the band break where they are.
    A lone point is drawn as a dot; with no rows at all the axes and the
    title are still drawn.
    """
    from PIL import Image, ImageDraw

    title_font, font = _fonts()
    image = Image.new("RGB", _SIZE, _WHITE)
    draw = ImageDraw.Draw(image)
    areas = [_plot_area(rows, threshold, panel) for panel in range(len(_PANEL_X))]
    for area, field, label in zip(areas, _PANEL_X, _PANEL_LABELS):
        _draw_panel(draw, area, *_curve_arrays(rows, field), threshold, font)
        _text(draw, ((area.left + area.right) / 2, _SIZE[1] - 6), label, font, "mb")
    first = areas[0]
    _text(draw, (_SIZE[0] / 2, 10), title, title_font, "mt")
    _vertical_text(image, (14, (first.top + first.bottom) / 2), "mean episode return", font)

    entries = [
        ("median over seeds", lambda x0, y, x1: draw.line([(x0, y), (x1, y)], fill=_MEDIAN, width=_MEDIAN_WIDTH)),
        ("inter-quartile range over seeds", lambda x0, y, x1: draw.rectangle([x0, y - 5, x1, y + 5], fill=_BAND)),
    ]
    if threshold is not None:
        entries.append((f"solved ({threshold:g})", lambda x0, y, x1: _dashed_hline(draw, round(y), x0, x1)))
    _legend(draw, first, entries, font)

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def evaluation_table(means: dict, threshold, max_rows: int = 16) -> list[str]:
    """Lines of a table of mean greedy returns per seed, and a min/median/max summary.

    Args:
      means: ``{"gymnax": (S,), "gymnasium": (S,) (optional)}`` mean returns.
      threshold: the solve threshold, or ``None``.
      max_rows: seeds listed one per line up to this many; the summary always.
    """
    means = {name: np.asarray(means[name], np.float64) for name in ("gymnax", "gymnasium") if name in means}
    num_seeds = len(next(iter(means.values())))
    lines = []
    if num_seeds <= max_rows:
        lines.append("  " + f"{'seed':>4}" + "".join(f"  {name:>9}" for name in means))
        for i in range(num_seeds):
            lines.append("  " + f"{i:>4}" + "".join(f"  {m[i]:9.1f}" for m in means.values()))
    for name, m in means.items():
        at = "" if threshold is None else f", {int(np.sum(m >= threshold))}/{num_seeds} seeds >= {threshold:g}"
        lines.append(f"  {name}: min {m.min():.1f}  median {np.median(m):.1f}  max {m.max():.1f}{at}")
    return lines


def write_gif(path, frames, fps: int = 50) -> None:
    """Writes ``(H, W, 3)`` uint8 frames as a looping animated GIF, atomically."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(1, round(1000 / fps)), loop=0)
    atomic_write_bytes(path, buffer.getvalue())


# Sweeps: one row and one curve per setting (jax_reinforce.app.sweep).

BEST_RULE = ("the most seeds solved; among those, the fewest median environment steps to solve; "
             "then the highest median final return")


def _quartiles(values) -> tuple:
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return (None, None, None)
    q25, med, q75 = np.percentile(values, [25, 50, 75])
    return float(med), float(q25), float(q75)


def env_steps_to_solve(solved_at, env_steps) -> tuple[np.ndarray, np.ndarray]:
    """``(A,)`` environment steps each agent trained until it was solved (-1: not solved), and in all.

    Args:
      solved_at: ``(A,)`` the iteration each agent was solved at, -1 if never.
      env_steps: ``(A, I)`` each agent's environment steps per iteration.
    """
    solved_at = np.asarray(solved_at)
    steps = np.asarray(env_steps, np.int64)
    cumulative = np.cumsum(steps, axis=1) if steps.shape[1] else np.zeros((steps.shape[0], 1), np.int64)
    to_solve = np.where(solved_at >= 0, cumulative[np.arange(len(solved_at)), np.maximum(solved_at, 0)], -1)
    return to_solve, cumulative[:, -1]


def per_agent_results(config: Config, state, history, solve_scores) -> dict:
    """``(A,)`` per-agent results: solved at, diverged at, environment steps to solve, final return."""
    solved_at = np.asarray(state.solved_at)
    failed_at = np.asarray(state.failed_at)
    steps_to_solve, _ = env_steps_to_solve(solved_at, history["env_steps"])
    returns = np.asarray(history["episode_return"], np.float64)
    last = np.full(len(solved_at), np.nan)
    for a in range(len(solved_at)):
        finite = returns[a][np.isfinite(returns[a])]
        last[a] = finite[-1] if finite.size else np.nan
    final = np.where(solved_at >= 0, np.asarray(solve_scores, np.float64), last)
    return {"solved_at": solved_at, "failed_at": failed_at, "steps_to_solve": steps_to_solve, "final_return": final}


SWEEP_COLUMNS = (
    "setting", *SWEEPABLE, "seeds", "seeds_solved", "seeds_diverged",
    "env_steps_to_solve_median", "env_steps_to_solve_q25", "env_steps_to_solve_q75",
    "iterations_to_solve_median", "iterations_to_solve_q25", "iterations_to_solve_q75",
    "final_return_median",
)


def sweep_rows(config: Config, state, history, solve_scores) -> list[dict]:
    """One row per setting (:data:`SWEEP_COLUMNS`), over its ``num_seeds`` agents.

    ``env_steps_to_solve`` and ``iterations_to_solve``: median and quartiles
    over the seeds that solved (``None`` when none did); ``final_return``:
    each seed's solving score if it solved, else its last iteration's mean
    return, median over seeds; ``max_grad_norm`` ``None`` is ``"none"``.
    """
    agents = per_agent_results(config, state, history, solve_scores)
    rows = []
    for g, setting in enumerate(config.settings()):
        seeds = slice(g * config.num_seeds, (g + 1) * config.num_seeds)
        solved = agents["solved_at"][seeds] >= 0
        steps = agents["steps_to_solve"][seeds][solved]
        iterations = agents["solved_at"][seeds][solved] + 1
        final = agents["final_return"][seeds]
        s_med, s_q25, s_q75 = _quartiles(steps)
        i_med, i_q25, i_q75 = _quartiles(iterations)
        rows.append({
            "setting": g,
            **{k: ("none" if v is None else v) for k, v in setting.items()},
            "seeds": config.num_seeds,
            "seeds_solved": int(solved.sum()),
            "seeds_diverged": int((agents["failed_at"][seeds] >= 0).sum()),
            "env_steps_to_solve_median": s_med, "env_steps_to_solve_q25": s_q25, "env_steps_to_solve_q75": s_q75,
            "iterations_to_solve_median": i_med, "iterations_to_solve_q25": i_q25,
            "iterations_to_solve_q75": i_q75,
            "final_return_median": float(np.nanmedian(final)) if np.isfinite(final).any() else None,
        })
    return rows


def best_setting(rows: list[dict]) -> int:
    """The index of the best setting by :data:`BEST_RULE`."""
    def key(row):
        steps = row["env_steps_to_solve_median"]
        final = row["final_return_median"]
        return (-row["seeds_solved"], np.inf if steps is None else steps, -np.inf if final is None else -final)

    return min(range(len(rows)), key=lambda g: key(rows[g]))


def write_sweep_csv(path, rows: list[dict]) -> None:
    """``sweep.csv``: :data:`SWEEP_COLUMNS`, one row per setting, written atomically (:func:`csv_cell`: exact numbers,
    empty cells for None)."""
    lines = [",".join(SWEEP_COLUMNS)] + [",".join(csv_cell(row[k]) for k in SWEEP_COLUMNS) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def setting_label(config: Config, setting: dict) -> str:
    """``"lr=0.1 gamma=0.99"``: a setting's values of the swept fields."""
    return " ".join(f"{flag_of(k).lstrip('-')}={'none' if setting[k] is None else setting[k]}"
                    for k in (config.swept or SWEEPABLE))


def setting_evaluation_lines(config: Config, means: dict, threshold) -> list[str]:
    """Per setting of a sweep: the median over its seeds of each agent's mean greedy return, and how many reach ``threshold``.

    ``means``: ``{"gymnax": (A,), "gymnasium": (A,) (optional)}``, agent ``a``
    being seed ``a % num_seeds`` of setting ``a // num_seeds``.
    """
    lines = ["per setting (median over its seeds" + ("" if threshold is None else f"; seeds >= {threshold:g}") + "):"]
    for g, setting in enumerate(config.settings()):
        seeds = slice(g * config.num_seeds, (g + 1) * config.num_seeds)
        parts = []
        for name, values in means.items():
            m = np.asarray(values, np.float64)[seeds]
            at = "" if threshold is None else f" ({int(np.sum(m >= threshold))}/{config.num_seeds})"
            parts.append(f"{name} {np.median(m):.1f}{at}")
        lines.append(f"  setting {g} ({setting_label(config, setting)}): " + ", ".join(parts))
    return lines


def plot_sweep(path, config: Config, history, threshold, title: str, solved_at=None, solve_scores=None) -> None:
    """``sweep.png``: each setting's median return over its seeds against its environment steps.

    The x axis is the median over the setting's seeds of the environment
    steps taken by the end of each iteration; a seed that solved carries its
    solving score from then on (as on the learning curve), when ``solved_at``
    and ``solve_scores`` (``(A,)``) are given. Drawn with Pillow alone.
    """
    from PIL import Image, ImageDraw

    size = (900, 420)
    returns = np.asarray(history["episode_return"], np.float64)
    if solved_at is not None and solve_scores is not None:
        returns = seed_returns_for_curve(returns, solved_at, solve_scores)
    steps = np.cumsum(np.asarray(history["env_steps"], np.float64), axis=1)
    curves = []
    for g in range(config.num_settings):
        seeds = slice(g * config.num_seeds, (g + 1) * config.num_seeds)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an iteration where every seed is NaN
            med = np.nanmedian(returns[seeds], axis=0) if returns.shape[1] else np.zeros(0)
        curves.append((np.median(steps[seeds], axis=0) if steps.shape[1] else np.zeros(0), med))
    xs = np.concatenate([c[0] for c in curves] + [np.zeros(1)])
    ys = np.concatenate([c[1] for c in curves] + [np.asarray([np.nan if threshold is None else threshold])])
    title_font, font = _fonts()
    image = Image.new("RGB", size, _WHITE)
    draw = ImageDraw.Draw(image)
    area = _PlotArea(_axis_limits(xs), _axis_limits(ys), size=size)
    for x in area.x_ticks:
        px = round(area.px(x))
        draw.line([(px, area.top), (px, area.bottom)], fill=_GRID)
        _text(draw, (px, area.bottom + 7), f"{x:g}", font, "mt")
    for y in area.y_ticks:
        py = round(area.py(y))
        draw.line([(area.left, py), (area.right, py)], fill=_GRID)
        _text(draw, (area.left - 7, py), f"{y:g}", font, "rm")
    if threshold is not None:
        _dashed_hline(draw, round(area.py(threshold)), area.left, area.right)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
    entries = []
    for g, (x, y) in enumerate(curves):
        colour = colours[g % len(colours)]
        for start, stop in _runs(np.isfinite(x) & np.isfinite(y)):
            points = [(area.px(a), area.py(b)) for a, b in zip(x[start:stop], y[start:stop])]
            draw.line(points if len(points) > 1 else points * 2, fill=colour, width=2)
        if g < 12:
            label = setting_label(config, config.settings()[g])
            entries.append((label, lambda x0, yy, x1, c=colour: draw.line([(x0, yy), (x1, yy)], fill=c, width=2)))
    draw.rectangle([area.left, area.top, area.right, area.bottom], outline=_BLACK)
    _text(draw, (size[0] / 2, 10), title, title_font, "mt")
    _text(draw, ((area.left + area.right) / 2, size[1] - 6), "environment steps (median over seeds)", font, "mb")
    _vertical_text(image, (14, (area.top + area.bottom) / 2), "median episode return", font)
    if entries:
        _legend(draw, area, entries, font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
