#!/usr/bin/env python
"""Train REINFORCE agents on CartPole (or another gymnax environment).

    python scripts/train.py                        # defaults: CartPole-v1, solved in seconds
    python scripts/train.py --env CartPole-v0 --hidden 8   # the seed program's network
    python scripts/train.py --num-seeds 256 --out runs/many

Every Config field is a flag. The run directory gets config.json,
metrics.csv, learning_curve.png, checkpoint.npz and summary.json; then every
seed's greedy policy is evaluated in gymnax and in gymnasium's own CartPole.
Ctrl-C (or SIGTERM) saves a checkpoint; ``--resume --out RUN_DIR`` continues.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jax_reinforce.config import BASELINES, GRADIENTS, OPTIMIZERS, Config, flag_of  # noqa: E402

EXIT_BAD_INPUT = 2
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}
RUN_FILES = ("config.json", "metrics.csv", "learning_curve.png", "checkpoint.npz", "summary.json")


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _positive_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 1; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 1; got {text!r}")
        return value

    return parse


def _nonneg_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 0; got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 0; got {text!r}")
        return value

    return parse


def _finite_float(flag, allowed):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}; got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}; got {text!r}")
        return value

    return parse


def _hidden(text):
    allowed = "comma-separated layer widths, each an integer >= 1 (e.g. 8 or 64,64)"
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"--hidden must be {allowed}; got {text!r}")
    return tuple(int(p) for p in parts)


def _max_grad_norm(text):
    if text.lower() == "none":
        return None
    return _finite_float("--max-grad-norm", "'none' or a finite number > 0")(text)


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    p = OneLineParser(
        prog="train.py",
        description="Train REINFORCE agents, vmapped over environments and seeds, in one jit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("config (every jax_reinforce.Config field)")
    g.add_argument("--env", default=d.env, help="gymnax environment: CartPole-v1, CartPole-v0, Acrobot-v1, ...")
    g.add_argument("--hidden", type=_hidden, default=d.hidden, help="hidden layer widths, e.g. 8 or 64,64")
    g.add_argument("--num-envs", type=_positive_int("--num-envs"), default=d.num_envs, help="environments per agent (one episode each per iteration)")
    g.add_argument("--num-seeds", type=_positive_int("--num-seeds"), default=d.num_seeds, help="agents trained at once")
    g.add_argument("--iterations", type=_positive_int("--iterations"), default=d.iterations, help="maximum policy updates")
    g.add_argument("--lr", type=_finite_float("--lr", "a finite number > 0"), default=d.learning_rate, help="learning rate")
    g.add_argument("--optimizer", default=d.optimizer, help="one of " + ", ".join(OPTIMIZERS))
    g.add_argument("--gamma", type=_finite_float("--gamma", "a number in [0, 1]"), default=d.gamma, help="discount factor")
    g.add_argument("--entropy-coef", type=_finite_float("--entropy-coef", "a finite number >= 0"), default=d.entropy_coef, help="entropy bonus weight")
    g.add_argument("--max-grad-norm", type=_max_grad_norm, default=d.max_grad_norm, help="clip the global gradient norm ('none' to disable)")
    g.add_argument("--baseline", default=d.baseline, help="one of " + ", ".join(BASELINES))
    g.add_argument("--grad", default=d.grad, help="one of " + ", ".join(GRADIENTS) + " (manual: the hand-derived gradient)")
    g.add_argument("--seed", type=_nonneg_int("--seed"), default=d.seed, help="root seed; agent i uses fold_in(seed, i)")
    g.add_argument("--rollout-steps", type=_positive_int("--rollout-steps"), default=d.rollout_steps, help="rollout window (default: the episode limit)")
    g.add_argument("--stop-when-solved", action=argparse.BooleanOptionalAction, default=d.stop_when_solved, help="freeze each agent once solved, stop when all are")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="run directory (default: runs/<env>-<date>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    r.add_argument("--checkpoint-every", type=_nonneg_int("--checkpoint-every"), default=0, help="save the full training state every N iterations (0: only at the end)")
    r.add_argument("--chunk-iterations", type=_positive_int("--chunk-iterations"), default=8, help="iterations per jitted call between progress updates (results do not depend on it)")
    r.add_argument("--eval-episodes", type=_nonneg_int("--eval-episodes"), default=100, help="greedy evaluation episodes per seed in gymnax and gymnasium (0: skip)")
    r.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True, help="persistent XLA compilation cache in the user cache directory")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args) -> Config:
    return Config(
        env=args.env,
        hidden=args.hidden,
        num_envs=args.num_envs,
        num_seeds=args.num_seeds,
        iterations=args.iterations,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        gamma=args.gamma,
        entropy_coef=args.entropy_coef,
        max_grad_norm=args.max_grad_norm,
        baseline=args.baseline,
        grad=args.grad,
        seed=args.seed,
        rollout_steps=args.rollout_steps,
        stop_when_solved=args.stop_when_solved,
    )


def explicit_flags(argv) -> set[str]:
    """The flags the user typed (to compare with a resumed run's config)."""
    return {a.split("=", 1)[0] for a in argv if a.startswith("--")}


def check_env_name(name: str) -> None:
    from jax_reinforce.envs import CARTPOLE_NAMES

    if name in CARTPOLE_NAMES:
        return
    try:
        from jax_reinforce.envs import make_env

        make_env(name)
    except ValueError as error:
        raise UsageError(f"--env {error}".replace("--env env ", "--env ")) from None


def prepare_run_dir(args, config: Config, argv) -> tuple[Path, Config]:
    """Checks the output directory before any work; returns it and the config to run."""
    from datetime import datetime

    out = Path(args.out) if args.out else Path("runs") / f"{config.env}-{datetime.now():%Y%m%d-%H%M%S}"
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; choose one")
    if args.resume:
        if not (out / "checkpoint.npz").is_file():
            raise UsageError(f"--resume: no run to resume in --out {str(out)!r} (no checkpoint.npz there)")
        from jax_reinforce.checkpoint import load_checkpoint_arrays

        _, saved = load_checkpoint_arrays(out)  # CheckpointError is a ValueError
        # Flags typed now must agree with the run's config (only --iterations may grow).
        typed = explicit_flags(argv)
        for field in dataclasses.fields(Config):
            flag = flag_of(field.name)
            if field.name == "stop_when_solved":
                typed_here = {"--stop-when-solved", "--no-stop-when-solved"} & typed
            else:
                typed_here = {flag} & typed
            if not typed_here or field.name == "iterations":
                continue
            now, then = getattr(config, field.name), getattr(saved, field.name)
            if now != then:
                raise UsageError(f"--resume: {flag} {now!r} differs from the run's {then!r}; drop the flag or start a new run")
        iterations = config.iterations if "--iterations" in typed else saved.iterations
        if iterations < saved.iterations:
            raise UsageError(f"--iterations {iterations} is fewer than the run's {saved.iterations}")
        return out, saved.replace(iterations=iterations)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            raise UsageError(f"--out {str(out)!r} already holds a run; pass --resume to continue it or --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {str(out)!r} cannot be created or written: {error.strerror or error}") from None
    if args.overwrite:
        for name in RUN_FILES:
            if (out / name).exists():
                (out / name).unlink()
    return out, config


class Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, iteration, median_return, solved, num_seeds, steps_per_s, force=False):
        if self.quiet:
            return
        now = time.perf_counter()
        if not force and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        width = 24
        filled = int(width * min(iteration / self.total, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        text = (f"[{bar}] iter {iteration}/{self.total}  median return {median_return:7.1f}  "
                f"solved {solved}/{num_seeds}  {steps_per_s / 1e6:6.2f}M env-steps/s")
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self):
        if not self.quiet and self.tty:
            print(file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        config = config_from_args(args)
        check_env_name(config.env)
        out, config = prepare_run_dir(args, config, argv)
    except (UsageError, ValueError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    stop_signal = {}

    def on_signal(signum, _frame):
        stop_signal.setdefault("signum", signum)

    previous = {s: signal.signal(s, on_signal) for s in EXIT_INTERRUPTED}
    try:
        return train_run(args, config, out, stop_signal)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def train_run(args, config: Config, out: Path, stop_signal: dict) -> int:
    import numpy as np

    import jax

    from jax_reinforce.compilation import compiler_options, enable_compile_cache

    if args.compile_cache:
        enable_compile_cache()
    options = compiler_options()

    from jax_reinforce.checkpoint import CheckpointError, load_train_state, save_checkpoint
    from jax_reinforce.envs import make_env
    from jax_reinforce.reporting import aggregate_metrics, first_solved_iteration, plot_learning_curve, write_json, write_metrics_csv
    from jax_reinforce.runner import SeedRunner
    from jax_reinforce.training import agent_keys

    env_spec = make_env(config.env)
    t_import = time.perf_counter() - PROCESS_START
    print(f"devices: {', '.join(str(d) for d in jax.devices())}", file=sys.stderr)

    t0 = time.perf_counter()
    runner = SeedRunner(config, env_spec, args.chunk_iterations, options)
    runner.init(agent_keys(config.seed, config.num_seeds))
    if args.resume:
        try:
            loaded, history, _ = load_train_state(out, runner.state)
        except CheckpointError as error:
            print(f"train.py: error: --resume: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        runner.restore(loaded, history)
        print(f"resuming {out} at iteration {runner.iterations_run}", file=sys.stderr)
    else:
        write_json(out / "config.json", config.to_dict())
    runner.compile()
    t_compile = time.perf_counter() - t0

    def write_rows():
        rows = aggregate_metrics(runner.history, np.asarray(runner.state.solved_at), runner.solve_scores())
        write_metrics_csv(out / "metrics.csv", rows)
        return rows

    def save():
        save_checkpoint(out, runner.state.params, config, runner.state, runner.history)
        write_rows()

    progress = Progress(config.iterations, args.quiet)
    t_train = 0.0
    last_saved_block = runner.iterations_run // max(args.checkpoint_every, 1)
    while runner.running().any():
        t = time.perf_counter()
        metrics = runner.run_chunk()
        dt = time.perf_counter() - t
        t_train += dt
        chunk_steps = int(metrics["env_steps"].sum())
        last = runner.history["episode_return"][:, -1] if runner.iterations_run else np.array([np.nan])
        solved_now = int(np.sum(np.asarray(runner.state.solved_at) >= 0))
        progress.update(runner.iterations_run, float(np.nanmedian(last)) if np.isfinite(last).any() else float("nan"),
                        solved_now, config.num_seeds, chunk_steps / max(dt, 1e-9))
        failed = np.asarray(runner.state.failed_at)
        if (failed >= 0).any():
            progress.close()
            save()
            seeds = np.flatnonzero(failed >= 0).tolist()
            print(f"train.py: error: non-finite loss, gradient or parameters at iteration {int(failed[failed >= 0].min())} "
                  f"in seeds {seeds}; their last finite parameters are saved in {out / 'checkpoint.npz'}; "
                  f"try a smaller --lr or --max-grad-norm", file=sys.stderr)
            return EXIT_NONFINITE
        if stop_signal:
            progress.close()
            save()
            signum = stop_signal["signum"]
            print(f"train.py: stopped by {signal.Signals(signum).name} at iteration {runner.iterations_run}; "
                  f"checkpoint saved; resume with: python scripts/train.py --resume --out {out}", file=sys.stderr)
            return EXIT_INTERRUPTED[signum]
        if args.checkpoint_every:
            block = runner.iterations_run // args.checkpoint_every
            if block != last_saved_block:
                save()
                last_saved_block = block
    progress.close()

    state, history = runner.state, runner.history
    steps_total = int(history["env_steps"].sum())
    save_checkpoint(out, state.params, config, state, history)
    rows = write_rows()
    threshold = env_spec.solve_threshold
    plot_learning_curve(out / "learning_curve.png", rows, threshold, f"REINFORCE on {config.env}, {config.num_seeds} seeds")
    solved_at = np.asarray(state.solved_at)
    steps_per_iteration = history["env_steps"].sum(axis=0)

    t_eval0 = time.perf_counter()
    evaluation = {}
    if args.eval_episodes:
        from jax_reinforce.evaluation import evaluate_gymnasium, evaluate_gymnax

        params = jax.device_get(state.params)
        gx = evaluate_gymnax(state.params, env_spec, args.eval_episodes, jax.random.PRNGKey(config.seed + 1))
        evaluation["gymnax_mean"] = gx.mean(axis=1).tolist()
        if config.env in ("CartPole-v0", "CartPole-v1"):
            gy = evaluate_gymnasium(params, config.env, args.eval_episodes, seed=config.seed)
            evaluation["gymnasium_mean"] = gy.mean(axis=1).tolist()
    t_eval = time.perf_counter() - t_eval0

    all_solved_iteration = first_solved_iteration(rows, config.num_seeds)
    summary = {
        "env": config.env,
        "num_seeds": config.num_seeds,
        "seeds_solved": int(np.sum(solved_at >= 0)),
        "solve_threshold": threshold,
        "solved_at_iteration": solved_at.tolist(),
        "iterations_run": int(history["env_steps"].shape[1]),
        "all_solved_at_iteration": all_solved_iteration,
        "env_steps": int(steps_total),
        "env_steps_to_all_solved": None if all_solved_iteration is None else int(steps_per_iteration[: all_solved_iteration + 1].sum()),
        "env_steps_per_second_train": steps_total / max(t_train, 1e-9),
        "seconds": {
            "import": t_import,
            "compile": t_compile,
            "train": t_train,
            "eval": t_eval,
            "total": time.perf_counter() - PROCESS_START,
        },
        "evaluation_episodes": args.eval_episodes,
        "evaluation": evaluation,
        "devices": [str(d) for d in jax.devices()],
    }
    if threshold is not None and evaluation:
        for name in ("gymnax_mean", "gymnasium_mean"):
            if name in evaluation:
                summary[f"seeds_at_threshold_{name.split('_')[0]}"] = int(np.sum(np.asarray(evaluation[name]) >= threshold))
    write_json(out / "summary.json", summary)
    print_report(summary, config, out)
    return 0


def print_report(summary, config, out):
    s = summary["seconds"]
    print(f"{config.env}: {summary['seeds_solved']}/{config.num_seeds} seeds solved in training "
          f"(threshold {summary['solve_threshold']}), {summary['iterations_run']} iterations, "
          f"{summary['env_steps']:,} env steps")
    print(f"time: import {s['import']:.2f}s  compile {s['compile']:.2f}s  train {s['train']:.2f}s  "
          f"eval {s['eval']:.2f}s  total {s['total']:.2f}s  ({summary['env_steps_per_second_train'] / 1e6:.2f}M env-steps/s)")
    ev = summary["evaluation"]
    if ev:
        n = summary["evaluation_episodes"]
        print(f"greedy evaluation, {n} episodes per seed (mean return):")
        gx, gy = ev.get("gymnax_mean", []), ev.get("gymnasium_mean", [])
        if config.num_seeds <= 16:
            print(f"  {'seed':>4}  {'gymnax':>8}  {'gymnasium':>9}")
            for i in range(config.num_seeds):
                gy_text = f"{gy[i]:9.1f}" if gy else f"{'-':>9}"
                print(f"  {i:>4}  {gx[i]:8.1f}  {gy_text}")
        for name, values in (("gymnax", gx), ("gymnasium", gy)):
            if values:
                thr = summary["solve_threshold"]
                at = "" if thr is None else f", {sum(v >= thr for v in values)}/{len(values)} seeds >= {thr:g}"
                print(f"  {name}: min {min(values):.1f}  median {sorted(values)[len(values) // 2]:.1f}  max {max(values):.1f}{at}")
    print(f"run directory: {out}")


if __name__ == "__main__":
    sys.exit(main())
