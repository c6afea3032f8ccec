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

- ``tensorboard/``: TensorBoard event files, one per process that logged
  (``pip install -e ".[tensorboard]"`` installs ``tensorboardX``, whose
  protocol buffers they use; view with ``tensorboard --logdir
  RUN_DIR/tensorboard``, from the ``tensorboard`` package). In a sweep,
  setting ``g``'s scalars are named ``setting_g/<name>`` (as in W&B), the
  whole job's (``setting=None``, e.g. environment steps per second) keep
  their names, and the text ``settings`` gives each setting's label: one
  file, one open file while it is appended to, however many settings.
- ``wandb/``: Weights & Biases' own directory (``wandb.init(dir=RUN_DIR)``;
  ``pip install -e ".[wandb]"``); an offline run is
  ``wandb/offline-run-<time>-<id>/``, uploaded later with ``wandb sync``. A
  sweep's per-setting scalars are named ``setting_g/<name>`` (W&B draws each
  prefix as a section), the job's unprefixed; the settings' labels are in the
  W&B config under ``settings``.
- ``trackers.json``: the W&B run id and, per tracker, the last step it keeps.

Steps are iterations. A resumed run (``resume=True``) continues the same W&B
run id and writes only steps after the last one recorded, so nothing is
logged twice: the caller may log every iteration of the restored history
again (a tracker first opened on resume then receives all of it). A step
is recorded only once it is kept: :meth:`Trackers.flush` appends and syncs
the event file before it writes ``trackers.json``; W&B's steps are recorded
when its run is finished (:meth:`Trackers.close`). Steps a killed process
wrote after the last record are recorded nowhere, and sent again; the resumed
TensorBoard file starts with a purge marker at the first step it writes
(TensorBoard's own mechanism, as ``SummaryWriter(purge_step=...)`` writes
it), so readers drop those orphans, and W&B refuses a step below one it
already holds.

An online W&B run is checked before anything is written
(:func:`check_wandb_login`: the API key, and the server within
:data:`WANDB_TIMEOUT_S`).

In a multi-process job only process 0 logs: pass ``main_process=False``
elsewhere (an empty :class:`Trackers` whose calls do nothing).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

from jax_reinforce.harness.files import atomic_write_bytes

__all__ = ["TRACKER_FILES", "TRACKER_STATE", "TrackerError", "Trackers", "check_trackers", "check_wandb_login",
           "open_trackers", "clear_tracker_files", "WANDB_TIMEOUT_S"]

TRACKER_STATE = "trackers.json"
TRACKER_FILES = ("tensorboard", "wandb", TRACKER_STATE)

# tracker name -> (the module it imports, the command-line flag, the pyproject extra)
_LIBRARIES = {"tensorboard": ("tensorboardX", "--tensorboard", "tensorboard"), "wandb": ("wandb", "--wandb", "wandb")}
_WANDB_OPTIONS = ("project", "entity", "group", "name", "tags", "notes", "mode")
WANDB_TIMEOUT_S = 15.0  # the longest an online W&B run waits for the server: the check before the run, and init


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


def _wandb_mode(options: dict) -> str | None:
    """W&B's mode for ``options`` (checked): theirs, else ``WANDB_MODE``'s offline or disabled, else ``None``."""
    unknown = sorted(set(options) - set(_WANDB_OPTIONS))
    if unknown:
        raise TrackerError(f"W&B options must be among {', '.join(_WANDB_OPTIONS)}; got {', '.join(unknown)}")
    mode = options.get("mode")
    if mode not in (None, "online", "offline", "disabled"):
        raise TrackerError(f"W&B mode must be online, offline or disabled; got {mode!r}")
    env = {"offline": "offline", "dryrun": "offline", "disabled": "disabled"}.get(os.environ.get("WANDB_MODE", ""))
    return mode or env


