"""A whole training run in a run directory: what ``scripts/train.py`` does, callable from research code.

    import jax_reinforce as jr
    result = jr.train_run(jr.Config(num_seeds=8), "runs/eight")
    result.summary["seeds_solved"]      # and runs/eight/{config.json, metrics.csv, ...}

:func:`train_run` checks the run directory before any work, trains every seed with
:class:`jax_reinforce.harness.runner.Runner` (seeds dealt over the devices and processes, or each agent's
environments split when there are fewer seeds than devices), and writes each file of the run directory
atomically (``docs/cli.md`` lists them). The checkpoint holds the full training state from iteration 0 on, so
after a crash or ``kill -9`` ``train_run(..., resume=True)`` continues from the last one and ends bitwise where
an uninterrupted run would. An agent whose loss, gradient, optimizer state or parameters go non-finite is frozen
with its last finite state; the others go on, and the run ends ``"diverged"``. Signal handling is the caller's
choice (``handle_signals``, off by default so that a notebook keeps its own Ctrl-C): with it, SIGINT or SIGTERM
saves a checkpoint and returns ``"interrupted"``; a second one, or no chunk ending within 5 s, exits at once.

Bad input raises :class:`RunError` (a ``ValueError``), one line naming what
was wrong and what is allowed, before anything on disk is touched; so do the
processes of a multi-process job that would not run the same job. A job that
loses a process raises :class:`jax_reinforce.harness.devices.JobLostError`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shlex
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from jax_reinforce.app.cli import SignalWatch, exit_with_line
from jax_reinforce.core.config import DEFAULT_ENV, FLAGS, SWEEPABLE, Config, env_spec_of, flag_of, plain_number
from jax_reinforce.core.envs import describe_env
from jax_reinforce.core.policies import resolve_policy
from jax_reinforce.harness.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint_arrays, load_run_flags
from jax_reinforce.harness.checkpoint import load_train_state
from jax_reinforce.harness.checkpoint import save_checkpoint
from jax_reinforce.harness.compilation import code_digest, compiler_options, enable_compile_cache, source_digest
from jax_reinforce.harness.evaluation import check_evaluation_size, evaluate_policies, gymnasium_unavailable_reason
from jax_reinforce.harness.evaluation import load_gymnasium_evaluation, policy_evaluation_program
from jax_reinforce.harness.files import remove_stale_temporaries, write_json
from jax_reinforce.harness.memory import check_training_memory
from jax_reinforce.harness.reporting import BEST_RULE, aggregate_metrics, best_setting, evaluation_table, extra_columns
from jax_reinforce.harness.reporting import load_plotting
from jax_reinforce.harness.reporting import first_solved_iteration, plot_learning_curve, plot_sweep, setting_label, sweep_rows, write_metrics_csv, write_sweep_csv
from jax_reinforce.harness.trackers import check_trackers, check_wandb_login, clear_tracker_files, open_trackers

__all__ = ["RUN_FILES", "RunError", "RunResult", "RunLock", "StopSignals", "prepare_run_dir", "train_run",
           "report_lines"]

RUN_FILES = ("config.json", "run.json", "metrics.csv", "learning_curve.png", "checkpoint.npz", "summary.json")
# What a sweep's run directory holds besides (jax_reinforce.app.sweep).
SWEEP_FILES = ("sweep.csv", "sweep.png")
# run.json: the run's flags besides its Config (device count and layout, evaluation episodes,
# checkpoint interval); a resume restores those its results depend on.
DEFAULT_EVAL_EPISODES = 100
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunError(ValueError):
    """Bad input for a run (a flag, the run directory, a checkpoint): one line, nothing on disk touched."""


class RunResult(NamedTuple):
    """What :func:`train_run` did.

    Attributes:
      status: ``"finished"``, ``"interrupted"`` (a signal; checkpoint saved)
        or ``"diverged"`` (finished, but some agents went non-finite: each was
        frozen with its last finite state while the others went on; every
        file is written, the summary's ``diverged`` lists them).
      run_dir: the run directory.
      config: the config run (on resume, the saved one, ``iterations`` possibly grown).
      summary: the dict written to ``summary.json`` (``None`` unless finished,
        and on processes other than 0).
      message: a one-line explanation for ``"interrupted"`` and ``"diverged"``.
      signum: the signal that stopped the run, or ``None``.
      state, history: the final seed-batched training state and per-seed metrics (NumPy).
    """

    status: str
    run_dir: Path
    config: Config
    summary: dict | None
    message: str
    signum: int | None
    state: Any
    history: dict


def _check_resumable(out: Path, config: Config | None, typed_fields, env_spec=None) -> Config:
    """The config to continue the run in ``out`` with; refuses what cannot be resumed.

    ``typed_fields``: the fields the caller set explicitly (their values must
    agree with the run's); only ``iterations`` may grow. ``None``: the
    fields given to ``config`` (:attr:`Config.given_fields`, ``env`` among them),
    unless ``config`` is ``None``.
    """

    if not out.is_dir():
        raise RunError(f"--resume: --out {str(out)!r} must be an existing run directory; it does not exist")
    if not (out / CHECKPOINT_NAME).is_file():
        raise RunError(
            f"--resume: --out {str(out)!r} holds no run to resume (no {CHECKPOINT_NAME} there; "
            f"a run killed before its first checkpoint starts anew without --resume)"
        )
    _, saved = load_checkpoint_arrays(out, env_spec)  # CheckpointError is a ValueError
    if config is None:
        return saved
    typed = config.given_fields if typed_fields is None else set(typed_fields)
    for field in sorted(typed - {"iterations"}):
        now, then = getattr(config, field), getattr(saved, field)
        if now != then:
            raise RunError(
                f"--resume: {flag_of(field)} {now!r} differs from the run's {then!r}; drop the flag or start a new run"
            )
    iterations = config.iterations if "iterations" in typed else saved.iterations
    if iterations < saved.iterations:
        raise RunError(f"--resume: --iterations must be at least the run's {saved.iterations}; got {iterations}")
    return saved.replace(iterations=iterations)


def _holds_files(out: Path) -> bool:
    """Whether ``out`` holds anything but its lock and temporaries of a killed write (``.<name>.*.tmp``)."""
    stale = {f".{name}." for name in RUN_FILES}
    return any(
        p.name != RunLock.NAME and not (p.name.endswith(".tmp") and any(p.name.startswith(prefix) for prefix in stale))
        for p in out.iterdir()
    )


def _cannot_lock(out: Path, error: OSError) -> RunError:
    return RunError(f"--out {str(out)!r} cannot be locked: {error.strerror or error}")


class RunLock:
    """An exclusive lock on a run directory for as long as a run uses it.

    ``fcntl.flock`` on the directory itself, held open for the run's life, so
    no file can be deleted to take it twice. ``RUN_DIR/.lock`` names the owner
    (process id and host) for the message a second run gets; the owner removes
    it as it ends, and only if it is still the file it wrote. The operating
    system releases the lock when the process ends, however it ends (``kill
    -9`` included), so no stale lock is ever left (after a ``kill -9`` the
    ``.lock`` file stays, harmless). In a multi-process job process 0 holds it.
    A filesystem that cannot lock a directory (NFS, whose ``flock`` needs a
    file open for writing) gets the lock on ``RUN_DIR/.lock`` instead, which
    deleting that file would defeat; it must support ``flock`` (NFS does
    through its lock manager).
    """

    NAME = ".lock"

    def __init__(self):
        self.fd, self.note, self.path = None, None, None

    def acquire(self, out: Path) -> None:
        """Takes the lock of ``out`` (an existing directory) at once, or raises :class:`RunError`."""
        import fcntl
        import socket

        path, note = out / self.NAME, None
        try:
            fd = os.open(out, os.O_RDONLY)
        except OSError as error:
            raise _cannot_lock(out, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._refuse(out)
        except OSError:  # a directory this filesystem cannot lock (NFS): the note file is the lock
            os.close(fd)
            fd = note = self._lock_file(out)
        try:
            note = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if note is None else note
            os.ftruncate(note, 0)
            os.pwrite(note, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError as error:
            for each in {fd, note} - {None}:
                os.close(each)
            raise _cannot_lock(out, error) from None
        self.fd, self.note, self.path = fd, note, path

    def _refuse(self, out: Path):
        time.sleep(0.05)  # the holder may be writing its name
        try:
            holder = (out / self.NAME).read_text(errors="replace").strip()
        except OSError:  # removed by hand: the lock holds all the same
            holder = ""
        raise RunError(f"--out {str(out)!r} is in use by another run ({holder or 'another process'}); wait for it "
                       f"to end or choose another --out") from None

    def _lock_file(self, out: Path) -> int:
        """``flock`` on ``RUN_DIR/.lock`` itself: a descriptor of the file at that path, locked."""
        import fcntl

        path = out / self.NAME
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise _cannot_lock(out, error) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                self._refuse(out)
            try:
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # its holder removed that file as we locked it: lock the current one

    def release(self) -> None:
        """Removes ``RUN_DIR/.lock`` if it is still the file this run wrote, then lets the directory go."""
        if self.fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self.note), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        if self.note != self.fd:
            os.close(self.note)
        os.close(self.fd)  # releases the lock
        self.fd = self.note = None


def prepare_run_dir(config: Config | None, out=None, *, resume: bool = False, overwrite: bool = False,
                    typed_fields=None, writer: bool = True, lock: RunLock | None = None,
                    env_spec=None) -> tuple[Path, Config]:
    """Checks the run directory before any work; returns it and the config to run.

    Changes nothing on disk unless every check passes; then creates the
    directory, or (``overwrite``) clears the old run's files.

    Args:
      config: the run's config; with ``resume``, ``None`` takes the saved one.
      out: the run directory; ``None``: ``runs/<env>-<date>-<time>``.
      resume: continue the run in ``out`` (see :func:`_check_resumable` for
        ``typed_fields``).
      overwrite: replace the run in ``out``.
      writer: whether this process writes the run directory (process 0).
      lock: a :class:`RunLock` the writer takes on ``out`` before checking
        its contents (the caller releases it when the run ends); ``None``
        takes none.

    Raises:
      RunError: naming what is wrong and what is allowed.
    """
    from datetime import datetime

    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other; choose one")
    if out is not None and not isinstance(os.fspath(out) if isinstance(out, os.PathLike) else out, str):
        raise RunError(f"--out must be a directory path, a str or a path; got {type(out).__name__} {out!r}")
    if out is not None and not str(out).strip():
        raise RunError(f"--out must be a directory path; got {str(out)!r}")
    if resume and out is None:
        raise RunError("--resume needs --out RUN_DIR, the run directory to continue")
    if config is None and not resume:
        raise RunError("a new run needs a Config")
    out = Path(out) if out is not None else Path("runs") / f"{config.env}-{datetime.now():%Y%m%d-%H%M%S}"
    if resume:
        if writer and lock is not None and out.is_dir() and (out / "checkpoint.npz").is_file():
            lock.acquire(out)
        config = _check_resumable(out, config, typed_fields, env_spec)  # every process reads the run (shared files)
        if writer:
            remove_stale_temporaries(out, RUN_FILES)
        return out, config
    if not writer:  # processes other than 0 never touch the run directory
        return out, config
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {str(out)!r} must be a directory; it exists and is not one")
    if lock is not None:  # before looking inside: two runs started at once on one --out cannot both pass
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"--out {str(out)!r} cannot be created or written: {error.strerror or error}") from None
        lock.acquire(out)
    if out.is_dir() and _holds_files(out) and not overwrite:
        raise RunError(
            f"--out {str(out)!r} already holds files; pass --resume to continue its run or --overwrite to replace it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunError(f"--out {str(out)!r} cannot be created or written: {error.strerror or error}") from None
    if overwrite:
        for name in (*RUN_FILES, *SWEEP_FILES):
            if (out / name).exists():
                (out / name).unlink()

        clear_tracker_files(out)  # an old run's tracker files never mix into the new one's
    remove_stale_temporaries(out, RUN_FILES)
    return out, config


class StopSignals:
    """Turns SIGINT and SIGTERM into a request to stop at the next safe point, within seconds.

    The first signal is recorded (``stop.signum``): the run stops at its
    next check, after the current chunk, saves a checkpoint and returns. If
    no check comes within ``grace_s`` seconds (a long XLA compilation, a long
    chunk, the final evaluation), the process exits then, with one line and
    exit code 130 or 143. A second signal exits at once. Every file is
    written atomically, so the last checkpoint stays whole either way.

    The signals are watched from a thread
    (:class:`jax_reinforce.app.cli.SignalWatch`), because Python's own handlers
    run only when the main thread is between bytecodes, never during a long C
    call. ``StopSignals(enabled=False)`` installs nothing.

    Args:
      enabled: install the handlers.
      prog: the name in the messages (default: the script's file name).
      grace_s: seconds from the first signal to the forced exit.
    """

    def __init__(self, enabled: bool = True, prog: str | None = None, grace_s: float = 5.0):
        self.enabled, self.grace_s = enabled, grace_s
        self.prog = prog or os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "") or "train_run"
        self.signum = None
        self._watch, self._timer = None, None

    def __bool__(self):
        return self.signum is not None

    def _on_signal(self, signum):  # in the watch's thread
        import threading

        if self.signum is None:
            self.signum = signum
            self._timer = threading.Timer(self.grace_s, self._give_up)
            self._timer.daemon = True
            self._timer.start()
            return
        exit_with_line(f"{self.prog}: second {signal.Signals(signum).name}: exiting now; the last checkpoint is kept",
                       EXIT_FOR_SIGNAL[signum])

    def _give_up(self):

        exit_with_line(f"{self.prog}: {signal.Signals(self.signum).name}: no point to stop at within "
                       f"{self.grace_s:g} s (compiling, evaluating or a long chunk); exiting now; every file is "
                       f"written whole, so the last checkpoint (if any) is kept", EXIT_FOR_SIGNAL[self.signum])

    def __enter__(self):
        if self.enabled:
            self._watch = SignalWatch(self._on_signal).__enter__()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()
        if self._watch is not None:
            self._watch.__exit__(*exc)
            self._watch = None
        return False


def _make_runner(config, env_spec, chunk, devices, metrics_fn=None):
    """The run's :class:`jax_reinforce.harness.runner.Runner` (seeds dealt over the devices, or environments split)."""
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.runner import Runner, default_max_batch

    runner = Runner(config, env_spec, chunk, compiler_options(), devices=devices,
                    max_batch=default_max_batch(config.num_envs, devices), policy=config.attached_policy,
                    metrics_fn=metrics_fn)
    return runner, runner.describe()


def _saved_run_flags(out: Path) -> dict:
    """The run's own flags: those its checkpoint holds, or (a checkpoint of an older version) ``out/run.json``'s."""
    saved, source = load_run_flags(out), f"the checkpoint in {str(out)!r}"  # CheckpointError is a ValueError
    if saved is None:
        source = str(out / "run.json")
        try:
            saved = json.loads((out / "run.json").read_text())
        except FileNotFoundError:
            raise RunError(f"--resume: {str(out)!r} holds a checkpoint of an older version, without the run's own "
                           f"flags, and no run.json, which then holds them (killed between the two writes?): its "
                           f"devices and evaluation size are unknown; start a new run") from None
        except (OSError, ValueError) as error:
            raise RunError(f"--resume: {source} cannot be read ({error}); it is written whole, so it was changed "
                           f"by hand: restore it or start a new run") from None
    if not isinstance(saved, dict):
        raise RunError(f"--resume: {source} must hold a JSON object; got {type(saved).__name__}")
    for name in ("eval_episodes", "checkpoint_every", "env_shards", "devices"):
        least = int(name in ("env_shards", "devices"))
        value = saved.get(name, least)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise RunError(f"--resume: {source}: the run's {name} must be an integer >= {least}; got {value!r}")
    if not isinstance(saved.get("tensorboard", False), bool) or not isinstance(saved.get("wandb"), (dict, type(None))):
        raise RunError(f"--resume: {source}: the run's tensorboard must be true or false and its wandb an object "
                       f"or null; got {saved.get('tensorboard')!r} and {saved.get('wandb')!r}")
    return saved


def _saved_devices(saved: dict) -> int:
    """The device count of a run whose results depend on it, if this machine has it (else :class:`RunError`)."""
    import jax

    count = saved.get("devices")
    if not isinstance(count, int) or count < 1:
        raise RunError(f"--resume: the run's devices must be an integer >= 1; got {count!r}")
    if count > len(jax.devices()):
        raise RunError(f"--resume: this run split each agent's environments over {count} devices, so its results "
                       f"depend on that count, and only {len(jax.devices())} are here; resume it where {count} "
                       f"devices exist (on a CPU: XLA_FLAGS=--xla_force_host_platform_device_count={count})")
    return count


def _count(name: str, value, low: int):
    """``value`` if an integer >= ``low``, or ``None`` (the default, or the run's own) where allowed; else RunError."""
    if (value is None and name != "chunk_iterations") or (
            isinstance(value, int) and not isinstance(value, bool) and value >= low):
        return value
    raise RunError(f"{name} ({flag_of(name)}) must be an integer >= {low}; got {value!r}")


def _same_job(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices, metrics_fn):
    """Refuses, before anything is written, processes of a job that would run different jobs (one line on each).

    What every process must agree on, by flag: the config (and on resume the run's, from ``out``), the run's
    flags, the user's code, ours (:func:`jax_reinforce.harness.devices.check_same_job`); nothing to do in one
    process. Not compared: what only process 0 uses (``--overwrite``, the trackers) and ``out`` itself.
    """
    import jax

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import check_same_job

    if jax.process_count() == 1:
        return
    try:  # on resume, the run every process reads (a process given another --out would train another run)
        run = json.loads((Path(out) / "config.json").read_text()) if resume and out is not None else {}
    except (OSError, ValueError):
        run = {}
    run = run if isinstance(run, dict) else {}
    saved = "the run's" if config is None else None  # a resume without config flags takes the saved config
    values = config.to_dict() if config is not None else {}
    spec, policy = (config.attached_env_spec, config.attached_policy) if config is not None else (None, None)
    sources, python, libraries = source_digest()
    check_same_job({**{flag.flag: values.get(flag.field, saved) for flag in FLAGS},
                   **{f"the run's {flag.flag} (config.json in --out)": run.get(flag.field) for flag in FLAGS},
                   "--resume": resume, "--checkpoint-every": checkpoint_every,
                   "--chunk-iterations": chunk_iterations, "--eval-episodes": eval_episodes,
                   "--devices": [str(d) for d in devices] if isinstance(devices, list) else devices,
                   "the environment object": None if spec is None else (describe_env(spec), code_digest(type(spec.env))),
                   "the network object": None if policy is None else code_digest(*policy[:2]),
                   "metrics_fn": None if metrics_fn is None else code_digest(metrics_fn),
                   "the jax_reinforce sources (digest)": sources, "Python": python, "the libraries": libraries})


def train_run(config: Config | None, out=None, *, resume: bool = False, overwrite: bool = False,
              typed_fields=None, checkpoint_every: int | None = None, chunk_iterations: int = 8,
              eval_episodes: int | None = None,
              devices=None, compile_cache: bool = True, handle_signals: bool = False,
              progress: Callable[[dict], None] | None = None, log: Callable[[str], None] | None = None,
              start_time: float | None = None, tensorboard: bool | None = None,
              wandb: dict | None = None, env_spec=None, policy=None, metrics_fn=None) -> RunResult:
    """Trains ``config.num_agents`` agents in the run directory ``out``, evaluates them, writes the run.

    Python's cyclic garbage collector is off while the run is set up (its programs traced or loaded, its
    state made and saved), then as it was.

    Args:
      config: the run's :class:`jax_reinforce.Config` (``None`` with ``resume``: the saved one).
      out: the run directory (``None``: ``runs/<env>-<date>-<time>``).
      resume: continue the run in ``out`` from its checkpoint; ``typed_fields``
        names the fields of ``config`` the caller set (they must equal the
        run's; ``iterations`` may grow; ``None``: every field).
      overwrite: replace the run in ``out``.
      checkpoint_every: also save the full training state every N iterations
        (0: at the start, on a signal and at the end; ``None``: 0, or on
        resume the run's own).
      chunk_iterations: iterations per jitted call between progress updates
        (the results do not depend on it).
      eval_episodes: greedy evaluation episodes per seed in gymnax and
        gymnasium (0: skip; ``None``: 100, or on resume the run's own).
      devices: a list of devices, a count, ``"all"`` or ``None``
        (:func:`jax_reinforce.harness.devices.select_devices`). On resume,
        ``None`` restores the run's device count where its results depend
        on it (each agent's environments split over devices); elsewhere the
        results are the same on any count.
      compile_cache: keep compiled programs in the user cache directory
        (:func:`jax_reinforce.enable_compile_cache`).
      handle_signals: turn SIGINT/SIGTERM into a saved checkpoint and status
        ``"interrupted"`` (off by default: a notebook keeps its Ctrl-C).
      progress: called after every chunk with ``{"iteration", "total",
        "median_return", "solved", "num_seeds", "env_steps_per_s"}``.
      log: called with one-line messages (devices, resuming, interruption);
        default: stderr.
      start_time: ``time.perf_counter()`` at process start, for the summary's
        import time (default: now).
      tensorboard: write TensorBoard event files in ``out/tensorboard``
        (:mod:`jax_reinforce.harness.trackers`; the ``tensorboard`` extra).
      wandb: log to Weights & Biases: ``{"project", "group", "name", "mode",
        ...}`` (:func:`jax_reinforce.harness.trackers.open_trackers`; the ``wandb``
        extra); files in ``out/wandb``. On resume, ``None`` for either
        continues the trackers the run was started with (its flags in the checkpoint).
      env_spec: the environment, as :func:`jax_reinforce.make_env` gives it (your own object, other
        physics); the config's ``env`` then takes its name. Needed again to resume a run of an environment
        object whose class cannot be imported by path.
      policy: a :class:`jax_reinforce.Policy` (wins over ``config.network``, which records its name); needed
        again to resume a run of a network with no import path.
      metrics_fn: ``metrics_fn(state, traj) -> {name: scalar}`` (:func:`jax_reinforce.make_train`): each a
        ``<name>_median`` column of ``metrics.csv`` and a tracker scalar; needed again to resume such a run.

    Returns:
      A :class:`RunResult`.

    Raises:
      RunError: bad input (a one-line message), before the run directory is touched.
      OSError: the run directory could not be written (every file is written
        whole, so the last checkpoint stays intact).
    """
    start_time = time.perf_counter() if start_time is None else start_time
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    import jax
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import any_process, job_lost_errors, select_devices

    if env_spec is not None and config is not None:
        if config.env not in (env_spec.name, DEFAULT_ENV):  # the config's own choice, other than the spec's
            raise RunError(f"env_spec is {env_spec.name!r} but the config's env is {config.env!r}; give one of them")
        config = config.replace(env=env_spec)
    if policy is not None and config is not None:
        config = config.replace(network=policy)
    chunk_iterations, checkpoint_every, eval_episodes = (_count(name, plain_number(value), low) for name, value, low in (
        ("chunk_iterations", chunk_iterations, 1), ("checkpoint_every", checkpoint_every, 0),
        ("eval_episodes", eval_episodes, 0)))
    if tensorboard or wandb is not None:  # a missing extra: one line, before the run directory is touched
        check_trackers(tensorboard=bool(tensorboard), wandb=wandb is not None)
    main_process = jax.process_index() == 0
    problem = None
    lock = RunLock()  # held by process 0 from before the run directory is checked until the run ends
    try:
        _same_job(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices, metrics_fn)
        # An explicit count is checked before the run directory is touched; the default depends on
        # the seeds, which a resume reads from the run.
        if devices is not None and not isinstance(devices, list):
            select_devices(devices, config.num_agents if config is not None else None)
        if config is not None:  # training, and the final evaluation, must fit: refused before any work
            check_training_memory(config)
            if eval_episodes:
                check_evaluation_size(config, eval_episodes, "--eval-episodes")
        if main_process and not resume:  # an online W&B run that cannot start: before the run directory is touched
            check_wandb_login(wandb, log=log)
        out, config = prepare_run_dir(config, out, resume=resume, overwrite=overwrite, typed_fields=typed_fields,
                                      writer=main_process, lock=lock, env_spec=env_spec)
        saved = _saved_run_flags(Path(out)) if resume else {}
        eval_episodes = saved.get("eval_episodes", DEFAULT_EVAL_EPISODES) if eval_episodes is None else eval_episodes
        checkpoint_every = saved.get("checkpoint_every", 0) if checkpoint_every is None else checkpoint_every
        if resume:  # the saved config's seeds
            check_training_memory(config)
            if eval_episodes:
                check_evaluation_size(config, eval_episodes, "--eval-episodes")
        if devices is None and saved.get("env_shards", 1) > 1:
            devices = _saved_devices(saved)
        tensorboard, wandb = _run_trackers(tensorboard, wandb, saved, resume, main_process, log)
        devices = devices if isinstance(devices, list) else select_devices(devices, config.num_agents)
    except ValueError as error:
        problem = error
    try:
        if any_process(problem is not None):  # in a job, every process stops if one cannot start
            raise RunError(str(problem or "another process of the job could not start; see its error"))
        with StopSignals(handle_signals) as stop, job_lost_errors():  # in a job, a peer gone: one line saying so
            return _train(config, Path(out), resume, checkpoint_every, chunk_iterations, eval_episodes, devices,
                          compile_cache, stop, progress, log, start_time, bool(tensorboard), wandb, metrics_fn)
    finally:
        lock.release()


def _run_trackers(tensorboard, wandb, saved: dict, resume: bool, main_process: bool, log) -> tuple:
    """``(tensorboard, wandb)``: those asked for, else on resume the run's own (``run.json``), checked (process 0
    checks an online W&B run's login; a new run's was checked before its directory was touched)."""
    if tensorboard is None:
        tensorboard = bool(saved.get("tensorboard", False))
    if wandb is None:
        wandb = saved.get("wandb")
    if resume and (tensorboard or wandb is not None):
        check_trackers(tensorboard=bool(tensorboard), wandb=wandb is not None)
        if main_process:
            check_wandb_login(wandb, log=log)
    return tensorboard, wandb


class _RunWriter:
    """What a run writes while it trains: the checkpoint, ``metrics.csv``, the trackers (process 0 only).

    Holds the run's runner, so each call writes the state it has reached; :meth:`interrupted` saves and
    returns the ``"interrupted"`` result with the resume command.
    """

    def __init__(self, config, out: Path, runner, stop, main_process: bool, run_flags: dict):
        self.config, self.out, self.runner, self.stop, self.main_process = config, out, runner, stop, main_process
        self.run_flags, self.trackers, self.logged = run_flags, None, 0

    def result(self, status, message="", summary=None) -> RunResult:
        return RunResult(status, self.out, self.config, summary, message, self.stop.signum, self.runner.state,
                         self.runner.history)

    def setting_rows(self) -> list[dict]:
        """Per iteration, aggregated over each setting's seeds (one block of rows per setting)."""
        config, runner = self.config, self.runner
        solved_at, failed_at = np.asarray(runner.state.solved_at), np.asarray(runner.state.failed_at)
        scores = runner.solve_scores()
        rows = []
        for g in range(config.num_settings):
            seeds = slice(g * config.num_seeds, (g + 1) * config.num_seeds)
            history = {name: values[seeds] for name, values in runner.history.items()}
            rows += [{"setting": g, **row} for row in
                     aggregate_metrics(history, solved_at[seeds], scores[seeds], failed_at[seeds])]
        return rows

    def write_rows(self) -> None:
        """metrics.csv, and the trackers' new steps (process 0)."""
        if self.main_process:
            rows = self.setting_rows()
            write_metrics_csv(self.out / "metrics.csv", rows)
            self.log_trackers(rows)

    def open_trackers(self, resume: bool, tensorboard: bool, wandb, log) -> None:
        """Opens the trackers asked for (process 0) and sends them the restored history on resume."""
        if not self.main_process or not (tensorboard or wandb is not None):
            return
        config = self.config
        labels = [setting_label(config, s) for s in config.settings()] if config.num_settings > 1 else None
        self.trackers = open_trackers(self.out, tensorboard=tensorboard, wandb=wandb, config_dict=config.to_dict(),
                                      resume=resume, settings=labels)
        for line in self.trackers.describe():
            log(line)
        self.log_trackers(self.setting_rows())  # what the trackers already hold is skipped

    def log_trackers(self, rows, env_steps_per_s=None) -> None:
        """The iterations the trackers do not hold yet (they skip any they do); cumulative env steps per setting."""
        if not self.trackers:
            return
        totals = {}
        for r in rows:
            totals[r["setting"]] = totals.get(r["setting"], 0) + r["env_steps"]
            if r["iteration"] >= self.logged:
                scalars = {k: r[k] for k in ("return_median", "return_q25", "return_q75", "seeds_solved",
                                             "seeds_diverged", "loss_median", "grad_norm_median", "entropy_median",
                                             *extra_columns([r]))}
                self.trackers.log(r["iteration"], {**scalars, "env_steps": totals[r["setting"]]},
                                  setting=r["setting"] if self.config.num_settings > 1 else None)
        if env_steps_per_s is not None and self.runner.iterations_run:
            self.trackers.log(self.runner.iterations_run - 1, {"env_steps_per_s": env_steps_per_s})
        self.trackers.flush()
        self.logged = self.runner.iterations_run

    def save(self) -> None:
        """The checkpoint, with the config and the run's own flags (one rename commits all a resume reads), then
        metrics.csv, which a resume rebuilds from the checkpoint's history."""
        if self.main_process:
            runner = self.runner
            save_checkpoint(self.out, runner.state.params, self.config, runner.state, runner.history_with_seconds(),
                            self.run_flags)
            self.write_rows()

    def interrupted(self) -> RunResult:
        self.save()
        signum = self.stop.signum or signal.SIGTERM  # another process of the job got the signal
        if self.trackers:
            self.trackers.close(exit_code=EXIT_FOR_SIGNAL.get(signum, 1))
        message = (f"stopped by {signal.Signals(signum).name} at iteration {self.runner.iterations_run}; "
                   f"checkpoint saved; resume with: {resume_command(self.out, self.run_flags)}")
        return self.result("interrupted", message)


def resume_command(out, run_flags: dict) -> str:
    """The shell command that resumes the run in ``out``, quoted: the run's other flags come from its checkpoint,
    and the checkpoint interval and a device count its results depend on are spelled out."""
    words = ["python", "scripts/train.py", "--resume", "--out", str(out)]
    if run_flags.get("checkpoint_every"):
        words += ["--checkpoint-every", str(run_flags["checkpoint_every"])]
    if run_flags.get("env_shards", 1) > 1:
        words += ["--devices", str(run_flags["devices"])]
    return " ".join(shlex.quote(word) for word in words)


def _start(writer: _RunWriter, resume: bool, log) -> None:
    """Restores the checkpoint (resume), then saves it, then writes ``config.json`` and ``run.json``.

    The save commits the run's config (its iterations may have grown) and its own flags with the state, at
    once: a crash at any later moment resumes the run as it now is; the two JSON files are copies to read.
    """
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import any_process

    runner, out = writer.runner, writer.out
    if resume:
        problem = None
        try:
            loaded, history, _ = load_train_state(out, runner.state, writer.config.attached_env_spec,
                                                  runner.metric_dtypes, writer.config.attached_policy)
        except CheckpointError as error:
            problem = error
        if any_process(problem is not None):
            raise RunError("--resume: " + str(problem or "another process could not read the checkpoint (--out "
                                                        "must be on a filesystem every process reads)"))
        runner.restore(loaded, history)
        if writer.main_process:
            log(f"resuming {out} at iteration {runner.iterations_run}")
    writer.save()  # a new run's iteration 0: from now on there is always a checkpoint to resume from
    if writer.main_process:
        write_json(out / "config.json", writer.config.to_dict())
        write_json(out / "run.json", writer.run_flags)


def _progress_report(config, runner, metrics, seconds: float) -> dict:
    """What ``train_run``'s ``progress`` callback receives after a chunk."""
    last = runner.history["episode_return"][:, -1] if runner.iterations_run else np.array([np.nan])
    solved = np.asarray(runner.state.solved_at) >= 0
    return {"iteration": runner.iterations_run, "total": config.iterations,
            "median_return": float(np.nanmedian(last)) if np.isfinite(last).any() else float("nan"),
            "solved": int(np.sum(solved)), "num_seeds": config.num_agents,
            "settings_solved": int(np.sum(solved.reshape(config.num_settings, config.num_seeds).all(axis=1))),
            "num_settings": config.num_settings,
            "env_steps_per_s": int(metrics["env_steps"].sum()) / max(seconds, 1e-9)}


def _train_chunks(writer: _RunWriter, checkpoint_every: int, progress) -> tuple[bool, float]:
    """Runs chunks until every agent is done or a signal stops the job: ``(interrupted, training seconds)``."""
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import any_process

    runner, seconds = writer.runner, 0.0
    last_saved_block = runner.iterations_run // max(checkpoint_every, 1)
    while True:
        if any_process(bool(writer.stop)):  # a signal to any process stops them all, at the same chunk
            return True, seconds
        if not runner.running().any():
            return False, seconds
        t = time.perf_counter()
        metrics = runner.run_chunk()
        dt = time.perf_counter() - t
        seconds += dt
        if writer.trackers:
            writer.log_trackers(writer.setting_rows(), int(metrics["env_steps"].sum()) / max(dt, 1e-9))
        if progress is not None and writer.main_process:
            progress(_progress_report(writer.config, runner, metrics, dt))
        if checkpoint_every and runner.iterations_run // checkpoint_every != last_saved_block:
            writer.save()
            last_saved_block = runner.iterations_run // checkpoint_every


def _write_results(writer: _RunWriter, threshold) -> tuple[list[dict], list[dict] | None]:
    """The final checkpoint, ``metrics.csv``, the learning curve and a sweep's table and plot.

    Returns:
      The curve's rows (every agent) and the sweep's per-setting rows (``None`` for one setting).
    """
    config, runner, out = writer.config, writer.runner, writer.out
    state, history = runner.state, runner.history
    writer.save()
    if writer.trackers:
        writer.trackers.close()
    # Every agent of every setting; with the wall-clock seconds for the curve's third panel.
    rows = aggregate_metrics(runner.history_with_seconds(), np.asarray(state.solved_at), runner.solve_scores(),
                             np.asarray(state.failed_at))
    what = f"{config.num_seeds} seeds" + (f" x {config.num_settings} settings" if config.num_settings > 1 else "")
    plot_learning_curve(out / "learning_curve.png", rows, threshold, f"REINFORCE on {config.env}, {what}")
    if config.num_settings == 1:
        return rows, None
    settings = sweep_rows(config, state, history, runner.solve_scores())
    write_sweep_csv(out / "sweep.csv", settings)
    plot_sweep(out / "sweep.png", config, history, threshold, f"REINFORCE on {config.env}: median return per setting",
               np.asarray(state.solved_at), runner.solve_scores())
    return rows, settings


def _summary(config, runner, rows, settings, threshold, evaluation: dict, eval_episodes: int, seconds: dict,
             devices) -> dict:
    """``summary.json``: seeds solved and how, steps, times, the evaluation, the diverged agents, a sweep's best."""
    import jax

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import confirmation_episodes

    state, history = runner.state, runner.history
    solved_at, failed = np.asarray(state.solved_at), np.asarray(state.failed_at)
    steps_total = int(history["env_steps"].sum())
    all_solved = first_solved_iteration(rows, config.num_agents)
    confirming = threshold is not None and config.stop_when_solved
    summary = {
        "env": config.env,
        "num_seeds": config.num_seeds,
        "num_settings": config.num_settings,
        "num_agents": config.num_agents,
        "seeds_solved": int(np.sum(solved_at >= 0)),
        "solve_threshold": threshold,
        # Solved means confirmed: the training episodes met the threshold, then the greedy policy did
        # on jax_reinforce.core.training.confirmation_episodes fresh episodes (steps counted apart).
        "seeds_met_training_criterion": int(np.sum(np.asarray(state.confirm_attempts) > 0)),
        "confirmation_episodes": confirmation_episodes(config.num_envs) if confirming else 0,
        "confirmation_tests": int(np.sum(state.confirm_attempts)),
        "confirmation_tests_failed": int(np.sum(state.confirm_attempts) - np.sum(solved_at >= 0)),
        "confirmation_env_steps": int(np.sum(np.asarray(state.confirm_steps, np.int64))),
        "solved_at_iteration": solved_at.tolist(),
        "iterations_run": int(history["env_steps"].shape[1]),
        "all_solved_at_iteration": all_solved,
        "env_steps": steps_total,
        "env_steps_to_all_solved": (None if all_solved is None
                                    else int(history["env_steps"].sum(axis=0)[: all_solved + 1].sum())),
        "env_steps_per_second_train": steps_total / max(seconds["train"], 1e-9),
        "seconds": seconds,
        "evaluation_episodes": eval_episodes,
        "evaluation": evaluation,
        "devices": [str(d) for d in devices],
        "processes": jax.process_count(),
    }
    if threshold is not None and evaluation:
        for name in ("gymnax_mean", "gymnasium_mean"):
            if name in evaluation:
                at = int(np.sum(np.asarray(evaluation[name]) >= threshold))
                summary[f"seeds_at_threshold_{name.split('_')[0]}"] = at
    summary["diverged"] = {str(i): int(failed[i]) for i in np.flatnonzero(failed >= 0)}
    if settings is not None:
        best = best_setting(settings)
        summary["settings"] = settings
        summary["best_setting"] = {"setting": best, "rule": BEST_RULE, **settings[best]}
    return summary


def _prepare(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices, compile_cache,
             stop, log, start_time, tensorboard, wandb, metrics_fn):
    """The run's programs compiled and its state made or restored and saved: ``(writer, env_spec, policy,
    evaluation program (a future) or None, seconds)``, or the ``RunResult`` of a run stopped meanwhile."""
    import jax

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import any_process

    if compile_cache:
        enable_compile_cache(warn=log)
    env_spec = env_spec_of(config)
    seconds = {"import": time.perf_counter() - start_time}
    t0 = time.perf_counter()
    # A chunk never crosses a checkpoint, so checkpoint_every N saves every N iterations.
    chunk = min(chunk_iterations, checkpoint_every or chunk_iterations, config.iterations)
    runner, layout = _make_runner(config, env_spec, chunk, devices, metrics_fn)
    policy = resolve_policy(config.attached_policy or config.network, config.hidden)
    # The chunk program is the longest to compile. Lowering holds the GIL and XLA's compilation does not: a fresh
    # run lowers the chunk first (shapes from the lowered initialisation) and compiles it in a thread, while the
    # evaluation is lowered and compiled in another and the initialisation here.
    shapes = runner.state_shapes()
    pool = ThreadPoolExecutor(2)
    chunk_program = None if resume else pool.submit(runner.compile, None, runner.lower())
    evaluation_program = pool.submit(
        policy_evaluation_program, shapes.params, env_spec, eval_episodes, config.num_seeds, policy
    ) if eval_episodes and jax.process_index() == 0 else None
    pool.shutdown(wait=False)
    runner.init()  # agent i from fold_in(PRNGKey(config.seed), i), made inside the program
    # Process 0 writes the run directory; every process trains its share.
    writer = _RunWriter(config, out, runner, stop, main_process=jax.process_index() == 0,
                        run_flags={"devices": len(devices), "env_shards": runner.env_shards,
                                   "eval_episodes": eval_episodes, "checkpoint_every": checkpoint_every,
                                   "tensorboard": tensorboard, "wandb": wandb})
    _start(writer, resume, log)
    writer.open_trackers(resume, tensorboard, wandb, log)
    job = f"process {jax.process_index()} of {jax.process_count()}: " if jax.process_count() > 1 else ""
    log(f"{job}devices: {', '.join(str(d) for d in devices)} ({layout})")
    if any_process(bool(stop)):
        return writer.interrupted()
    if chunk_program is not None:
        if writer.main_process and not chunk_program.done():  # idle here, while XLA loads or compiles the chunk
            _load_what_the_results_need(env_spec, eval_episodes, policy)
        chunk_program.result()
    runner.compile()  # a resumed run's size (fewer agents may still train)
    seconds["compile"] = time.perf_counter() - t0
    return writer, env_spec, policy, evaluation_program, seconds


def _load_what_the_results_need(env_spec, eval_episodes: int, policy) -> None:
    """Imports what the end of a run draws and evaluates with, ahead of it: Pillow, and gymnasium's twin."""
    load_plotting()
    if eval_episodes and gymnasium_unavailable_reason(env_spec, policy) is None:
        load_gymnasium_evaluation(env_spec.name)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off within, then as it was.

    Setting a run up (tracing or loading its programs, JAX's caches) makes long-lived objects and next to no
    cyclic garbage, and a full collection meanwhile scans them all (a warm one-seed ``train.py`` ran two,
    22 and 45-52 ms; a cold one three, 146 ms: ``docs/performance.md``, round 13).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _train(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices, compile_cache,
           stop, progress, log, start_time, tensorboard, wandb, metrics_fn=None) -> RunResult:
    """The run's phases: compile, start or restore, train in chunks, write the results, evaluate, summarise."""
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import any_process

    with _collector_paused():
        prepared = _prepare(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices,
                            compile_cache, stop, log, start_time, tensorboard, wandb, metrics_fn)
    if isinstance(prepared, RunResult):
        return prepared
    writer, env_spec, policy, evaluation_program, seconds = prepared
    runner = writer.runner
    interrupted, seconds["train"] = _train_chunks(writer, checkpoint_every, progress)
    if interrupted:
        return writer.interrupted()
    stopped = any_process(bool(stop))
    if not writer.main_process:  # process 0 writes, evaluates and reports
        diverged = (np.asarray(runner.state.failed_at) >= 0).any()
        return writer.interrupted() if stopped else writer.result("diverged" if diverged else "finished")
    rows, settings = _write_results(writer, env_spec.solve_threshold)
    if stopped:  # training is complete and saved; a resume only evaluates
        return writer.interrupted()

    t_eval = time.perf_counter()
    evaluation = {}
    if eval_episodes:
        results = evaluate_policies(runner.state.params, env_spec, eval_episodes, config.seed, config.num_seeds,
                                    policy, log, program=evaluation_program.result())
        evaluation = {f"{name}_mean": returns.mean(axis=1).tolist() for name, returns in results.items()}
    seconds["eval"] = time.perf_counter() - t_eval
    seconds["total"] = time.perf_counter() - start_time
    summary = _summary(config, runner, rows, settings, env_spec.solve_threshold, evaluation, eval_episodes,
                       seconds, devices)
    write_json(out / "summary.json", summary)
    if summary["diverged"]:
        where = ", ".join(f"{agent_name(int(i), config.num_seeds, config.num_settings)} at iteration {at}"
                          for i, at in summary["diverged"].items())
        return writer.result("diverged", f"{len(summary['diverged'])} of {config.num_agents} agents diverged "
                                         f"(non-finite loss, gradient, optimizer state or parameters): {where}; each "
                                         f"was frozen with its last finite parameters; try a smaller --lr or a "
                                         f"--max-grad-norm", summary=summary)
    return writer.result("finished", summary=summary)


def agent_name(agent: int, num_seeds: int, num_settings: int = 1) -> str:
    """``"seed 3"``, or in a sweep ``"setting 1 seed 3"`` (agent ``a``: seed ``a % num_seeds`` of setting ``a // num_seeds``)."""
    if num_settings == 1:
        return f"seed {agent}"
    return f"setting {agent // num_seeds} seed {agent % num_seeds}"


def report_lines(summary: dict, run_dir) -> list[str]:
    """The short report of a finished run (what ``scripts/train.py`` prints); a sweep's settings as a table."""

    s = summary["seconds"]
    num_seeds, settings = summary["num_seeds"], summary.get("num_settings", 1)
    agents = summary.get("num_agents", num_seeds)

    lines = [
        f"{summary['env']}: {summary['seeds_solved']}/{agents} "
        f"{'seeds' if settings == 1 else f'agents ({settings} settings x {num_seeds} seeds)'} solved in training "
        + (f"(threshold {summary['solve_threshold']})" if summary["solve_threshold"] is not None
           else "(no solve threshold: every agent trains all its iterations)")
        + f", {summary['iterations_run']} iterations, "
        f"{summary['env_steps']:,} env steps",
        *([f"solved means confirmed: {summary.get('seeds_met_training_criterion', 0)}/{agents} met the threshold "
           f"with their training episodes; their greedy policies were then tested on "
           f"{summary['confirmation_episodes']} fresh episodes each ({summary['confirmation_tests']} tests, "
           f"{summary['confirmation_tests_failed']} failed and trained on; "
           f"{summary['confirmation_env_steps']:,} env steps, not counted above)"]
          if summary.get("confirmation_episodes") else []),
        *(["diverged (frozen with their last finite parameters): "
           + ", ".join(f"{agent_name(int(i), num_seeds, settings)} at iteration {at}" for i, at in summary["diverged"].items())]
          if summary.get("diverged") else []),
        f"time: import {s['import']:.2f}s  compile {s['compile']:.2f}s  train {s['train']:.2f}s  "
        f"eval {s['eval']:.2f}s  total {s['total']:.2f}s  ({summary['env_steps_per_second_train'] / 1e6:.2f}M env-steps/s)",
    ]
    if settings > 1:
        lines.append("setting  " + "  ".join(f"{flag_of(k):>15}" for k in SWEEPABLE)
                     + "  solved  diverged  median env steps to solve")
        for row in summary["settings"]:
            steps = row["env_steps_to_solve_median"]
            lines.append(f"{row['setting']:>7}  " + "  ".join(f"{str(row[k]):>15}" for k in SWEEPABLE)
                         + f"  {row['seeds_solved']:>3}/{row['seeds']:<3}  {row['seeds_diverged']:>8}  "
                         + ("-" if steps is None else f"{steps:,.0f}"))
        best = summary["best_setting"]
        lines.append(f"best: setting {best['setting']} ({best['rule']})")
    ev = summary["evaluation"]
    if ev:
        lines.append(f"greedy evaluation, {summary['evaluation_episodes']} episodes per "
                     f"{'seed' if settings == 1 else 'agent'} (mean return):")
        means = {name[: -len("_mean")]: values for name, values in ev.items()}
        lines.extend(evaluation_table(means, summary["solve_threshold"]))
    lines.append(f"run directory: {run_dir}")
    return lines
