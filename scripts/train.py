#!/usr/bin/env python
"""Train REINFORCE agents on CartPole (or another gymnax environment).

    python scripts/train.py                        # defaults: CartPole-v1, solved in seconds
    python scripts/train.py --env CartPole-v0 --hidden 8   # the seed program's network
    python scripts/train.py --num-seeds 256 --out runs/many

Every Config field is a flag. The run directory gets config.json,
metrics.csv, learning_curve.png, checkpoint.npz and summary.json, each written
atomically; then every seed's greedy policy is evaluated in gymnax and in
gymnasium's own CartPole.

Reliability:

- Every flag is checked before any work: bad input prints one line
  ``train.py: error: ...`` naming the flag, the value and what is allowed, and
  exits with code 2, leaving any existing run untouched.
- The checkpoint holds the full training state from iteration 0 on
  (``--checkpoint-every N`` saves it every N iterations too), so after a crash
  or ``kill -9`` at any moment ``--resume --out RUN_DIR`` continues from the
  last one and ends bitwise where an uninterrupted run would.
- Ctrl-C or SIGTERM saves a checkpoint and exits (130 / 143) saying how to
  resume; a second one exits at once (the last checkpoint stays whole).
- A non-finite loss, gradient or parameter stops the run with exit code 3,
  naming the iteration and the seeds; the checkpoint keeps their last finite
  parameters.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jax_reinforce.cli import EXIT_BAD_INPUT, OneLineParser, UsageError, exit_now  # noqa: E402
from jax_reinforce.config import BASELINES, GRADIENTS, OPTIMIZERS, Config, config_error, flag_of  # noqa: E402

PROG = "train.py"
EXIT_FAILED = 1
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}
RUN_FILES = ("config.json", "metrics.csv", "learning_curve.png", "checkpoint.npz", "summary.json")


def print_error(message) -> None:
    """``train.py: error: <message>`` as exactly one line on stderr."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _run_int(flag: str, low: int):
    """An integer run flag (not a Config field) of at least ``low``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= {low}; got {text!r}")
        return value

    return parse


def _config_value(field: str, convert):
    """A Config field's flag: converted here, checked by Config (one message for both)."""

    def parse(text):
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(str(config_error(field, text))) from None

    return parse


def _hidden(text):
    parts = [p.strip() for p in text.split(",")]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            str(config_error("hidden", text, "comma-separated layer widths, each an integer >= 1 (e.g. 8 or 64,64)"))
        ) from None


