"""A whole training run in a run directory: what ``scripts/train.py`` does, callable from research code.

    import jax_reinforce as jr
    result = jr.train_run(jr.Config(num_seeds=8), "runs/eight")
    result.summary["seeds_solved"]      # and runs/eight/{config.json, metrics.csv, ...}

:func:`train_run` checks the run directory before any work, trains every
seed with :class:`jax_reinforce.runner.Runner` (the seeds dealt over the
devices and processes; each agent's environments split over devices when
there are fewer seeds than devices), and writes, each file atomically:

- ``config.json``: the :class:`jax_reinforce.Config` of the run;
- ``metrics.csv``: one row per iteration, aggregated over seeds;
- ``learning_curve.png``: the median return and its inter-quartile band;
- ``checkpoint.npz``: every seed's params and the full training state (no pickle);
- ``summary.json``: seeds solved, times, the greedy evaluation.

The checkpoint holds the full training state from iteration 0 on (and every
``checkpoint_every`` iterations), so after a crash or ``kill -9`` at any
moment ``train_run(..., resume=True)`` continues from the last one and ends
bitwise where an uninterrupted run would. An agent whose loss, gradient,
optimizer state or parameters go non-finite is frozen with its last finite
state and reported; the others go on, and the run ends with status
``"diverged"`` (the command line exits 3). Signal handling is the caller's choice
(``handle_signals``, off by default so that a notebook keeps its own Ctrl-C):
with it, SIGINT or SIGTERM saves a checkpoint and returns status
``"interrupted"``; a second one exits at once; with no chunk ending within 5 s
(a long compilation, the final evaluation) it exits then, with one line.

Bad input raises :class:`RunError` (a ``ValueError``), one line naming what
was wrong and what is allowed, before anything on disk is touched.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from jax_reinforce.config import Config, flag_of

__all__ = ["RUN_FILES", "RunError", "RunResult", "RunLock", "StopSignals", "prepare_run_dir", "train_run",
           "report_lines"]

RUN_FILES = ("config.json", "run.json", "metrics.csv", "learning_curve.png", "checkpoint.npz", "summary.json")
# What a sweep's run directory holds besides (jax_reinforce.sweep).
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


def _check_resumable(out: Path, config: Config | None, typed_fields) -> Config:
    """The config to continue the run in ``out`` with; refuses what cannot be resumed.

    ``typed_fields``: the fields the caller set explicitly (their values must
    agree with the run's); only ``iterations`` may grow. ``None``: the
    fields given to ``config`` (:attr:`Config.given_fields`, ``env`` among them),
    unless ``config`` is ``None``.
    """
    from jax_reinforce.checkpoint import CHECKPOINT_NAME, load_checkpoint_arrays

    if not out.is_dir():
        raise RunError(f"--resume: --out {str(out)!r} must be an existing run directory; it does not exist")
    if not (out / CHECKPOINT_NAME).is_file():
        raise RunError(
            f"--resume: --out {str(out)!r} holds no run to resume (no {CHECKPOINT_NAME} there; "
            f"a run killed before its first checkpoint starts anew without --resume)"
        )
    _, saved = load_checkpoint_arrays(out)  # CheckpointError is a ValueError
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


class RunLock:
    """An exclusive lock on a run directory for as long as a run uses it.

    ``fcntl.flock`` on ``RUN_DIR/.lock``, which holds the owner's process id
    and host. The operating system releases the lock when the process ends,
    however it ends (``kill -9`` included), so no stale lock is ever left
    (after a ``kill -9`` the unlocked file stays, harmless; a run that ends
    removes it). In a multi-process job process 0 holds
    it; on a shared filesystem, that filesystem must support ``flock``
    (local disks do; NFS does through its lock manager).
    """

    NAME = ".lock"

    def __init__(self):
        self.fd, self.path = None, None

    def acquire(self, out: Path) -> None:
        """Takes the lock of ``out`` (an existing directory) at once, or raises :class:`RunError`."""
        import fcntl
        import socket

        path = out / self.NAME
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise RunError(f"--out {str(out)!r} cannot be locked: {error.strerror or error}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                time.sleep(0.05)  # the holder may be writing its name
                holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunError(f"--out {str(out)!r} is in use by another run ({holder}); wait for it to end or "
                               f"choose another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed that file as we locked it: lock the current one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.fd, self.path = fd, path

    def release(self) -> None:
        """Removes the lock file and lets the directory go (closing the file releases the lock)."""
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def prepare_run_dir(config: Config | None, out=None, *, resume: bool = False, overwrite: bool = False,
                    typed_fields=None, writer: bool = True, lock: RunLock | None = None) -> tuple[Path, Config]:
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

    from jax_reinforce.checkpoint import remove_stale_temporaries

    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other; choose one")
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
        config = _check_resumable(out, config, typed_fields)  # every process reads the run (a shared filesystem)
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
        from jax_reinforce.trackers import clear_tracker_files

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
    (:class:`jax_reinforce.cli.SignalWatch`), because Python's own handlers
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

        from jax_reinforce.cli import exit_with_line

        if self.signum is None:
            self.signum = signum
            self._timer = threading.Timer(self.grace_s, self._give_up)
            self._timer.daemon = True
            self._timer.start()
            return
        exit_with_line(f"{self.prog}: second {signal.Signals(signum).name}: exiting now; the last checkpoint is kept",
                       EXIT_FOR_SIGNAL[signum])

    def _give_up(self):
        from jax_reinforce.cli import exit_with_line

        exit_with_line(f"{self.prog}: {signal.Signals(self.signum).name}: no point to stop at within "
                       f"{self.grace_s:g} s (compiling, evaluating or a long chunk); exiting now; every file is "
                       f"written whole, so the last checkpoint (if any) is kept", EXIT_FOR_SIGNAL[self.signum])

    def __enter__(self):
        if self.enabled:
            from jax_reinforce.cli import SignalWatch

            self._watch = SignalWatch(self._on_signal).__enter__()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()
        if self._watch is not None:
            self._watch.__exit__(*exc)
            self._watch = None
        return False


def _make_runner(config, env_spec, chunk, devices):
    """The run's :class:`jax_reinforce.runner.Runner` (seeds dealt over the devices, or environments split)."""
    from jax_reinforce.compilation import compiler_options
    from jax_reinforce.runner import Runner, default_max_batch

    runner = Runner(config, env_spec, chunk, compiler_options(), devices=devices,
                    max_batch=default_max_batch(config.num_envs, devices))
    return runner, runner.describe()


def _saved_run_flags(out: Path) -> dict:
    """The run flags saved in ``out/run.json`` (``{}`` for a run of an older version)."""
    import json

    try:
        saved = json.loads((out / "run.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise RunError(f"--resume: {out / 'run.json'} cannot be read ({error}); it is written whole, so it was "
                       f"changed by hand: restore it or start a new run") from None
    if not isinstance(saved, dict):
        raise RunError(f"--resume: {out / 'run.json'} must hold a JSON object; got {type(saved).__name__}")
    return saved


def _saved_devices(saved: dict) -> int:
    """The device count of a run whose results depend on it, if this machine has it (else :class:`RunError`)."""
    import jax

    count = saved.get("devices")
    if not isinstance(count, int) or count < 1:
        raise RunError(f"--resume: run.json's devices must be an integer >= 1; got {count!r}")
    if count > len(jax.devices()):
        raise RunError(f"--resume: this run split each agent's environments over {count} devices, so its results "
                       f"depend on that count, and only {len(jax.devices())} are here; resume it where {count} "
                       f"devices exist (on a CPU: XLA_FLAGS=--xla_force_host_platform_device_count={count})")
    return count


def train_run(config: Config | None, out=None, *, resume: bool = False, overwrite: bool = False,
              typed_fields=None, checkpoint_every: int = 0, chunk_iterations: int = 8, eval_episodes: int | None = None,
              devices=None, compile_cache: bool = True, handle_signals: bool = False,
              progress: Callable[[dict], None] | None = None, log: Callable[[str], None] | None = None,
              start_time: float | None = None, tensorboard: bool | None = None,
              wandb: dict | None = None) -> RunResult:
    """Trains ``config.num_agents`` agents in the run directory ``out``, evaluates them, writes the run.

    Args:
      config: the run's :class:`jax_reinforce.Config` (``None`` with ``resume``: the saved one).
      out: the run directory (``None``: ``runs/<env>-<date>-<time>``).
      resume: continue the run in ``out`` from its checkpoint; ``typed_fields``
        names the fields of ``config`` the caller set (they must equal the
        run's; ``iterations`` may grow; ``None``: every field).
      overwrite: replace the run in ``out``.
      checkpoint_every: also save the full training state every N iterations
        (0: at the start, on a signal and at the end).
      chunk_iterations: iterations per jitted call between progress updates
        (the results do not depend on it).
      eval_episodes: greedy evaluation episodes per seed in gymnax and
        gymnasium (0: skip; ``None``: 100, or on resume the run's own).
      devices: a list of devices, a count, ``"all"`` or ``None``
        (:func:`jax_reinforce.distributed.select_devices`). On resume,
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
        (:mod:`jax_reinforce.trackers`; the ``tensorboard`` extra).
      wandb: log to Weights & Biases: ``{"project", "group", "name", "mode",
        ...}`` (:func:`jax_reinforce.trackers.open_trackers`; the ``wandb``
        extra); files in ``out/wandb``. On resume, ``None`` for either
        continues the trackers the run was started with (``run.json``).

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

    from jax_reinforce.config import check_training_memory
    from jax_reinforce.distributed import any_process, select_devices
    from jax_reinforce.evaluation import check_evaluation_size

    if not isinstance(chunk_iterations, int) or isinstance(chunk_iterations, bool) or chunk_iterations < 1:
        raise RunError(f"chunk_iterations (--chunk-iterations) must be an integer >= 1; got {chunk_iterations!r}")
    if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 0:
        raise RunError(f"checkpoint_every (--checkpoint-every) must be an integer >= 0; got {checkpoint_every!r}")
    if eval_episodes is not None and (not isinstance(eval_episodes, int) or isinstance(eval_episodes, bool)
                                      or eval_episodes < 0):
        raise RunError(f"eval_episodes (--eval-episodes) must be an integer >= 0; got {eval_episodes!r}")
    if tensorboard or wandb is not None:  # a missing extra: one line, before the run directory is touched
        from jax_reinforce.trackers import check_trackers

        check_trackers(tensorboard=bool(tensorboard), wandb=wandb is not None)
    main_process = jax.process_index() == 0
    problem = None
    lock = RunLock()  # held by process 0 from before the run directory is checked until the run ends
    try:
        # An explicit count is checked before the run directory is touched; the default depends on
        # the seeds, which a resume reads from the run.
        if devices is not None and not isinstance(devices, list):
            select_devices(devices, config.num_agents if config is not None else None)
        if config is not None:  # training, and the final evaluation, must fit: refused before any work
            check_training_memory(config)
            if eval_episodes:
                check_evaluation_size(config, eval_episodes, "--eval-episodes")
        out, config = prepare_run_dir(config, out, resume=resume, overwrite=overwrite, typed_fields=typed_fields,
                                      writer=main_process, lock=lock)
        saved = _saved_run_flags(Path(out)) if resume else {}
        if eval_episodes is None:
            eval_episodes = int(saved.get("eval_episodes", DEFAULT_EVAL_EPISODES))
        if resume:  # the saved config's seeds
            check_training_memory(config)
            if eval_episodes:
                check_evaluation_size(config, eval_episodes, "--eval-episodes")
        if devices is None and int(saved.get("env_shards", 1)) > 1:
            devices = _saved_devices(saved)
        if tensorboard is None:
            tensorboard = bool(saved.get("tensorboard", False))
        if wandb is None:
            wandb = saved.get("wandb")
        if resume and (tensorboard or wandb is not None):
            from jax_reinforce.trackers import check_trackers

            check_trackers(tensorboard=bool(tensorboard), wandb=wandb is not None)
        devices = devices if isinstance(devices, list) else select_devices(devices, config.num_agents)
    except ValueError as error:
        problem = error
    try:
        if any_process(problem is not None):  # in a job, every process stops if one cannot start
            raise RunError(str(problem or "another process of the job could not start; see its error"))
        with StopSignals(handle_signals) as stop:
            return _train(config, Path(out), resume, checkpoint_every, chunk_iterations, eval_episodes, devices,
                          compile_cache, stop, progress, log, start_time, bool(tensorboard), wandb)
    finally:
        lock.release()


def _train(config, out, resume, checkpoint_every, chunk_iterations, eval_episodes, devices, compile_cache,
           stop, progress, log, start_time, tensorboard, wandb) -> RunResult:
    import jax
    import numpy as np

    from jax_reinforce.checkpoint import CheckpointError, load_train_state, save_checkpoint
    from jax_reinforce.compilation import enable_compile_cache
    from jax_reinforce.distributed import any_process
    from jax_reinforce.envs import make_env
    from jax_reinforce.evaluation import evaluate_policies
    from jax_reinforce.reporting import aggregate_metrics, first_solved_iteration, plot_learning_curve, write_json
    from jax_reinforce.reporting import write_metrics_csv
    from jax_reinforce.training import confirmation_episodes

    if compile_cache:
        enable_compile_cache(warn=log)
    env_spec = make_env(config.env)
    t_import = time.perf_counter() - start_time
    t0 = time.perf_counter()
    # A chunk never crosses a checkpoint, so checkpoint_every N saves every N iterations.
    chunk = min(chunk_iterations, checkpoint_every or chunk_iterations, config.iterations)
    main_process = jax.process_index() == 0  # writes the run directory; every process trains its share
    runner, layout = _make_runner(config, env_spec, chunk, devices)
    runner.init()  # agent i from fold_in(PRNGKey(config.seed), i), made inside the program

    def result(status, message="", summary=None):
        return RunResult(status, out, config, summary, message, stop.signum, runner.state, runner.history)

    def setting_rows():
        """Per iteration, aggregated over each setting's seeds (one block of rows per setting)."""
        solved_at, failed_at, scores = (np.asarray(runner.state.solved_at), np.asarray(runner.state.failed_at),
                                        runner.solve_scores())
        rows = []
        for g in range(config.num_settings):
            seeds = slice(g * config.num_seeds, (g + 1) * config.num_seeds)
            history = {name: values[seeds] for name, values in runner.history.items()}
            rows += [{"setting": g, **row} for row in
                     aggregate_metrics(history, solved_at[seeds], scores[seeds], failed_at[seeds])]
        return rows

    def write_rows():
        """metrics.csv, and the trackers' new steps (process 0)."""
        if not main_process:
            return None
        rows = setting_rows()
        write_metrics_csv(out / "metrics.csv", rows)
        log_trackers(rows)
        return rows

    trackers, logged = None, [0]

    def log_trackers(rows, env_steps_per_s=None):
        """The iterations the trackers do not hold yet (they skip any they do); cumulative env steps per setting."""
        if not trackers:
            return
        totals = {}
        for r in rows:
            totals[r["setting"]] = totals.get(r["setting"], 0) + r["env_steps"]
            if r["iteration"] >= logged[0]:
                scalars = {k: r[k] for k in ("return_median", "return_q25", "return_q75", "seeds_solved",
                                             "seeds_diverged", "loss_median", "grad_norm_median", "entropy_median")}
                trackers.log(r["iteration"], {**scalars, "env_steps": totals[r["setting"]]},
                             setting=r["setting"] if config.num_settings > 1 else None)
        if env_steps_per_s is not None and runner.iterations_run:
            trackers.log(runner.iterations_run - 1, {"env_steps_per_s": env_steps_per_s})
        trackers.flush()
        logged[0] = runner.iterations_run

    def save():
        # The checkpoint first: metrics.csv is rebuilt from its history on resume.
        if main_process:
            save_checkpoint(out, runner.state.params, config, runner.state, runner.history_with_seconds())
            write_rows()

    def interrupted():
        save()
        if trackers:
            trackers.close(exit_code=EXIT_FOR_SIGNAL.get(stop.signum or signal.SIGTERM, 1))
        signum = stop.signum or signal.SIGTERM  # another process of the job got the signal
        message = (f"stopped by {signal.Signals(signum).name} at iteration {runner.iterations_run}; "
                   f"checkpoint saved; resume with: python scripts/train.py --resume --out {out}")
        return result("interrupted", message)

    if resume:
        problem = None
        try:
            loaded, history, _ = load_train_state(out, runner.state)
        except CheckpointError as error:
            problem = error
        if any_process(problem is not None):
            raise RunError(f"--resume: {problem or 'another process could not read the checkpoint (--out must be on a filesystem every process reads)'}")
        runner.restore(loaded, history)
        if main_process:
            log(f"resuming {out} at iteration {runner.iterations_run}")
    else:
        save()  # iteration 0: from now on there is always a checkpoint to resume from
    if main_process:
        write_json(out / "config.json", config.to_dict())  # on resume, iterations may have grown
        write_json(out / "run.json", {"devices": len(devices), "env_shards": runner.env_shards,
                                      "eval_episodes": eval_episodes, "checkpoint_every": checkpoint_every,
                                      "tensorboard": tensorboard, "wandb": wandb})
    if main_process and (tensorboard or wandb is not None):
        from jax_reinforce.sweep import setting_label
        from jax_reinforce.trackers import open_trackers

        labels = [setting_label(config, s) for s in config.settings()] if config.num_settings > 1 else None
        trackers = open_trackers(out, tensorboard=tensorboard, wandb=wandb, config_dict=config.to_dict(),
                                 resume=resume, settings=labels)
        for line in trackers.describe():
            log(line)
        log_trackers(setting_rows())  # on resume, the restored history (what the trackers already hold is skipped)
    job = f"process {jax.process_index()} of {jax.process_count()}: " if jax.process_count() > 1 else ""
    log(f"{job}devices: {', '.join(str(d) for d in devices)} ({layout})")
    if any_process(bool(stop)):
        return interrupted()
    runner.compile()
    t_compile = time.perf_counter() - t0

    t_train = 0.0
    last_saved_block = runner.iterations_run // max(checkpoint_every, 1)
    while True:
        if any_process(bool(stop)):  # a signal to any process stops them all, at the same chunk
            return interrupted()
        if not runner.running().any():
            break
        t = time.perf_counter()
        metrics = runner.run_chunk()
        dt = time.perf_counter() - t
        t_train += dt
        if trackers:
            log_trackers(setting_rows(), int(metrics["env_steps"].sum()) / max(dt, 1e-9))
        if progress is not None and main_process:
            last = runner.history["episode_return"][:, -1] if runner.iterations_run else np.array([np.nan])
            progress({"iteration": runner.iterations_run, "total": config.iterations,
                      "median_return": float(np.nanmedian(last)) if np.isfinite(last).any() else float("nan"),
                      "solved": int(np.sum(np.asarray(runner.state.solved_at) >= 0)), "num_seeds": config.num_agents,
                      "settings_solved": int(np.sum((np.asarray(runner.state.solved_at) >= 0).reshape(
                          config.num_settings, config.num_seeds).all(axis=1))), "num_settings": config.num_settings,
                      "env_steps_per_s": int(metrics["env_steps"].sum()) / max(dt, 1e-9)})
        if checkpoint_every:
            block = runner.iterations_run // checkpoint_every
            if block != last_saved_block:
                save()
                last_saved_block = block
    stopped = any_process(bool(stop))
    if not main_process:  # process 0 writes, evaluates and reports
        diverged = (np.asarray(runner.state.failed_at) >= 0).any()
        return interrupted() if stopped else result("diverged" if diverged else "finished")

    state, history = runner.state, runner.history
    steps_total = int(history["env_steps"].sum())
    save_checkpoint(out, state.params, config, state, runner.history_with_seconds())
    write_rows()
    if trackers:
        trackers.close()
    threshold = env_spec.solve_threshold
    solved_at, failed = np.asarray(state.solved_at), np.asarray(state.failed_at)
    # Every agent of every setting; with the wall-clock seconds for the curve's third panel.
    rows = aggregate_metrics(runner.history_with_seconds(), solved_at, runner.solve_scores(), failed)
    what = f"{config.num_seeds} seeds" + (f" x {config.num_settings} settings" if config.num_settings > 1 else "")
    plot_learning_curve(out / "learning_curve.png", rows, threshold, f"REINFORCE on {config.env}, {what}")
    if config.num_settings > 1:
        from jax_reinforce.sweep import BEST_RULE, best_setting, plot_sweep, sweep_rows, write_sweep_csv

        setting_rows = sweep_rows(config, state, history, runner.solve_scores())
        write_sweep_csv(out / "sweep.csv", setting_rows)
        plot_sweep(out / "sweep.png", config, history, threshold, f"REINFORCE on {config.env}: median return per setting",
                   solved_at, runner.solve_scores())
    steps_per_iteration = history["env_steps"].sum(axis=0)
    if stopped:  # training is complete and saved; a resume only evaluates
        return interrupted()

    t_eval0 = time.perf_counter()
    evaluation = {}
    if eval_episodes:
        results = evaluate_policies(state.params, env_spec, eval_episodes, config.seed, config.num_seeds)
        evaluation = {f"{name}_mean": returns.mean(axis=1).tolist() for name, returns in results.items()}
    t_eval = time.perf_counter() - t_eval0

    all_solved_iteration = first_solved_iteration(rows, config.num_agents)
    summary = {
        "env": config.env,
        "num_seeds": config.num_seeds,
        "num_settings": config.num_settings,
        "num_agents": config.num_agents,
        "seeds_solved": int(np.sum(solved_at >= 0)),
        "solve_threshold": threshold,
        # Solved means confirmed: the training episodes met the threshold, then the greedy policy did
        # on jax_reinforce.training.confirmation_episodes fresh episodes (steps counted apart).
        "seeds_met_training_criterion": int(np.sum(np.asarray(state.confirm_attempts) > 0)),
        "confirmation_episodes": confirmation_episodes(config.num_envs) if threshold is not None and config.stop_when_solved else 0,
        "confirmation_tests": int(np.sum(state.confirm_attempts)),
        "confirmation_tests_failed": int(np.sum(state.confirm_attempts) - np.sum(solved_at >= 0)),
        "confirmation_env_steps": int(np.sum(np.asarray(state.confirm_steps, np.int64))),
        "solved_at_iteration": solved_at.tolist(),
        "iterations_run": int(history["env_steps"].shape[1]),
        "all_solved_at_iteration": all_solved_iteration,
        "env_steps": int(steps_total),
        "env_steps_to_all_solved": None if all_solved_iteration is None else int(steps_per_iteration[: all_solved_iteration + 1].sum()),
        "env_steps_per_second_train": steps_total / max(t_train, 1e-9),
        "seconds": {"import": t_import, "compile": t_compile, "train": t_train, "eval": t_eval,
                    "total": time.perf_counter() - start_time},
        "evaluation_episodes": eval_episodes,
        "evaluation": evaluation,
        "devices": [str(d) for d in devices],
        "processes": jax.process_count(),
    }
    if threshold is not None and evaluation:
        for name in ("gymnax_mean", "gymnasium_mean"):
            if name in evaluation:
                summary[f"seeds_at_threshold_{name.split('_')[0]}"] = int(np.sum(np.asarray(evaluation[name]) >= threshold))
    summary["diverged"] = {str(i): int(failed[i]) for i in np.flatnonzero(failed >= 0)}
    if config.num_settings > 1:
        best = best_setting(setting_rows)
        summary["settings"] = setting_rows
        summary["best_setting"] = {"setting": best, "rule": BEST_RULE, **setting_rows[best]}
    write_json(out / "summary.json", summary)
    if summary["diverged"]:
        where = ", ".join(f"{agent_name(int(i), config.num_seeds, config.num_settings)} at iteration {at}" for i, at in summary["diverged"].items())
        return result("diverged", f"{len(summary['diverged'])} of {config.num_agents} agents diverged (non-finite "
                                  f"loss, gradient, optimizer state or parameters): {where}; each was frozen with "
                                  f"its last finite parameters; try a smaller --lr or a --max-grad-norm",
                      summary=summary)
    return result("finished", summary=summary)


def agent_name(agent: int, num_seeds: int, num_settings: int = 1) -> str:
    """``"seed 3"``, or in a sweep ``"setting 1 seed 3"`` (agent ``a``: seed ``a % num_seeds`` of setting ``a // num_seeds``)."""
    if num_settings == 1:
        return f"seed {agent}"
    return f"setting {agent // num_seeds} seed {agent % num_seeds}"


def report_lines(summary: dict, run_dir) -> list[str]:
    """The short report of a finished run (what ``scripts/train.py`` prints); a sweep's settings as a table."""
    from jax_reinforce.reporting import evaluation_table

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
        from jax_reinforce.config import SWEEPABLE, flag_of

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
