#!/usr/bin/env python
"""Train REINFORCE agents on CartPole (or another gymnax environment).

    python scripts/train.py                        # defaults: CartPole-v1, solved in seconds
    python scripts/train.py --env CartPole-v0 --hidden 8   # the seed program's network
    python scripts/train.py --num-seeds 256 --out runs/many

Every Config field is a flag (jax_reinforce.config.FLAGS). The run itself is
jax_reinforce.train_run: checkpoints, resume, devices, processes, the run
directory's files. This script parses, calls and prints. Bad input: one line
``train.py: error: ...`` and exit code 2, before any file is touched; Ctrl-C
or SIGTERM saves a checkpoint and exits 130 / 143; agents that diverged (non-finite values) make it exit 3 at the end.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jax_reinforce.cli import EXIT_BAD_INPUT, OneLineParser, UsageError, add_config_flags, int_flag  # noqa: E402
from jax_reinforce.cli import config_from_args, exit_now, typed_config_fields  # noqa: E402
from jax_reinforce.run import EXIT_FOR_SIGNAL, RUN_FILES  # noqa: E402, F401  (RUN_FILES: the files of a run)

PROG = "train.py"
EXIT_FAILED, EXIT_NONFINITE = 1, 3


def print_error(message) -> None:
    """``train.py: error: <message>`` as exactly one line on stderr."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Train REINFORCE agents, vmapped over environments and seeds, in one jit.",
                      allow_abbrev=False)  # a flag is compared with a resumed run's config by its full name
    add_config_flags(p)
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="run directory (default: runs/<env>-<date>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    r.add_argument("--checkpoint-every", type=int_flag("--checkpoint-every", 0), default=0, help="also save the full training state every N iterations (default 0: at the start, on a signal and at the end)")
    r.add_argument("--chunk-iterations", type=int_flag("--chunk-iterations", 1), default=8, help="iterations per jitted call between progress updates; results do not depend on it (default 8)")
    r.add_argument("--eval-episodes", type=int_flag("--eval-episodes", 0), default=100, help="greedy evaluation episodes per seed in gymnax and gymnasium; 0 skips (default 100)")
    r.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True, help="keep compiled programs in the user cache directory (default on)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    m = p.add_argument_group("devices and processes")
    m.add_argument("--devices", default=None, help="'all' or a count (default: in one process, as many as the seeds fill with 2 agents each; on a CPU each core is a device; in a job, one per process)")
    m.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address, the same for every process of a multi-process job")
    m.add_argument("--num-processes", type=int_flag("--num-processes", 1), default=None, help="processes in the job")
    m.add_argument("--process-id", type=int_flag("--process-id", 0), default=None, help="this process, 0 to --num-processes - 1; process 0 writes the run directory")
    return p


class Progress:
    """The progress line on stderr: every 0.2 s on a terminal, every 2 s otherwise."""

    def __init__(self):
        self.tty, self.last = sys.stderr.isatty(), 0.0

    def __call__(self, p: dict):
        now = time.perf_counter()
        if now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        filled = int(24 * min(p["iteration"] / p["total"], 1.0))
        text = (f"[{'#' * filled}{'-' * (24 - filled)}] iter {p['iteration']}/{p['total']}  median return "
                f"{p['median_return']:7.1f}  solved {p['solved']}/{p['num_seeds']}  "
                f"{p['env_steps_per_s'] / 1e6:6.2f}M env-steps/s")
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self):
        if self.tty and self.last:
            print(file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        from jax_reinforce.distributed import join_job

        joined = join_job(args.coordinator, args.num_processes, args.process_id)  # before JAX's backends start
        config = None if args.resume and not typed_config_fields(args) else config_from_args(args)
        if not joined:
            from jax_reinforce.compilation import use_cpu_cores

            use_cpu_cores()  # one CPU device per core: agents train on every core
        from jax_reinforce.run import train_run

        progress = None if args.quiet else Progress()
        result = train_run(config, args.out, resume=args.resume, overwrite=args.overwrite,
                           typed_fields=typed_config_fields(args), checkpoint_every=args.checkpoint_every,
                           chunk_iterations=args.chunk_iterations, eval_episodes=args.eval_episodes,
                           devices=args.devices, compile_cache=args.compile_cache, handle_signals=True,
                           progress=progress, start_time=PROCESS_START)
    except (UsageError, ValueError) as error:
        print_error(error)
        return EXIT_BAD_INPUT
    except OSError as error:  # disk full, run directory removed, ...: one line, not a traceback
        print_error(f"cannot write the run: {error}; every file is written whole, so the last checkpoint "
                    f"{'in ' + args.out + ' ' if args.out else ''}(if any) is intact")
        return EXIT_FAILED
    except Exception as error:  # out of memory: one line, not a traceback
        if not (isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)):
            raise
        print_error(f"out of memory ({str(error).splitlines()[0][:200]}); try a smaller --num-envs, "
                    f"--num-seeds or --hidden; the last checkpoint is kept")
        return EXIT_FAILED
    if progress is not None:
        progress.close()
    if result.status == "interrupted":
        if _is_main_process():
            print(f"{PROG}: {result.message}", file=sys.stderr)
        return EXIT_FOR_SIGNAL[result.signum or 15]
    if result.summary is not None:
        from jax_reinforce.run import report_lines

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