def _optional_float(text):
    return None if text.strip().lower() == "none" else float(text)


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    p = OneLineParser(
        prog=PROG,
        description="Train REINFORCE agents, vmapped over environments and seeds, in one jit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # a flag is compared with a resumed run's config by its full name
    )
    g = p.add_argument_group("config (every jax_reinforce.Config field)")
    g.add_argument("--env", default=d.env, help="gymnax environment: CartPole-v1, CartPole-v0, Acrobot-v1, ...")
    g.add_argument("--hidden", type=_hidden, default=d.hidden, help="hidden layer widths, e.g. 8 or 64,64")
    g.add_argument("--num-envs", type=_config_value("num_envs", int), default=d.num_envs, help="environments per agent (one episode each per iteration)")
    g.add_argument("--num-seeds", type=_config_value("num_seeds", int), default=d.num_seeds, help="agents trained at once")
    g.add_argument("--iterations", type=_config_value("iterations", int), default=d.iterations, help="maximum policy updates")
    g.add_argument("--lr", type=_config_value("learning_rate", float), default=d.learning_rate, help="learning rate")
    g.add_argument("--optimizer", default=d.optimizer, help="one of " + ", ".join(OPTIMIZERS))
    g.add_argument("--gamma", type=_config_value("gamma", float), default=d.gamma, help="discount factor")
    g.add_argument("--entropy-coef", type=_config_value("entropy_coef", float), default=d.entropy_coef, help="entropy bonus weight")
    g.add_argument("--max-grad-norm", type=_config_value("max_grad_norm", _optional_float), default=d.max_grad_norm, help="clip the global gradient norm ('none' to disable)")
    g.add_argument("--baseline", default=d.baseline, help="one of " + ", ".join(BASELINES))
    g.add_argument("--grad", default=d.grad, help="one of " + ", ".join(GRADIENTS) + " (manual: the hand-derived gradient)")
    g.add_argument("--seed", type=_config_value("seed", int), default=d.seed, help="root seed; agent i uses fold_in(seed, i)")
    g.add_argument("--rollout-steps", type=_config_value("rollout_steps", int), default=d.rollout_steps, help="rollout window (default: the episode limit)")
    g.add_argument("--stop-when-solved", action=argparse.BooleanOptionalAction, default=d.stop_when_solved, help="freeze each agent once solved, stop when all are")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="run directory (default: runs/<env>-<date>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    r.add_argument("--checkpoint-every", type=_run_int("--checkpoint-every", 0), default=0, help="also save the full training state every N iterations (0: at the start, on a signal and at the end)")
    r.add_argument("--chunk-iterations", type=_run_int("--chunk-iterations", 1), default=8, help="iterations per jitted call between progress updates (results do not depend on it)")
    r.add_argument("--eval-episodes", type=_run_int("--eval-episodes", 0), default=100, help="greedy evaluation episodes per seed in gymnax and gymnasium (0: skip)")
    r.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True, help="persistent XLA compilation cache in the user cache directory")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    m = p.add_argument_group("devices and processes")
    m.add_argument("--devices", default=None, help="devices to train on: 'all' or a count (default: in one process, as many as the seeds fill with 2 agents each; on a CPU each core is a device; in a job, one per process); the seeds, and with fewer seeds than devices the environments, are sharded over them")
    m.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address, the same for every process of a multi-process job")
    m.add_argument("--num-processes", type=_run_int("--num-processes", 1), default=None, help="processes in the job (one per host, or several on one machine)")
    m.add_argument("--process-id", type=_run_int("--process-id", 0), default=None, help="this process, 0 to --num-processes - 1; process 0 writes the run directory")
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


def _typed_fields(argv) -> set[str]:
    """The Config fields whose flags the user typed."""
    typed = explicit_flags(argv)
    fields = set()
    for field in dataclasses.fields(Config):
        flags = {flag_of(field.name)}
        if field.name == "stop_when_solved":
            flags = {"--stop-when-solved", "--no-stop-when-solved"}
        if flags & typed:
            fields.add(field.name)
    return fields


def check_resumable(out: Path, config: Config, argv) -> Config:
    """The config to continue the run in ``out`` with; refuses what cannot be resumed.

    The flags typed now must agree with the run's config; only
    ``--iterations`` may grow.
    """
    import numpy as np

    from jax_reinforce.checkpoint import CHECKPOINT_NAME, load_checkpoint_arrays

    if not out.is_dir():
        raise UsageError(f"--resume: --out {str(out)!r} must be an existing run directory; it does not exist")
    if not (out / CHECKPOINT_NAME).is_file():
        raise UsageError(
            f"--resume: --out {str(out)!r} holds no run to resume (no {CHECKPOINT_NAME} there; "
            f"a run killed before its first checkpoint starts anew without --resume)"
        )
    arrays, saved = load_checkpoint_arrays(out)  # CheckpointError is a ValueError
    failed = arrays.get("state/failed_at")
    if failed is not None and failed.dtype.kind in "iu" and (failed >= 0).any():
        seeds = np.flatnonzero(failed >= 0).tolist()
        raise UsageError(
            f"--resume: the run in --out {str(out)!r} stopped on non-finite values in seeds {seeds} "
            f"at iteration {int(failed[failed >= 0].min())} and cannot continue; start a new run with a "
            f"smaller --lr or a --max-grad-norm"
        )
    typed = _typed_fields(argv)
    for field in sorted(typed - {"iterations"}):
        now, then = getattr(config, field), getattr(saved, field)
        if now != then:
            raise UsageError(
                f"--resume: {flag_of(field)} {now!r} differs from the run's {then!r}; drop the flag or start a new run"
            )
    iterations = config.iterations if "iterations" in typed else saved.iterations
    if iterations < saved.iterations:
        raise UsageError(
            f"--resume: --iterations must be at least the run's {saved.iterations}; got {iterations}"
        )
    return saved.replace(iterations=iterations)


