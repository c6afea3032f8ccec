"""Per-environment defaults: the value each :class:`~jax_reinforce.Config` field takes when it is not given.

One table, used by the library and the command line alike:
``Config(env="Acrobot-v1")`` and ``train.py --env Acrobot-v1`` train with
``ENV_DEFAULTS["Acrobot-v1"]``, and any field given explicitly wins. The
config a run stores (``config.json``, the checkpoint) holds the resolved
values, so a run is reproducible whatever this table later becomes.

The values are chosen by measurement (``scripts/search_defaults.py``, the
rule in :func:`choose_setting`; the search and its results are in
``docs/environments.md``): a small grid, trained on seeds 0-15; the figures
reported for the chosen setting come from seeds 100-115, so the choice is
not graded on the seeds it was made on. An environment without an entry
takes :data:`DEFAULTS`, CartPole-v1's measured setting.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULTS", "ENV_DEFAULTS", "defaults_for", "choose_setting", "search_defaults", "SELECTION_RULE"]

# Every Config field but ``env``: the setting measured on CartPole-v1 (docs/performance.md), the default
# of every environment without an entry in ENV_DEFAULTS.
DEFAULTS = {
    "hidden": (8,),
    "num_envs": 32,
    "num_seeds": 4,
    "iterations": 300,
    "learning_rate": 0.1,
    "optimizer": "adam",
    "gamma": 0.99,
    "entropy_coef": 0.0,
    "max_grad_norm": None,
    "baseline": "normalize",
    "value_hidden": (64, 64),
    "value_learning_rate": 0.01,
    "normalize_advantages": True,
    "grad": "autodiff",
    "seed": 0,
    "rollout_steps": None,
    "stop_when_solved": True,
}

# The fields an environment's measured setting changes; the rest come from DEFAULTS. Each entry is the
# setting its search chose (docs/search/<env>.json; tests/test_env_defaults.py checks it). Environments
# with a solve threshold keep DEFAULTS' 300 iterations (an agent stops once solved); the others train
# the search's budget of iterations.
ENV_DEFAULTS: dict[str, dict] = {
    "CartPole-v0": {},
    "CartPole-v1": {},
    "Acrobot-v1": {"learning_rate": 0.01, "baseline": "value", "hidden": (16,)},
    "Asterix-MinAtar": {"learning_rate": 0.001, "baseline": "normalize", "hidden": (64, 64), "iterations": 300},
    "Breakout-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 300},
    "BernoulliBandit-misc": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "Catch-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "DeepSea-bsuite": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "DiscountingChain-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Freeway-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 20,
                        "num_envs": 8},
    "FourRooms-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "FrozenLake-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "GaussianBandit-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "MemoryChain-bsuite": {"learning_rate": 0.03, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "MetaMaze-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "MountainCar-v0": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64)},
    "MountainCarContinuous-v0": {"learning_rate": 0.1, "baseline": "value", "hidden": (64, 64)},
    "Pendulum-v1": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 200},
    "PointRobot-misc": {"learning_rate": 0.1, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "Pong-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 50},
    "Reacher-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Seaquest-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 30},
    "SimpleBandit-bsuite": {"learning_rate": 0.01, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "SpaceInvaders-MinAtar": {"learning_rate": 0.01, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Swimmer-misc": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "UmbrellaChain-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
}

SELECTION_RULE = (
    "with a solve threshold: the most seeds solved, then the fewest median environment steps to solve "
    "(over the seeds that solved); without one, or where no setting solves: the best median greedy return "
    "after the same number of iterations; ties: the best lower quartile of the greedy returns, then the first "
    "setting in grid order"
)


def defaults_for(env: str) -> dict:
    """Every field's default for ``env``: :data:`DEFAULTS` updated with ``ENV_DEFAULTS.get(env, {})``."""
    return {**DEFAULTS, **ENV_DEFAULTS.get(env, {})}


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

    The sweepable fields of ``grid`` (:data:`jax_reinforce.config.SWEEPABLE`,
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
    import itertools
    import tempfile
    import time
    from pathlib import Path

    import numpy as np

    from jax_reinforce.config import SWEEPABLE, Config
    from jax_reinforce.envs import SOLVE_THRESHOLDS
    from jax_reinforce.run import train_run
    from jax_reinforce.sweep import env_steps_to_solve

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
