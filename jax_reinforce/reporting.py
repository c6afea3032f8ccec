"""Run-directory files: seed-aggregated metrics, the CSV, the learning curve, JSON, GIFs.

NumPy, matplotlib and Pillow (matplotlib's own dependency) only; every write
goes through :func:`jax_reinforce.checkpoint.atomic_write_bytes`, so a crash
leaves each file whole, old or new.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np

from jax_reinforce.checkpoint import atomic_write_bytes

__all__ = [
    "seed_returns_for_curve",
    "aggregate_metrics",
    "write_metrics_csv",
    "write_json",
    "plot_learning_curve",
    "first_solved_iteration",
    "evaluation_table",
    "write_gif",
    "CSV_COLUMNS",
]

_AGGREGATED = ("loss", "grad_norm", "entropy")
# The columns of metrics.csv, one row per iteration (see aggregate_metrics).
CSV_COLUMNS = (
    "iteration", "return_median", "return_q25", "return_q75", "episodes", "env_steps",
    "seeds_solved", "seeds_training", *(f"{name}_median" for name in _AGGREGATED),
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


def aggregate_metrics(history, solved_at, solve_score):
    """Seed-aggregated rows, one per iteration.

    Args:
      history: dict of ``(S, I)`` per-seed metrics (``episode_return``,
        ``episodes``, ``env_steps``, ``loss``, ``grad_norm``, ``entropy``).
      solved_at: ``(S,)`` iteration at which each seed solved, or -1.
      solve_score: ``(S,)`` the solving mean return (ignored where unsolved).

    Returns:
      A list of dicts with ``iteration``, ``return_median``, ``return_q25``,
      ``return_q75``, ``episodes``, ``env_steps``, ``seeds_solved``,
      ``seeds_training`` and the median of ``loss``, ``grad_norm``, ``entropy``.
    """
    curve = seed_returns_for_curve(history["episode_return"], solved_at, solve_score)
    num_iterations = curve.shape[1]
    med, q25, q75 = (_nanquantile(curve, q) for q in (0.5, 0.25, 0.75))
    others = {name: _nanquantile(np.asarray(history[name], np.float64), 0.5) for name in _AGGREGATED}
    solved_at = np.asarray(solved_at)
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
        rows.append(row)
    return rows


def first_solved_iteration(rows, num_seeds: int):
    """The first iteration at which every seed is solved, or ``None``."""
    for row in rows:
        if row["seeds_solved"] == num_seeds:
            return row["iteration"]
    return None


def _fmt(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_metrics_csv(path, rows) -> None:
    """Writes the aggregated rows as CSV (:data:`CSV_COLUMNS`), atomically.

    With no rows (a run that has not trained yet) the file holds the header.
    """
    lines = [",".join(CSV_COLUMNS)] + [",".join(_fmt(row[k]) for k in CSV_COLUMNS) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def write_json(path, obj) -> None:
    """Writes ``obj`` as indented JSON, atomically (NaN written as null)."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            return clean(x.item())
        return x

    atomic_write_bytes(path, (json.dumps(clean(obj), indent=2) + "\n").encode())


def plot_learning_curve(path, rows, threshold, title: str) -> None:
    """Median return over seeds with the inter-quartile band, and the threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = np.array([r["iteration"] for r in rows])
    med = np.array([r["return_median"] for r in rows])
    q25 = np.array([r["return_q25"] for r in rows])
    q75 = np.array([r["return_q75"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.fill_between(it, q25, q75, alpha=0.3, label="inter-quartile range over seeds")
    ax.plot(it, med, label="median over seeds")
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"solved ({threshold:g})")
    ax.set_xlabel("iteration (one policy update)")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
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
