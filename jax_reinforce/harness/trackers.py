"""Experiment trackers, opt-in: TensorBoard event files and Weights & Biases, inside the run directory.

    trackers = open_trackers(run_dir, tensorboard=True, wandb={"project": "cartpole", "mode": "offline"},
                             config_dict=config.to_dict(), resume=False, settings=None)
    for iteration, row in enumerate(rows):
        trackers.log(iteration, {"return_median": row["return_median"], ...})
    trackers.flush()     # after each chunk of training: writes, then records the last step written
    trackers.close()     # before the process exits (train.py's exit skips atexit hooks)

Each library is imported only when its tracker is opened: importing this
module, or opening no tracker, imports neither ``tensorboardX`` nor
``wandb``, and writes nothing.

Files, all in the run directory (:data:`TRACKER_FILES`):

- ``tensorboard/``: TensorBoard event files, written with ``tensorboardX``
  (``pip install -e ".[tensorboard]"``; view with ``tensorboard --logdir
  RUN_DIR/tensorboard``, from the ``tensorboard`` package). A single run's
  scalars are in ``tensorboard/`` itself; in a sweep, setting ``g``'s are in
  ``tensorboard/setting_g/`` under the same names, so TensorBoard draws the
  settings as runs on one chart, and scalars of the whole job (``setting=None``,
  e.g. environment steps per second) stay in ``tensorboard/``.
- ``wandb/``: Weights & Biases' own directory (``wandb.init(dir=RUN_DIR)``;
  ``pip install -e ".[wandb]"``); an offline run is
  ``wandb/offline-run-<time>-<id>/``, uploaded later with ``wandb sync``. A
  sweep's per-setting scalars are named ``setting_g/<name>`` (W&B draws each
  prefix as a section), the job's unprefixed; the settings' labels are in the
  W&B config under ``settings``.
- ``trackers.json``: the W&B run id and, per tracker, the last step written.

Steps are iterations. A resumed run (``resume=True``) continues the same W&B
run id and writes only steps after the last one recorded, so nothing is
logged twice: the caller may log every iteration of the restored history
again (a tracker first opened on resume then receives all of it). Steps
written by a killed process after its last :meth:`Trackers.flush` are
recorded nowhere; the resumed TensorBoard writer starts with a purge marker
at the first step it writes (TensorBoard's own mechanism,
``SummaryWriter(purge_step=...)``), so readers drop those orphans, and W&B
refuses a step below one it already holds.

In a multi-process job only process 0 logs: pass ``main_process=False``
elsewhere (an empty :class:`Trackers` whose calls do nothing).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

from jax_reinforce.harness.files import atomic_write_bytes

__all__ = ["TRACKER_FILES", "TRACKER_STATE", "TrackerError", "Trackers", "check_trackers", "open_trackers",
           "clear_tracker_files"]

TRACKER_STATE = "trackers.json"
TRACKER_FILES = ("tensorboard", "wandb", TRACKER_STATE)

# tracker name -> (the module it imports, the command-line flag, the pyproject extra)
_LIBRARIES = {"tensorboard": ("tensorboardX", "--tensorboard", "tensorboard"), "wandb": ("wandb", "--wandb", "wandb")}
_WANDB_OPTIONS = ("project", "entity", "group", "name", "tags", "notes", "mode")


class TrackerError(ValueError):
    """A tracker cannot be used (its extra is missing, its service refused the run): one line, exit code 2."""


def _missing(tracker: str) -> TrackerError:
    module, flag, extra = _LIBRARIES[tracker]
    return TrackerError(f"{flag} needs the {extra} extra ({module} is not installed): "
                        f"pip install -e \".[{extra}]\" (or pip install {module})")


def _available(module: str) -> bool:
    if module in sys.modules:  # loaded, or blocked with sys.modules[name] = None
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_trackers(*, tensorboard: bool = False, wandb: bool = False) -> None:
    """Refuses a tracker whose library is not installed, without importing it.

    For the command line to call before any work; :func:`open_trackers`
    raises the same error when it imports the library.

    Raises:
      TrackerError: naming the ``pip install`` to run.
    """
    for tracker, wanted in (("tensorboard", tensorboard), ("wandb", wandb)):
        if wanted and not _available(_LIBRARIES[tracker][0]):
            raise _missing(tracker)


def _import(tracker: str):
    try:
        return importlib.import_module(_LIBRARIES[tracker][0])
    except ImportError:
        raise _missing(tracker) from None


def _read_state(run_dir: Path) -> dict:
    path = run_dir / TRACKER_STATE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise TrackerError(f"--resume: {path} cannot be read ({error}); it is written whole, so it was changed "
                           f"by hand; remove it to start the trackers' runs anew") from None
    last = state.get("last_step", {}) if isinstance(state, dict) else None
    if (not isinstance(last, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in last.values())
            or not isinstance(state.get("wandb_run_id", ""), str)):
        raise TrackerError(f"--resume: {path} must hold a JSON object: 'last_step' (tracker -> integer) and "
                           f"'wandb_run_id' (a string); it was changed by hand; remove it to start the trackers' "
                           f"runs anew")
    return state


def _write_state(run_dir: Path, state: dict) -> None:

    atomic_write_bytes(run_dir / TRACKER_STATE, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def _setting_name(setting: int) -> str:
    return f"setting_{setting}"


class _TensorBoard:
    """Event files under ``root``, one writer per directory (the job's, each setting's)."""

    name = "tensorboard"

    def __init__(self, root: Path, last_step: int | None, resume: bool, config_dict: dict | None, labels):
        self.tbx = _import("tensorboard")
        self.root, self.last_step, self.labels, self.writers = root, last_step, labels, {}
        # A resumed writer first marks its first step: TensorBoard then drops the events at or after it
        # in the older files of its directory (steps a killed process wrote after its last flush).
        self.purge_step = last_step + 1 if last_step is not None else (0 if resume else None)
        self.fresh = last_step is None
        if self.fresh and config_dict is not None:
            self._writer(None).add_text("config", "```\n" + json.dumps(config_dict, indent=1, default=str) + "\n```", 0)

    def _writer(self, setting: int | None):
        writer = self.writers.get(setting)
        if writer is None:
            logdir = self.root if setting is None else self.root / _setting_name(setting)
            # The suffix orders the files of one second and keeps two writers' files apart
            # (tensorboardX names a file by the second and the host only, and truncates a file of that name).
            writer = self.tbx.SummaryWriter(str(logdir), purge_step=self.purge_step, flush_secs=3600,
                                            max_queue=1000, filename_suffix=f".{time.time_ns()}")
            self.writers[setting] = writer
            if self.fresh and setting is not None and self.labels is not None:
                writer.add_text("setting", self.labels[setting], 0)
        return writer

    def write(self, step: int, entries) -> None:
        wall_time = time.time()
        for setting, scalars in entries:
            writer = self._writer(setting)
            for name, value in scalars.items():
                writer.add_scalar(name, float(value), step, walltime=wall_time)

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self, exit_code: int) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def describe(self) -> str:
        return f"TensorBoard: {self.root} (view: tensorboard --logdir {self.root})"


class _WandB:
    """One W&B run for the whole job; its id kept in the tracker state, so a resume continues it."""

    name = "wandb"

    def __init__(self, run_dir: Path, options: dict, run_id: str | None, last_step: int | None,
                 config_dict: dict | None, labels):
        unknown = sorted(set(options) - set(_WANDB_OPTIONS))
        if unknown:
            raise TrackerError(f"W&B options must be among {', '.join(_WANDB_OPTIONS)}; got {', '.join(unknown)}")
        mode = options.get("mode")
        if mode not in (None, "online", "offline", "disabled"):
            raise TrackerError(f"W&B mode must be online, offline or disabled; got {mode!r}")
        offline = mode == "offline" or (mode is None and os.environ.get("WANDB_MODE") in ("offline", "dryrun"))
        if offline:  # offline means no network at all: W&B's crash reporter would send to its server
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        wandb = _import("wandb")
        self.last_step, self.offline = last_step, offline
        config = dict(config_dict or {})
        if labels is not None:
            config["settings"] = {_setting_name(g): label for g, label in enumerate(labels)}
        self.run = None
        try:
            self.run = wandb.init(dir=str(run_dir), id=run_id, resume="allow" if run_id else None,
                                  reinit="create_new", **{k: v for k, v in options.items() if v is not None},
                                  settings=wandb.Settings(console="off", silent=True))
            # A resumed run may have grown (--iterations): the new values replace the old.
            self.run.config.update(config, allow_val_change=True)
        except Exception as error:  # the service's refusal (no API key, no network, ...) as one line
            if self.run is not None:
                self.run.finish(exit_code=1)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise TrackerError(f"--wandb: W&B could not start its run: {first[:300]}; to log without a network, "
                               f"set WANDB_MODE=offline and upload later with wandb sync") from None
        self.run_id = self.run.id

    def write(self, step: int, entries) -> None:
        merged = {}
        for setting, scalars in entries:
            prefix = "" if setting is None else _setting_name(setting) + "/"
            merged.update({prefix + name: value for name, value in scalars.items()})
        self.run.log(merged, step=step, commit=True)

    def flush(self) -> None:
        pass  # every step is committed as it is logged; W&B's service writes it

    def close(self, exit_code: int) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None

    def describe(self) -> str:
        if self.offline:
            return (f"W&B: offline run {self.run_id} in {Path(self.run.dir).parent.parent} "
                    f"(upload: wandb sync {Path(self.run.dir).parent.parent}/offline-run-*-{self.run_id})")
        return f"W&B: run {self.run_id} {getattr(self.run, 'url', '') or ''}".rstrip()


class Trackers:
    """The trackers of one run: :meth:`log` scalars per step, :meth:`flush` after each chunk, :meth:`close` at the end.

    Made by :func:`open_trackers`; ``Trackers()`` alone has no tracker and
    does nothing. A context manager: leaving it closes the trackers (W&B's
    run marked failed if an exception left it).
    """

    def __init__(self, run_dir=None, backends=(), state=None, num_settings: int | None = None):
        self.run_dir = None if run_dir is None else Path(run_dir)
        self._backends, self._state, self._num_settings = list(backends), state or {}, num_settings
        self._pending: list[tuple[int, int | None, dict]] = []
        self._closed = False

    def __bool__(self) -> bool:
        return bool(self._backends)

    @property
    def names(self) -> tuple[str, ...]:
        """The trackers open: ``"tensorboard"``, ``"wandb"``."""
        return tuple(b.name for b in self._backends)

    @property
    def wandb_run_id(self) -> str | None:
        return self._state.get("wandb_run_id")

    def log(self, step: int, scalars: dict, setting: int | None = None) -> None:
        """Records ``scalars`` for iteration ``step``; written at the next :meth:`flush`.

        Args:
          step: the iteration, an integer >= 0. Within one flush the calls
            may come in any order (e.g. every step of setting 0, then of
            setting 1); a step at or before the last one a tracker has
            written (an earlier flush, or the run before a resume) is skipped.
          scalars: name -> number (Python or NumPy); ``None`` values are left out.
          setting: the sweep setting, ``0 <= setting < len(settings)``;
            ``None``: the run (a single run's metrics, or the whole job's).
        """
        if self._closed:
            raise RuntimeError("Trackers.log after close")
        if not self._backends:
            return
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an integer >= 0; got {step!r}")
        if setting is not None and (self._num_settings is None or isinstance(setting, bool)
                                    or not isinstance(setting, int) or not 0 <= setting < self._num_settings):
            raise ValueError(f"setting must be None or an integer in [0, {self._num_settings or 0}) "
                             f"(open_trackers' settings); got {setting!r}")
        values = {}
        for name, value in scalars.items():
            if value is None:
                continue
            value = value.item() if hasattr(value, "item") else value
            if not isinstance(name, str) or not name or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"scalars must map non-empty names to numbers; got {name!r}: {value!r}")
            values[name] = value
        self._pending.append((step, setting, values))

    def flush(self) -> None:
        """Writes the logged steps in order, flushes the files, then records each tracker's last step.

        Log every setting of a step before the flush that writes it: a step
        already written is not written again.
        """
        if not self._backends or not self._pending:
            return
        by_step: dict[int, list] = {}
        for step, setting, values in sorted(self._pending, key=lambda entry: entry[0]):
            by_step.setdefault(step, []).append((setting, values))
        self._pending = []
        for backend in self._backends:
            for step, entries in by_step.items():
                if backend.last_step is None or step > backend.last_step:
                    backend.write(step, entries)
                    backend.last_step = step
            backend.flush()
        self._state["last_step"] = {**self._state.get("last_step", {}),
                                    **{b.name: b.last_step for b in self._backends if b.last_step is not None}}
        _write_state(self.run_dir, self._state)

    def close(self, exit_code: int = 0) -> None:
        """Flushes and closes every tracker (W&B's ``finish``); ``exit_code != 0`` marks the W&B run failed.

        Call it before the process ends: ``train.py`` ends with ``os._exit``,
        which skips W&B's own exit hook. W&B's service writes the run's
        files out a moment after ``finish`` returns, also once this process
        has ended. Closing twice does nothing.
        """
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            for backend in self._backends:
                backend.close(exit_code)

    def describe(self) -> list[str]:
        """One line per tracker: where it writes and how to look (for the command line to print)."""
        return [backend.describe() for backend in self._backends]

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(0 if exc_type is None else 1)


def open_trackers(run_dir, *, tensorboard: bool = False, wandb: dict | None = None, config_dict: dict | None = None,
                  resume: bool = False, settings: list[str] | None = None, main_process: bool = True) -> Trackers:
    """Opens the trackers asked for, importing only their libraries.

    Args:
      run_dir: the run directory (existing).
      tensorboard: write TensorBoard event files in ``RUN_DIR/tensorboard/``.
      wandb: ``None``: no W&B; otherwise ``wandb.init``'s options among
        ``project``, ``entity``, ``group``, ``name``, ``tags``, ``notes``
        and ``mode`` (``"online"``, ``"offline"``, ``"disabled"``; ``None``:
        W&B's own choice, e.g. ``WANDB_MODE``), ``None`` values left out.
      config_dict: the run's configuration (``Config.to_dict()``), W&B's run
        config and TensorBoard's ``config`` text.
      resume: continue the trackers' runs recorded in ``RUN_DIR/trackers.json``
        (the same W&B run id; only steps after the last one written). A new
        run (``False``) needs a directory without tracker files
        (:func:`clear_tracker_files` for ``--overwrite``).
      settings: a sweep's setting labels, one per setting (e.g.
        ``"lr=0.1 entropy_coef=0"``), for :meth:`Trackers.log`'s ``setting``;
        ``None``: a single run.
      main_process: ``False`` (every process of a job but process 0): an
        empty :class:`Trackers`, nothing imported or written.

    Returns:
      A :class:`Trackers`; empty (and nothing written) when no tracker is asked for.

    Raises:
      TrackerError: a library not installed (naming the ``pip install``),
        tracker files of another run, W&B refusing to start.
    """
    if not main_process or not (tensorboard or wandb is not None):
        return Trackers()
    check_trackers(tensorboard=tensorboard, wandb=wandb is not None)
    run_dir = Path(run_dir)
    if settings is not None:
        settings = [str(label) for label in settings]
    if resume:
        state = _read_state(run_dir)
    else:
        present = [name for name in TRACKER_FILES if (run_dir / name).exists()]
        if present:
            raise TrackerError(f"{run_dir} already holds tracker files ({', '.join(present)}) of another run; "
                               f"resume that run or clear them (--overwrite)")
        state = {}
    last = state.setdefault("last_step", {})
    backends = []
    try:
        if tensorboard:
            backends.append(_TensorBoard(run_dir / "tensorboard", last.get("tensorboard"), resume, config_dict,
                                         settings))
        if wandb is not None:
            backend = _WandB(run_dir, dict(wandb), state.get("wandb_run_id"), last.get("wandb"), config_dict,
                             settings)
            backends.append(backend)
            state["wandb_run_id"] = backend.run_id
    except BaseException:
        for backend in backends:
            backend.close(1)
        raise
    _write_state(run_dir, state)  # the W&B id from now on: a process killed before its first flush resumes it
    return Trackers(run_dir, backends, state, None if settings is None else len(settings))


def clear_tracker_files(run_dir) -> list[Path]:
    """Removes the trackers' files from ``run_dir`` (for ``--overwrite``); returns the paths removed."""
    removed = []
    run_dir = Path(run_dir)
    for name in TRACKER_FILES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    for tmp in run_dir.glob(f".{TRACKER_STATE}.*.tmp"):  # a killed atomic write's leftover
        tmp.unlink()
        removed.append(tmp)
    return removed
