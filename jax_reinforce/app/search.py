"""The search that chooses each environment's defaults (:data:`jax_reinforce.core.env_defaults.ENV_DEFAULTS`).

A small grid per environment, trained on seeds 0-15 with :func:`jax_reinforce.train_run`; the setting
kept is the best by :data:`SELECTION_RULE` (``scripts/search_defaults.py``; the results are in
``docs/environments.md`` and ``docs/search/``).
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from jax_reinforce.app.run import train_run
from jax_reinforce.core.config import SWEEPABLE, Config
from jax_reinforce.core.envs import SOLVE_THRESHOLDS
from jax_reinforce.harness.reporting import env_steps_to_solve

__all__ = ["SELECTION_RULE", "choose_setting", "search_defaults"]

SELECTION_RULE = (
    "with a solve threshold: the most seeds solved, then the fewest median environment steps to solve "
    "(over the seeds that solved); without one, or where no setting solves: the best median greedy return "
    "after the same number of iterations; ties: the best lower quartile of the greedy returns, then the first "
    "setting in grid order"
)



def choose_setting(rows: list[dict], threshold: float | None) -> int:
    """The index of the best of ``rows`` by :data:`SELECTION_RULE`.

    Args:
      rows: one dict per setting, each with ``seeds_solved`` (int),
        ``env_steps_to_solve_median`` (float, or ``None`` when no seed
        solved), ``greedy_return_median`` and ``greedy_return_q25`` (floats, or ``None``).
      threshold: the environment's solve threshold, or ``None``.
    """
    if not rows:
        raise ValueError("choose_setting: no settings to choose from")

    def greedy(row, name="greedy_return_median"):
        value = row.get(name)
        return -math.inf if value is None or not math.isfinite(value) else value

    def key(row):
        returns = (-greedy(row), -greedy(row, "greedy_return_q25"))
        if threshold is not None and any(r["seeds_solved"] for r in rows):
            steps = row["env_steps_to_solve_median"]
            return (-row["seeds_solved"], math.inf if steps is None else steps, *returns)
        return returns

    return min(range(len(rows)), key=lambda i: key(rows[i]))


def search_defaults(env: str, grid: dict, base: dict | None = None, *, num_seeds: int = 16, seed: int = 0,
                    eval_episodes: int = 16, out=None, log=None) -> dict:
    """Trains every setting of ``grid`` on ``env`` and chooses one by :func:`choose_setting`.

    The sweepable fields of ``grid`` (:data:`jax_reinforce.core.config.SWEEPABLE`,
    e.g. ``learning_rate``) train together in one program per combination of
    the others (e.g. ``baseline``, ``hidden``), each setting on agents
    ``0 .. num_seeds - 1`` of root seed ``seed`` (:func:`jax_reinforce.train_run`,
    greedy evaluation of ``eval_episodes`` episodes per agent).

    Args:
      env: the environment.
      grid: ``{field: [values]}``, each a :class:`~jax_reinforce.Config` field.
      base: further fields, the same for every setting (e.g. ``iterations``).
      out: a directory for the runs (``None``: a temporary one, removed).
      log: called with one line per program trained (default: nothing).

    Returns:
      ``{"env", "threshold", "rule", "rows", "chosen"}``: one row per setting
      (its fields, ``seeds_solved``, ``env_steps_to_solve_median`` over the
      seeds that solved, ``env_steps_median`` (each seed's steps of the
      whole run), ``greedy_return_median`` and its quartiles, ``seconds``
      (the program's whole run, shared by its settings)), and the index of
      the chosen row.
    """
    base = dict(base or {})
    unknown = sorted(set(grid) & set(base))
    if unknown:
        raise ValueError(f"search_defaults: {unknown} given both in grid and in base")
    swept = {k: tuple(v) for k, v in grid.items() if k in SWEEPABLE}
    fixed = [k for k in grid if k not in SWEEPABLE]
    threshold = SOLVE_THRESHOLDS.get(env)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(out) if out is not None else Path(scratch)
        for k, values in enumerate(itertools.product(*(grid[f] for f in fixed))):
            program = dict(zip(fixed, values))
            config = Config(env=env, num_seeds=num_seeds, seed=seed, **base, **program, **swept)
            start = time.perf_counter()
            result = train_run(config, root / f"program-{k}", overwrite=True, eval_episodes=eval_episodes,
                               compile_cache=False, log=lambda _line: None)
            seconds = time.perf_counter() - start
            if result.status not in ("finished", "diverged"):
                raise RuntimeError(f"search_defaults: {env} {program}: {result.status} {result.message}")
            solved_at = np.asarray(result.state.solved_at)
            to_solve, total = env_steps_to_solve(solved_at, result.history["env_steps"])
            greedy = np.asarray(result.summary["evaluation"].get("gymnax_mean", [np.nan] * len(solved_at)))
            for g, setting in enumerate(config.settings()):
                agents = slice(g * num_seeds, (g + 1) * num_seeds)
                solved = solved_at[agents] >= 0
                q25, median, q75 = np.percentile(greedy[agents], [25, 50, 75])
                rows.append({
                    **program, **{f: setting[f] for f in swept},
                    "seeds": num_seeds,
                    "seeds_solved": int(solved.sum()),
                    "seeds_diverged": int((np.asarray(result.state.failed_at)[agents] >= 0).sum()),
                    "env_steps_to_solve_median": float(np.median(to_solve[agents][solved])) if solved.any() else None,
                    "env_steps_median": float(np.median(total[agents])),
                    "greedy_return_median": float(median), "greedy_return_q25": float(q25),
                    "greedy_return_q75": float(q75),
                    "seconds": seconds,
                })
            if log is not None:
                log(f"{env} {program}: {seconds:.1f} s, " + ", ".join(
                    f"{r['seeds_solved']} solved / greedy {r['greedy_return_median']:.4g}" for r in rows[-config.num_settings:]))
    return {"env": env, "threshold": threshold, "rule": SELECTION_RULE, "grid": {k: list(v) for k, v in grid.items()},
            "base": base, "num_seeds": num_seeds, "seed": seed, "eval_episodes": eval_episodes,
            "rows": rows, "chosen": choose_setting(rows, threshold)}