def holds_files(out: Path) -> bool:
    """Whether ``out`` holds anything but temporaries of a killed write (``.<name>.*.tmp``)."""
    stale = {f".{name}." for name in RUN_FILES}
    return any(
        not (p.name.endswith(".tmp") and any(p.name.startswith(prefix) for prefix in stale))
        for p in out.iterdir()
    )


def prepare_run_dir(args, config: Config, argv, writer: bool = True) -> tuple[Path, Config]:
    """Checks the output directory before any work; returns it and the config to run.

    Changes nothing on disk unless every check passes; then creates the
    directory, or (``--overwrite``) clears the old run's files.
    """
    from datetime import datetime

    from jax_reinforce.checkpoint import remove_stale_temporaries

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; choose one")
    if args.out is not None and not args.out.strip():
        raise UsageError(f"--out must be a directory path; got {args.out!r}")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out RUN_DIR, the run directory to continue")
    out = Path(args.out) if args.out else Path("runs") / f"{config.env}-{datetime.now():%Y%m%d-%H%M%S}"
    if args.resume:
        config = check_resumable(out, config, argv)  # every process reads the run (a shared filesystem)
        if writer:
            remove_stale_temporaries(out, RUN_FILES)
        return out, config
    if not writer:  # processes other than 0 never touch the run directory
        return out, config
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} must be a directory; it exists and is not one")
    if out.is_dir() and holds_files(out) and not args.overwrite:
        raise UsageError(
            f"--out {str(out)!r} already holds files; pass --resume to continue its run or --overwrite to replace it"
        )
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
    remove_stale_temporaries(out, RUN_FILES)
    return out, config


