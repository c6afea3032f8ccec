#!/usr/bin/env python
"""Evaluate a trained run: greedy episodes in gymnax and gymnasium, and a GIF.

    python scripts/evaluate.py runs/CartPole-v1-20261124-163313
    python scripts/evaluate.py RUN_DIR --episodes 20 --gif cartpole.gif

Loads RUN_DIR/checkpoint.npz (checked, never unpickled), plays --episodes
greedy episodes per seed in gymnax and, for the classic-control environments,
in gymnasium's own implementation, and prints the mean return of every seed.
``--gif PATH`` renders one gymnasium episode of the best agent (classic-control
environments only). Every failure is one line on stderr: bad input (a flag,
a path, the JAX environment) exit code 2, a GIF that cannot be written 1,
SIGINT or SIGTERM at any moment 130 / 143.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
PROG = "evaluate.py"
from jax_reinforce.app.cli import exit_on_signals  # noqa: E402
# First, before the heavy imports: from here on Ctrl-C is one line (as a script only: never on import).
SIGNALS = exit_on_signals(PROG, "during evaluation; nothing was written") if __name__ == "__main__" else None

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from jax_reinforce.app.cli import EXIT_BAD_INPUT, OneLineParser, UsageError, check_jax_environment, check_path  # noqa: E402
from jax_reinforce.app.cli import error_words, exit_now, int_flag, os_error_line, shown_path  # noqa: E402

EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Evaluate a run's policies greedily in gymnax and gymnasium; optionally render a GIF.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by scripts/train.py")
    p.add_argument("--episodes", type=int_flag("--episodes", 1), default=100, help="greedy episodes per seed, in each implementation")
    p.add_argument("--seed", type=int_flag("--seed", 0, 2**32 - 1), default=None,
                   help="evaluation seed (default: the run's seed, as in its summary.json)")
    p.add_argument("--gif", default=None, metavar="PATH", help="render one episode of the best agent (seed, or setting and seed of a sweep) to this animated GIF")
    p.add_argument("--fps", type=int_flag("--fps", 1, 100), default=50, help="frames per second of the GIF")
    return p


def check_run_dir(text: str) -> Path:
    if text:
        check_path("RUN_DIR", text)  # a name too long, a link loop, no permission: said as such
    run_dir = Path(text)
    if not text or not run_dir.is_dir():
        raise UsageError(f"RUN_DIR must be an existing run directory; got {text!r}")
    if os.path.lexists(run_dir / "checkpoint.npz"):
        check_path("RUN_DIR", run_dir / "checkpoint.npz")
    return run_dir


def check_gif_path(text: str) -> Path:
    """Refuses a GIF path that cannot be written, before any work."""
    path = Path(text)
    if not text or path.suffix.lower() != ".gif":
        raise UsageError(f"--gif must be a file path ending in .gif; got {text!r}")
    check_path("--gif", text, write=True)
    if path.is_dir():
        raise UsageError(f"--gif must be a file path ending in .gif; got {text!r}, a directory")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"--gif {text!r} cannot be written: its directory {str(parent)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(f"--gif {shown_path(text)} cannot be written: {error_words(error.errno)}") from None
    return path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        check_jax_environment()  # before anything is loaded
        run_dir = check_run_dir(args.run_dir)
        gif = check_gif_path(args.gif) if args.gif is not None else None
        from jax_reinforce.harness.checkpoint import load_checkpoint
        from jax_reinforce.harness.evaluation import check_evaluation_size, render_unavailable_reason

        params, config = load_checkpoint(run_dir)  # CheckpointError is a ValueError
        check_evaluation_size(config, args.episodes)  # a billion episodes: one line, before any work
        if gif is not None and (reason := render_unavailable_reason(config.env)):
            raise UsageError(f"--gif: {reason}")
    except (UsageError, ValueError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return evaluate(params, config, run_dir, args, gif)


def evaluate(params, config, run_dir: Path, args, gif: Path | None) -> int:
    from jax_reinforce.core.config import env_spec_of
    from jax_reinforce.harness.evaluation import best_seed, evaluate_policies, gymnasium_unavailable_reason
    from jax_reinforce.harness.evaluation import render_episode
    from jax_reinforce.harness.reporting import evaluation_table, write_gif

    env_spec = env_spec_of(config)
    seed = config.seed if args.seed is None else args.seed
    results = evaluate_policies(params, env_spec, args.episodes, seed, config.num_seeds,
                                progress=lambda line: print(line, file=sys.stderr, flush=True))
    agents = f"{config.num_seeds} seeds" + (f" x {config.num_settings} settings" if config.num_settings > 1 else "")
    print(f"{run_dir}: {config.env}, {agents}; greedy evaluation, "
          f"{args.episodes} episodes per {'seed' if config.num_settings == 1 else 'agent'} (mean return):")
    means = {name: returns.mean(axis=1) for name, returns in results.items()}
    if (env_spec.env_params_changed or ":" in config.env) and (reason := gymnasium_unavailable_reason(env_spec)):
        print(reason)  # its own environment or physics: gymnasium has neither
    for line in evaluation_table(means, env_spec.solve_threshold):
        print(line)
    if config.num_settings > 1:  # a sweep: per setting, over its seeds
        from jax_reinforce.harness.reporting import setting_evaluation_lines

        print("\n".join(setting_evaluation_lines(config, means, env_spec.solve_threshold)))
    if gif is not None:
        from jax_reinforce.app.run import agent_name

        best = best_seed(results)
        frames, episode_return = render_episode(params, config.env, best, reset_seed=seed)
        try:
            write_gif(gif, frames, args.fps)
        except OSError as error:  # a full disk: one line; the GIF is written whole or not at all
            print(f"{PROG}: error: cannot write --gif: {os_error_line(error, gif)}; nothing was written",
                  file=sys.stderr)
            return EXIT_FAILED
        print(f"gif: {gif} ({agent_name(best, config.num_seeds, config.num_settings)}, one episode, return "
              f"{episode_return:g}, {len(frames)} frames)")
    return 0


if __name__ == "__main__":
    exit_now(main())
