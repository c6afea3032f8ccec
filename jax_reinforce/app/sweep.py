"""Hyper-parameter sweeps x seeds in one compiled program: the per-setting results.

A :class:`jax_reinforce.Config` whose ``learning_rate``, ``gamma``,
``entropy_coef`` or ``max_grad_norm`` holds a tuple of values is a sweep:
every combination (:meth:`Config.settings`) times ``num_seeds`` agents. The
hyper-parameters are traced inputs of every program (each agent carries its
own in :attr:`jax_reinforce.TrainState.hparams`), so the whole grid trains as
one batch of agents of ONE compiled program, and a second sweep with other
values reuses it. Agent ``a`` is seed ``i = a % num_seeds`` of setting
``g = a // num_seeds``, with the key of seed ``i``: bitwise the agent trained
alone with that setting and seed (``tests/app/test_sweep.py``).

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

from typing import Any, NamedTuple

import numpy as np

from jax_reinforce.app.run import train_run
from jax_reinforce.core.config import SWEEPABLE, Config
from jax_reinforce.harness.reporting import best_setting, per_agent_results, sweep_rows

__all__ = ["SweepResult", "train_sweep"]

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
      values: ``{field: [values]}`` for fields of :data:`jax_reinforce.core.config.SWEEPABLE`.
      out: the run directory (``None``: ``runs/<env>-<date>-<time>``).
      **run_options: passed to :func:`jax_reinforce.train_run` (``eval_episodes``, ``devices``, ...).

    Returns:
      A :class:`SweepResult` (per setting, per seed).

    Raises:
      ValueError: a field that cannot be swept, or a bad value (one line).
    """
    import jax

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
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.runner import RunProgress

    progress = RunProgress()
    progress.config, progress.state, progress.history = run.config, state, history
    agents = per_agent_results(run.config, state, history, progress.solve_scores())
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
