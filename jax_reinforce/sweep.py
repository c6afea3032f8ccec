"""Hyper-parameter sweeps x seeds in one compiled program: the per-setting results.

A :class:`jax_reinforce.Config` whose ``learning_rate``, ``gamma``,
``entropy_coef`` or ``max_grad_norm`` holds a tuple of values is a sweep:
every combination (:meth:`Config.settings`) times ``num_seeds`` agents. The
hyper-parameters are traced inputs of every program (each agent carries its
own in :attr:`jax_reinforce.TrainState.hparams`), so the whole grid trains as
one batch of agents of ONE compiled program, and a second sweep with other
values reuses it. Agent ``a`` is seed ``i = a % num_seeds`` of setting
``g = a // num_seeds``, with the key of seed ``i``: bitwise the agent trained
alone with that setting and seed (``tests/test_sweep.py``).

    import jax_reinforce as jr
    result = jr.train_sweep(jr.Config(num_seeds=8), {"learning_rate": [0.03, 0.1]}, "runs/lr")
    result.rows[result.best]          # the best setting, by the rule of best_setting
    result.solved_at.shape            # (settings, seeds)

What a sweep's run directory holds besides a run's files: ``sweep.csv``
(one row per setting, :func:`sweep_rows`), ``sweep.png`` (the median return
of each setting over environment steps), a ``setting`` column in
``metrics.csv`` (one block of rows per setting) and ``settings``/
``best_setting`` in ``summary.json``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from jax_reinforce.config import SWEEPABLE, Config, flag_of

__all__ = ["SweepResult", "train_sweep", "sweep_rows", "env_steps_to_solve", "best_setting", "write_sweep_csv", "plot_sweep",
           "setting_label", "setting_evaluation_lines", "SWEEP_COLUMNS", "BEST_RULE"]

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


def _per_agent(config: Config, state, history, solve_scores) -> dict:
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
    agents = _per_agent(config, state, history, solve_scores)
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
    """``sweep.csv``: :data:`SWEEP_COLUMNS`, one row per setting, written atomically (empty cells for None)."""
    from jax_reinforce.checkpoint import atomic_write_bytes

    def cell(v):
        return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))

    lines = [",".join(SWEEP_COLUMNS)] + [",".join(cell(row[k]) for k in SWEEP_COLUMNS) for row in rows]
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

    from jax_reinforce.reporting import _BLACK, _GRID, _WHITE, _PlotArea, _axis_limits, _fonts, _legend
    from jax_reinforce.reporting import _dashed_hline, _runs, _text, _vertical_text, seed_returns_for_curve

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
    import io

    from jax_reinforce.checkpoint import atomic_write_bytes

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


class SweepResult(NamedTuple):
    """What :func:`train_sweep` returns.

    Attributes:
      settings: ``[{field: value}]`` per setting (:meth:`Config.settings`).
      rows: :func:`sweep_rows` (what ``sweep.csv`` holds).
      best: the index of the best setting (:func:`best_setting`).
      solved_at, failed_at, env_steps_to_solve, final_return: ``(settings, seeds)``
        per-seed results (-1 where not solved / not diverged).
      params: the policies, every leaf ``(settings, seeds, ...)``.
      run: the :class:`jax_reinforce.RunResult` of the whole run.
    """

    settings: list
    rows: list
    best: int
    solved_at: np.ndarray
    failed_at: np.ndarray
    env_steps_to_solve: np.ndarray
    final_return: np.ndarray
    params: Any
    run: Any


def train_sweep(config: Config, values: dict, out=None, **run_options) -> SweepResult:
    """Trains every combination of ``values`` times ``config.num_seeds`` seeds in one compiled program.

    Args:
      config: the base config (its own values of the swept fields are replaced).
      values: ``{field: [values]}`` for fields of :data:`jax_reinforce.config.SWEEPABLE`.
      out: the run directory (``None``: ``runs/<env>-<date>-<time>``).
      **run_options: passed to :func:`jax_reinforce.train_run` (``eval_episodes``, ``devices``, ...).

    Returns:
      A :class:`SweepResult` (per setting, per seed).

    Raises:
      ValueError: a field that cannot be swept, or a bad value (one line).
    """
    import jax

    from jax_reinforce.run import train_run

    if not isinstance(config, Config):
        raise TypeError(f"config must be a jax_reinforce.Config; got {type(config).__name__}")
    if not isinstance(values, dict) or not values:
        raise ValueError(f"values must be a non-empty dict of {{field: [values]}} for fields among "
                         f"{', '.join(SWEEPABLE)}; got {values!r}")
    unknown = sorted(set(values) - set(SWEEPABLE))
    if unknown:
        raise ValueError(f"only {', '.join(SWEEPABLE)} can be swept (the others shape the compiled program); "
                         f"got {', '.join(unknown)}")
    sweep = config.replace(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()})
    run = train_run(sweep, out, **run_options)
    state, history = run.state, run.history
    from jax_reinforce.runner import RunProgress

    progress = RunProgress()
    progress.config, progress.state, progress.history = run.config, state, history
    agents = _per_agent(run.config, state, history, progress.solve_scores())
    rows = sweep_rows(run.config, state, history, progress.solve_scores())
    shape = (run.config.num_settings, run.config.num_seeds)
    return SweepResult(
        settings=run.config.settings(), rows=rows, best=best_setting(rows),
        solved_at=agents["solved_at"].reshape(shape), failed_at=agents["failed_at"].reshape(shape),
        env_steps_to_solve=agents["steps_to_solve"].reshape(shape),
        final_return=agents["final_return"].reshape(shape),
        params=jax.tree.map(lambda x: np.asarray(x).reshape(*shape, *np.shape(x)[1:]), state.params),
        run=run,
    )
