#!/usr/bin/env python
"""Train REINFORCE agents on CartPole (or another gymnax environment).

    python scripts/train.py                        # defaults: CartPole-v1, solved in seconds
    python scripts/train.py --env CartPole-v0 --hidden 8   # the seed program's network
    python scripts/train.py --num-seeds 256 --out runs/many

Every Config field is a flag (jax_reinforce.core.config.FLAGS). The run itself is
jax_reinforce.train_run: checkpoints, resume, devices, processes, the run
directory's files. This script parses, calls and prints. Every failure is one
line: bad input (a flag, a path, the JAX environment, processes of one job
that differ) ``train.py: error: ...``, exit code 2, before any file is touched;
a failed write, 1; diverged agents, 3; a multi-process job that lost a process, 4.
SIGINT or SIGTERM at any moment: one line within seconds, exit code 130 / 143
(before training at once, cli.exit_on_signals; in training after the chunk,
with a checkpoint and the resume command, run.StopSignals; a second at once).
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import gc  # noqa: E402

# As a script: importing makes long-lived objects, not garbage, so Python's cyclic collector waits; main()
# freezes what was imported out of its scans and turns it on before the run (docs/performance.md, round 13).
PAUSED_COLLECTOR = __name__ == "__main__" and gc.isenabled()
if PAUSED_COLLECTOR:
    gc.disable()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
PROG = "train.py"
from jax_reinforce.app.cli import exit_on_signals  # noqa: E402
# First, before the heavy imports: from here on Ctrl-C is one line (as a script only: never on import).
SIGNALS = exit_on_signals(PROG) if __name__ == "__main__" else None

import argparse  # noqa: E402
import signal  # noqa: E402

from jax_reinforce.app.cli import EXIT_BAD_INPUT, EXIT_JOB_LOST, OneLineParser, ProgressLine, UsageError, add_config_flags  # noqa: E402
from jax_reinforce.app.cli import add_tracker_flags, check_out_path, trackers_from_args  # noqa: E402
from jax_reinforce.app.cli import config_from_args, exit_now, int_flag, last_line, os_error_line, start_jax  # noqa: E402
from jax_reinforce.app.cli import typed_config_fields  # noqa: E402
from jax_reinforce.app.run import EXIT_FOR_SIGNAL, RUN_FILES  # noqa: E402, F401  (RUN_FILES: the files of a run)

EXIT_FAILED, EXIT_NONFINITE = 1, 3


def print_error(message) -> None:
    """``train.py: error: <message>`` as exactly one line on stderr."""
    sys.stdout.flush()
    last_line(f"{PROG}: error: {' '.join(str(message).split())}")  # the only one, even if a peer dies meanwhile


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Train REINFORCE agents, vmapped over environments and seeds, in one jit.",
                      allow_abbrev=False)  # a flag is compared with a resumed run's config by its full name
    add_config_flags(p)
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="run directory (default: runs/<env>-<date>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    r.add_argument("--checkpoint-every", type=int_flag("--checkpoint-every", 0), default=None, help="also save the full training state every N iterations (default 0: at the start, on a signal and at the end; on --resume, the run's own)")
    r.add_argument("--chunk-iterations", type=int_flag("--chunk-iterations", 1), default=8, help="iterations per jitted call between progress updates; results do not depend on it (default 8)")
    r.add_argument("--eval-episodes", type=int_flag("--eval-episodes", 0), default=None, help="greedy evaluation episodes per seed in gymnax and gymnasium; 0 skips (default 100; on --resume, the run's own)")
    r.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True, help="keep compiled programs in the user cache directory (default on)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    m = p.add_argument_group("devices and processes")
    m.add_argument("--devices", default=None, help="'all' or a count (default: on a CPU, one device called from one thread per core; elsewhere, in one process, as many as the seeds fill with 2 agents each; in a job, one per process)")
    m.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address, the same for every process of a multi-process job")
    m.add_argument("--num-processes", type=int_flag("--num-processes", 1), default=None, help="processes in the job")
    m.add_argument("--process-id", type=int_flag("--process-id", 0), default=None, help="this process, 0 to --num-processes - 1; process 0 writes the run directory")
    m.add_argument("--coordinator-timeout", type=int_flag("--coordinator-timeout", 1, 2**31 - 1), default=300, metavar="SECONDS", help="give up joining the job after this long, with one line and exit code 2 (default 300)")
    add_tracker_flags(p)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        check_out_path(args.out, resume=args.resume)  # a name too long, a link loop, no permission: before any work
        # Joins the job or uses every CPU core, before JAX's backends start; then refuses a bad JAX environment.
        start_jax(args.coordinator, args.num_processes, args.process_id, timeout_s=args.coordinator_timeout, prog=PROG)
        config = None if args.resume and not typed_config_fields(args) else config_from_args(args)
        tensorboard, wandb = trackers_from_args(args)
        from jax_reinforce.app.run import train_run

        progress = None if args.quiet else ProgressLine()
        if PAUSED_COLLECTOR:
            gc.freeze()
            gc.enable()
        result = train_run(config, args.out, resume=args.resume, overwrite=args.overwrite,
                           typed_fields=typed_config_fields(args), checkpoint_every=args.checkpoint_every,
                           chunk_iterations=args.chunk_iterations, eval_episodes=args.eval_episodes,
                           devices=args.devices, compile_cache=args.compile_cache, handle_signals=True,
                           progress=progress, start_time=PROCESS_START, tensorboard=tensorboard, wandb=wandb)
    except (UsageError, ValueError) as error:
        print_error(error)
        return EXIT_BAD_INPUT
    except OSError as error:  # disk full, run directory removed, ...: one line, not a traceback
        print_error(f"cannot write the run: {os_error_line(error, args.out)}; every file is written whole, so the "
                    f"last checkpoint {'in ' + args.out + ' ' if args.out else ''}(if any) is intact")
        return EXIT_FAILED
    except Exception as error:  # a job that lost a process, out of memory: one line, not a traceback
        devices = sys.modules.get("jax_reinforce.harness.devices")  # where a JobLostError comes from
        if devices is not None and isinstance(error, devices.JobLostError):
            print_error(error)
            return EXIT_JOB_LOST
        if not (isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)):
            raise
        print_error(f"out of memory ({str(error).splitlines()[0][:200]}); try a smaller --num-envs, "
                    f"--num-seeds or --hidden; the last checkpoint is kept")
        return EXIT_FAILED
    if SIGNALS is not None:
        SIGNALS.message = f"after the run; every file in {result.run_dir} is written"
    if progress is not None:
        progress.close()
    if result.status == "interrupted":
        if _is_main_process():
            print(f"{PROG}: {result.message}", file=sys.stderr)
        return EXIT_FOR_SIGNAL[result.signum or 15]
    if result.signum is not None:  # a signal during the final evaluation, which then finished
        print(f"{PROG}: stopped by {signal.Signals(result.signum).name} as the run finished; {result.run_dir} is "
              f"complete", file=sys.stderr)
        return EXIT_FOR_SIGNAL[result.signum]
    if result.summary is not None:
        from jax_reinforce.app.run import report_lines

        print("\n".join(report_lines(result.summary, result.run_dir)))
    if result.status == "diverged":
        print_error(result.message)
        return EXIT_NONFINITE
    return 0


def _is_main_process() -> bool:
    import jax

    return jax.process_index() == 0


if __name__ == "__main__":
    exit_now(main())