def check_wandb_login(options: dict | None, *, timeout_s: float | None = None, log=None) -> None:
    """Refuses an online W&B run that could not start, for the caller to run before it writes anything.

    No API key is found at once, without the network; otherwise W&B's
    server checks the key, waited for at most ``timeout_s`` seconds
    (``None``: :data:`WANDB_TIMEOUT_S`). An offline or disabled run
    (``options["mode"]``, ``WANDB_MODE``, ``wandb offline``) passes at once.

    Args:
      options: :func:`open_trackers`' ``wandb`` (``None``: no W&B).
      log: called with one line saying what is checked and for how long.

    Raises:
      TrackerError: one line naming what failed and what to do.
    """
    mode = None if options is None else _wandb_mode(options)
    if options is None or mode in ("offline", "disabled"):
        return
    wandb = _import("wandb")
    settings = wandb.setup().settings
    if (mode is None and settings.mode in ("offline", "dryrun", "disabled")) or wandb.run is not None:
        return  # W&B's own settings say offline, or a run of this process already logged in
    timeout_s = WANDB_TIMEOUT_S if timeout_s is None else timeout_s
    host, outcome = settings.base_url, {}
    otherwise = "or log without a network with WANDB_MODE=offline (upload later with wandb sync)"
    if log is not None:
        log(f"W&B: checking the API key with {host} (at most {timeout_s:g} s)")

    def login():
        try:
            outcome["logged_in"] = wandb.login(prompt=False, verify=True)
        except Exception as error:  # the server refused the key, or could not be reached
            outcome["error"] = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]

    checking = threading.Thread(target=login, name="wandb-login-check", daemon=True)
    checking.start()
    checking.join(timeout_s)
    if checking.is_alive():
        raise TrackerError(f"--wandb: W&B's server {host} did not answer within {timeout_s:g} s; check the "
                           f"network (or WANDB_BASE_URL), {otherwise}")
    if "error" in outcome:
        raise TrackerError(f"--wandb: W&B could not check the API key with {host}: {outcome['error']}; check the "
                           f"network and the key (wandb login), {otherwise}")
    if not outcome["logged_in"]:
        raise TrackerError(f"--wandb: no W&B API key for {host}: set WANDB_API_KEY or run wandb login, {otherwise}")


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


def crc32c_tables(n: int) -> np.ndarray:
    """``tables[j, b]``: the CRC-32C register (Castagnoli, reflected polynomial 0x82F63B78) after byte ``b``
    and then ``j`` zero bytes, ``(n, 256)`` uint32; ``tables[0]`` is the usual byte table."""
    byte = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        byte = np.where(byte & 1, (byte >> 1) ^ np.uint32(0x82F63B78), byte >> 1)
    tables = np.empty((n, 256), np.uint32)
    tables[0] = byte
    for j in range(1, n):
        tables[j] = (tables[j - 1] >> 8) ^ byte[tables[j - 1] & 0xFF]
    return tables