class StopSignals:
    """Turns SIGINT and SIGTERM into a request to stop after the current chunk.

    The first signal is recorded (``stop.signum``) and the training loop saves
    a checkpoint and exits. A second one exits at once: every file is written
    atomically, so the last checkpoint stays whole.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __bool__(self):
        return self.signum is not None

    def _handle(self, signum, _frame):
        if self.signum is None:
            self.signum = signum
            return
        print(f"\n{PROG}: second {signal.Signals(signum).name}: exiting now; the last checkpoint is kept",
              file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED[signum])

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._handle) for s in EXIT_INTERRUPTED}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


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
    problem, joined = None, False
    try:
        args = build_parser().parse_args(argv)
        joined = join_job(args)  # first: before anything starts JAX's backends
        config = config_from_args(args)  # ValueError for a bad value, unknown environment included
        if not joined:
            from jax_reinforce.compilation import use_cpu_cores

            use_cpu_cores()  # one CPU device per core: agents train on every core
        from jax_reinforce.distributed import select_devices

        # An explicit count is checked before the run directory is touched; the default depends
        # on the seeds, which --resume reads from the run.
        devices = None if args.devices is None else select_devices(args.devices, config.num_seeds)
        out, config = prepare_run_dir(args, config, argv, writer=not joined or _process_index() == 0)
        devices = devices or select_devices(None, config.num_seeds)
    except (UsageError, ValueError) as error:
        problem = error
    if joined:  # in a job, every process stops if one cannot start
        from jax_reinforce.distributed import any_process

        stop_all = any_process(problem is not None)
    else:
        stop_all = problem is not None
    if stop_all:
        print_error(problem or "another process of the job could not start; see its error")
        return EXIT_BAD_INPUT

    with StopSignals() as stop:
        try:
            return train_run(args, config, out, stop, devices)
        except UsageError as error:
            print_error(error)
            return EXIT_BAD_INPUT
        except OSError as error:  # disk full, run directory removed, ...: one line, not a traceback
            print_error(f"cannot write the run: {error}; every file is written whole, "
                        f"so the last checkpoint in {out} (if any) is intact")
            return EXIT_FAILED
        except Exception as error:  # out of memory: one line, not a traceback
            if not (isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)):
                raise
            print_error(f"out of memory ({str(error).splitlines()[0][:200]}); try a smaller --num-envs, "
                        f"--num-seeds or --hidden; the last checkpoint in {out} is kept")
            return EXIT_FAILED


def _process_index() -> int:
    import jax

    return jax.process_index()


def join_job(args) -> bool:
    """``--coordinator/--num-processes/--process-id``: joins the multi-process job; whether there is one."""
    if args.coordinator is None and args.num_processes is None and args.process_id is None:
        return False  # one process: JAX is not even imported yet
    from jax_reinforce.distributed import initialize_distributed

    try:
        return initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    except RuntimeError as error:  # coordinator unreachable, timeout
        raise UsageError(f"--coordinator {args.coordinator!r}: could not join the job of {args.num_processes} "
                         f"processes: {str(error).splitlines()[0][:200]}") from None


def train_run(args, config: Config, out: Path, stop: StopSignals, devices: list) -> int:
    import numpy as np

    import jax

    from jax_reinforce.compilation import compiler_options, enable_compile_cache

    if args.compile_cache:
        enable_compile_cache()
    options = compiler_options()

    from jax_reinforce.checkpoint import CheckpointError, load_train_state, save_checkpoint
    from jax_reinforce.envs import make_env
    from jax_reinforce.evaluation import evaluate_policies
    from jax_reinforce.reporting import aggregate_metrics, first_solved_iteration, plot_learning_curve, write_json, write_metrics_csv
    from jax_reinforce.distributed import ShardedRunner, any_process
    from jax_reinforce.runner import MIN_BATCH, SeedRunner, default_max_batch
    from jax_reinforce.training import agent_keys

    env_spec = make_env(config.env)
    t_import = time.perf_counter() - PROCESS_START

    t0 = time.perf_counter()
    # A chunk never crosses a checkpoint, so --checkpoint-every N saves every N iterations.
    chunk = min(args.chunk_iterations, args.checkpoint_every or args.chunk_iterations, config.iterations)
    main_process = jax.process_index() == 0  # writes the run directory; every process trains its share
    if jax.process_count() == 1 and (len(devices) == 1 or config.num_seeds >= MIN_BATCH * len(devices)):
        # Seeds split over the devices, finished agents moved out of the batch.
        runner = SeedRunner(config, env_spec, chunk, options, devices=devices,
                            max_batch=default_max_batch(config.num_envs, devices))
        layout = "1 device" if len(devices) == 1 else f"{len(devices)} devices, the seeds split over them"
    else:
        runner = ShardedRunner(config, env_spec, chunk, options, devices=devices)
        layout = runner.describe()
    runner.init(agent_keys(config.seed, config.num_seeds))
    progress = Progress(config.iterations, args.quiet or not main_process)

    def stopping():
        return any_process(bool(stop))  # a signal to any process stops them all, at the same chunk

    def write_rows():
        if not main_process:
            return None
        rows = aggregate_metrics(runner.history, np.asarray(runner.state.solved_at), runner.solve_scores())
        write_metrics_csv(out / "metrics.csv", rows)
        return rows

    def save():
        # The checkpoint first: metrics.csv is rebuilt from its history on resume.
        if main_process:
            save_checkpoint(out, runner.state.params, config, runner.state, runner.history)
            write_rows()

    def interrupted():
        progress.close()
        save()
        signum = stop.signum or signal.SIGTERM  # another process of the job got the signal
        if main_process:
            print(f"{PROG}: stopped by {signal.Signals(signum).name} at iteration {runner.iterations_run}; "
                  f"checkpoint saved; resume with: python scripts/train.py --resume --out {out}", file=sys.stderr)
        return EXIT_INTERRUPTED[signum]

    if args.resume:
        problem = None
        try:
            loaded, history, _ = load_train_state(out, runner.state)
        except CheckpointError as error:
            problem = error
        if any_process(problem is not None):
            raise UsageError(f"--resume: {problem or 'another process could not read the checkpoint (--out must be on a filesystem every process reads)'}")
        runner.restore(loaded, history)
        if main_process:
            print(f"resuming {out} at iteration {runner.iterations_run}", file=sys.stderr)
    else:
        save()  # iteration 0: from now on there is always a checkpoint to resume from
    if main_process:
        write_json(out / "config.json", config.to_dict())  # on resume, --iterations may have grown
    job = f"process {jax.process_index()} of {jax.process_count()}: " if jax.process_count() > 1 else ""
    print(f"{job}devices: {', '.join(str(d) for d in devices)} ({layout})", file=sys.stderr)
    if stopping():
        return interrupted()
    runner.compile()
    t_compile = time.perf_counter() - t0

    t_train = 0.0
    last_saved_block = runner.iterations_run // max(args.checkpoint_every, 1)
    while True:
        if stopping():
            return interrupted()
        if not runner.running().any():
            break
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
            save()  # the failed update was not applied: the saved parameters are the last finite ones
            where = ", ".join(f"seed {i} at iteration {failed[i]}" for i in np.flatnonzero(failed >= 0))
            print_error(f"non-finite loss, gradient or parameters: {where}; training stopped; "
                        f"{out / 'checkpoint.npz'} keeps their last finite parameters; "
                        f"start a new run with a smaller --lr or a --max-grad-norm")
            return EXIT_NONFINITE
        if args.checkpoint_every:
            block = runner.iterations_run // args.checkpoint_every
            if block != last_saved_block:
                save()
                last_saved_block = block
    progress.close()
    stopped = stopping()
    if not main_process:  # process 0 writes, evaluates and reports
        return interrupted() if stopped else 0

    state, history = runner.state, runner.history
    steps_total = int(history["env_steps"].sum())
    save_checkpoint(out, state.params, config, state, history)
    rows = write_rows()
    threshold = env_spec.solve_threshold
    plot_learning_curve(out / "learning_curve.png", rows, threshold, f"REINFORCE on {config.env}, {config.num_seeds} seeds")
    solved_at = np.asarray(state.solved_at)
    steps_per_iteration = history["env_steps"].sum(axis=0)
    if stopped:  # training is complete and saved; a resume only evaluates
        return interrupted()

    t_eval0 = time.perf_counter()
    evaluation = {}
    if args.eval_episodes:
        results = evaluate_policies(state.params, env_spec, args.eval_episodes, config.seed)
        evaluation = {f"{name}_mean": returns.mean(axis=1).tolist() for name, returns in results.items()}
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
        "devices": [str(d) for d in devices],
        "processes": jax.process_count(),
    }
    if threshold is not None and evaluation:
        for name in ("gymnax_mean", "gymnasium_mean"):
            if name in evaluation:
                summary[f"seeds_at_threshold_{name.split('_')[0]}"] = int(np.sum(np.asarray(evaluation[name]) >= threshold))
    write_json(out / "summary.json", summary)
    print_report(summary, config, out)
    return 0


def print_report(summary, config, out):
    from jax_reinforce.reporting import evaluation_table

    s = summary["seconds"]
    print(f"{config.env}: {summary['seeds_solved']}/{config.num_seeds} seeds solved in training "
          f"(threshold {summary['solve_threshold']}), {summary['iterations_run']} iterations, "
          f"{summary['env_steps']:,} env steps")
    print(f"time: import {s['import']:.2f}s  compile {s['compile']:.2f}s  train {s['train']:.2f}s  "
          f"eval {s['eval']:.2f}s  total {s['total']:.2f}s  ({summary['env_steps_per_second_train'] / 1e6:.2f}M env-steps/s)")
    ev = summary["evaluation"]
    if ev:
        print(f"greedy evaluation, {summary['evaluation_episodes']} episodes per seed (mean return):")
        means = {name[: -len("_mean")]: values for name, values in ev.items()}
        for line in evaluation_table(means, summary["solve_threshold"]):
            print(line)
    print(f"run directory: {out}")


if __name__ == "__main__":
    exit_now(main())