def masked_crc32c(tables: np.ndarray, data: bytes) -> int:
    """TFRecord's checksum of ``data``: CRC-32C, then masked ``((c >> 15 | c << 17) + 0xA282EAD8) mod 2**32``.

    The CRC is linear over GF(2) and the tables map byte 0 to 0, so a block of ``n = len(tables)``
    bytes moves the register ``c`` to ``xor_k tables[n-1-k, block[k]]`` (every block at once, in
    NumPy) xor the same sum over ``c``'s own four bytes; the tail goes byte by byte. Equal to
    tensorboardX's byte loop (``tests/harness/test_trackers.py``), faster (``docs/performance.md``).
    """
    n, buf, crc = len(tables), np.frombuffer(data, np.uint8), 0xFFFFFFFF
    full = len(buf) - len(buf) % n
    if full:
        t0, t1, t2, t3 = (tables[n - 1 - k].tolist() for k in range(4))
        for moved in np.bitwise_xor.reduce(tables[::-1][np.arange(n), buf[:full].reshape(-1, n)], axis=1).tolist():
            crc = moved ^ t0[crc & 255] ^ t1[crc >> 8 & 255] ^ t2[crc >> 16 & 255] ^ t3[crc >> 24]
    byte = tables[0].tolist()
    for b in buf[full:].tolist():
        crc = byte[(crc ^ b) & 255] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _TensorBoard:
    """One event file per process under ``root``, every setting's scalars in it (``setting_g/<name>``).

    Written without tensorboardX's writer thread and queue: :meth:`write` builds the events, :meth:`flush`
    appends them and syncs the file. A step is on disk when :meth:`flush` returns, and one file, opened
    only while it is appended to, serves any number of settings.
    """

    name = "tensorboard"
    durable_at_flush = True

    def __init__(self, root: Path, last_step: int | None, resume: bool, config_dict: dict | None, labels):
        _import("tensorboard")
        self.text = importlib.import_module("tensorboardX.summary").text
        pb = importlib.import_module("tensorboardX.proto.event_pb2")
        self.Event, self.SessionLog = pb.Event, pb.SessionLog
        self.Summary = importlib.import_module("tensorboardX.proto.summary_pb2").Summary
        self.crc_tables = crc32c_tables(256)
        self.root, self.last_step = root, last_step
        now = time.time()
        # Named as tensorboardX names its files; the nanoseconds keep two processes' files of one second apart.
        self.path = root / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{time.time_ns()}"
        self.pending = [self.Event(wall_time=now, file_version="brain.Event:2")]
        # A resumed run's file first marks its first step: TensorBoard then drops the events at or after it in
        # the older files (steps a killed process wrote after its last flush).
        purge_step = last_step + 1 if last_step is not None else (0 if resume else None)
        if purge_step is not None:
            self.pending += [self.Event(wall_time=now, step=purge_step, file_version="brain.Event:2"),
                             self.Event(wall_time=now, step=purge_step,
                                        session_log=self.SessionLog(status=self.SessionLog.START))]
        if last_step is None and config_dict is not None:
            self.pending.append(self.Event(wall_time=now, step=0, summary=self.text(
                "config", "```\n" + json.dumps(config_dict, indent=1, default=str) + "\n```")))
        if last_step is None and labels is not None:
            self.pending.append(self.Event(wall_time=now, step=0, summary=self.text(
                "settings", "\n\n".join(f"{_setting_name(g)}: {label}" for g, label in enumerate(labels)))))

    def write(self, step: int, entries) -> None:
        values = [self.Summary.Value(tag=name if setting is None else f"{_setting_name(setting)}/{name}",
                                     simple_value=float(value))
                  for setting, scalars in entries for name, value in scalars.items()]
        self.pending.append(self.Event(wall_time=time.time(), step=step, summary=self.Summary(value=values)))

    def flush(self) -> None:
        """Appends the pending events to the file (TFRecord framing) and syncs it."""
        if not self.pending:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(b"".join(self._record(event.SerializeToString()) for event in self.pending))
            f.flush()
            os.fsync(f.fileno())
        self.pending = []

    def _record(self, data: bytes) -> bytes:
        header = struct.pack("<Q", len(data))
        return (header + struct.pack("<I", masked_crc32c(self.crc_tables, header)) + data
                + struct.pack("<I", masked_crc32c(self.crc_tables, data)))

    def close(self, exit_code: int) -> None:
        self.flush()

    def describe(self) -> str:
        return f"TensorBoard: {self.root} (view: tensorboard --logdir {self.root})"


class _WandB:
    """One W&B run for the whole job; its id kept in the tracker state, so a resume continues it."""

    name = "wandb"
    durable_at_flush = False  # its steps are its service's once the run is finished (Trackers.flush)

    def __init__(self, run_dir: Path, options: dict, run_id: str | None, last_step: int | None,
                 config_dict: dict | None, labels):
        offline = _wandb_mode(options) == "offline"
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
                                  settings=wandb.Settings(console="off", silent=True, init_timeout=WANDB_TIMEOUT_S))
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
        """Writes the logged steps in order, flushes the files, then records the last step each holds for good.

        Log every setting of a step before the flush that writes it: a step
        already written is not written again. TensorBoard's steps are on
        disk when the flush returns; W&B's are its service's only once the
        run is finished (its offline file is written in blocks, and its
        upload runs behind), so they are recorded at :meth:`close`, and a
        process killed before then has a resume send them again.
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
        self._record([b for b in self._backends if b.durable_at_flush])

    def _record(self, backends) -> None:
        """Writes ``trackers.json`` with the last step of each of ``backends``."""
        self._state["last_step"] = {**self._state.get("last_step", {}),
                                    **{b.name: b.last_step for b in backends if b.last_step is not None}}
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
            if self._backends:
                self._record(self._backends)

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
