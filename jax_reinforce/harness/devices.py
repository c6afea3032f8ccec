"""Many processes and many devices: joining a ``jax.distributed`` job, choosing devices, sharing flags.

One process, many devices, and how the agents are laid out over them
(seeds dealt over the devices, or an agent's environments split over a group
of them): :class:`jax_reinforce.harness.runner.Runner`. This module holds what a
multi-process job needs around it.

:func:`initialize_distributed` joins ``num_processes`` processes (one per
host, or several on one machine) through ``jax.distributed.initialize``;
``jax.devices()`` then lists every process's devices. Every process runs the
same calls in the same order (multi-controller JAX); :func:`any_process`
shares a decision taken from one process's local state (a signal), and
:func:`gather_to_host` collects arrays held by other processes' devices
(an all-gather, through gloo on the CPU). Process 0 writes the run
directory. :func:`select_devices` reads the ``--devices`` flag.

A job is one config and fails fast: :func:`check_same_job` refuses processes
that would run different jobs, before anything is written;
:func:`check_coordinator_port` refuses a coordinator port in use before JAX
binds it (JAX segfaults); :func:`watch_native_errors` turns the C++ runtime's
fatal end (a peer gone: a fatal log, a stack trace, SIGABRT) into one line of
ours; :func:`leave_job` leaves a failed job within seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import select
import signal
import socket
import sys
import threading
import time

import jax
import numpy as np

from jax_reinforce.core.config import parse_int

__all__ = [
    "select_devices",
    "initialize_distributed",
    "gather_to_host",
    "MIN_BATCH",
    "any_process",
    "join_job",
    "joining",
    "check_coordinator_port",
    "check_same_job",
    "watch_native_errors",
    "leave_job",
    "HEARTBEAT_TIMEOUT_S",
    "JobLostError",
    "job_lost_errors",
    "JOB_LOST",
]

# The fewest agents in one call of a device (the runner's smallest batch): a vmapped batch of one agent
# compiles to different (unbatched) dot products, so a lone agent would not be bitwise the same.
MIN_BATCH = 2
JOINING_THREAD = "jax-distributed-initialize"  # the thread that runs JAX's connect (see initialize_distributed)
# What every process of a job that lost a process says (app.cli.start_jax, job_lost_error).
JOB_LOST = ("the job lost a process ({why}); this process stops too; every file is written whole, so the last "
            "checkpoint (if any) is kept")
# A process silent this long is gone: the job's coordinator then fails every process (JAX's default: 100 s).
HEARTBEAT_TIMEOUT_S = 10


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _integer(value) -> int | None:
    """An integer, or its text (:func:`jax_reinforce.core.config.parse_int`), as an ``int``; else ``None``."""
    try:
        return parse_int(value) if isinstance(value, str) else int(value) if _is_int(value) else None
    except ValueError:
        return None


def _devices_by_process() -> dict[int, list]:
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    return by_process


def select_devices(devices: int | str | None = None, num_seeds: int | None = None) -> list:
    """The devices to train on, from the ``--devices`` flag.

    Args:
      devices: ``"all"``; an integer (or its text) ``N``; or ``None``.
        In one process, ``N`` in ``[1, len(jax.devices())]`` picks the first
        ``N`` devices and ``None`` picks, on a CPU, one device (the runner
        uses its cores with one thread each,
        :func:`jax_reinforce.harness.runner.default_threads`: one compiled program
        instead of one per device, equally fast); elsewhere as many as
        ``num_seeds`` fills with at least two agents each (``Runner``'s
        smallest batch), at least one: ``min(len(jax.devices()), max(1,
        num_seeds // 2))``, or one device when ``num_seeds`` is ``None``.
        With ``P`` processes every
        process must take part, so ``N`` must be a multiple of ``P``
        (``N / P`` devices of each process) and ``None`` means the first
        device of each process.
      num_seeds: the run's number of agents, for the default.

    Returns:
      A list of ``jax.Device``, ordered by process, then device id.

    Raises:
      ValueError: naming ``--devices``, the value and what is allowed.
    """
    by_process = _devices_by_process()
    processes = len(by_process)
    per_process = min(len(ds) for ds in by_process.values())
    total = sum(len(ds) for ds in by_process.values())
    if processes == 1:
        allowed = f"'all' or an integer in [1, {total}]"
    else:
        allowed = (f"'all' or a multiple of the {processes} processes in "
                   f"[{processes}, {processes * per_process}]")
    on_cpu = all(d.platform == "cpu" for ds in by_process.values() for d in ds)
    if devices is None and processes == 1 and num_seeds is not None and not on_cpu:
        count = min(total, max(1, int(num_seeds) // MIN_BATCH))
    elif devices is None:
        count = processes
    elif isinstance(devices, str) and devices.strip().lower() == "all":
        return [d for ds in by_process.values() for d in ds]
    else:
        count = _integer(devices)
    if count is None or count < processes or count % processes or count // processes > per_process:
        raise ValueError(f"devices (--devices) must be {allowed}; got {str(devices)!r}")
    return [d for ds in by_process.values() for d in ds[: count // processes]]


def _parse_coordinator(coordinator) -> tuple[str, int]:
    allowed = "HOST:PORT with PORT an integer in [1, 65535] (e.g. 127.0.0.1:12355)"
    host, sep, port = str(coordinator).rpartition(":") if isinstance(coordinator, str) else ("", "", "")
    port = int(port) if port.isascii() and port.isdigit() else None  # JAX is given the text: digits alone
    if not sep or not host.strip("[]").strip() or port is None or not 1 <= port <= 65535:
        raise ValueError(f"coordinator (--coordinator) must be {allowed}; got {coordinator!r}")
    return host, port


def initialize_distributed(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    timeout_s: float = 300,
) -> bool:
    """Joins this process to a multi-process job (``jax.distributed.initialize``).

    Call it first, before any other JAX call (it must run before JAX's
    backends start). Every process gets the same ``coordinator`` (process
    0's ``HOST:PORT``, where process 0 listens) and ``num_processes``, and
    its own ``process_id``. On the CPU the processes exchange arrays through
    JAX's gloo collectives (``jax_cpu_collectives_implementation``), which
    this turns on if they are off.

    Args:
      coordinator: ``"HOST:PORT"`` of process 0, or ``None``.
      num_processes: ``P >= 1``, or ``None``.
      process_id: this process, in ``[0, P)``, or ``None``.
      timeout_s: seconds to wait for every process to join, in ``[1, 2**31)``;
        the wait can be interrupted (Ctrl-C), and ends with ``TimeoutError``.
        JAX's own connection attempt goes on in a background thread after
        that and aborts the process (SIGABRT) about 5 s later: a process that
        could not join must end (:func:`joining` tells; the command line exits).

    Returns:
      ``True`` when a job was joined; ``False`` when all three arguments are
      ``None`` (a single-process run: nothing to do).

    Raises:
      ValueError: one line naming the flag (``--coordinator``,
        ``--num-processes``, ``--process-id``), the value and what is allowed.
      TimeoutError: the job did not form within ``timeout_s``.
      RuntimeError: JAX could not join it.
    """
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if all(value is None for value in given.values()):
        return False
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ValueError(
            "--coordinator, --num-processes and --process-id go together; missing " + ", ".join(missing)
        )
    _parse_coordinator(coordinator)
    if not _is_int(num_processes) or num_processes < 1:
        raise ValueError(f"num_processes (--num-processes) must be an integer >= 1; got {num_processes!r}")
    if not _is_int(process_id) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id (--process-id) must be an integer in [0, {num_processes - 1}]; got {process_id!r}"
        )
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float, np.integer, np.floating)) \
            or not 1 <= timeout_s < 2**31:
        raise ValueError(f"timeout_s (--coordinator-timeout) must be a number of seconds in [1, 2**31); "
                         f"got {timeout_s!r}")
    if process_id == 0:
        check_coordinator_port(coordinator)
    if jax.config.values.get("jax_cpu_collectives_implementation") in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    outcome = []

    def connect():
        try:
            jax.distributed.initialize(
                coordinator_address=coordinator,
                num_processes=int(num_processes),
                process_id=int(process_id),
                initialization_timeout=math.ceil(timeout_s),
                heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
            )
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
            outcome.append(error)

    # JAX's connect is one C call that ignores signals, and on its own timeout it aborts the whole
    # process (SIGABRT, a C++ stack trace) about 5 s late. It runs in a thread; this one waits in
    # Python, so that Ctrl-C is handled, and gives up at the deadline with an exception.
    thread = threading.Thread(target=connect, name=JOINING_THREAD, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.1)
    if thread.is_alive():
        raise TimeoutError(f"no job of {num_processes} processes formed at {coordinator} within {timeout_s:g} s")
    if outcome:
        raise outcome[0]
    return True


def check_coordinator_port(coordinator: str) -> None:
    """Refuses, in one line, a coordinator port that process 0 cannot listen on (JAX would segfault).

    Binds the port as JAX's coordinator will (every address, ``[::]`` or
    ``0.0.0.0``, with ``SO_REUSEADDR`` like gRPC, so that a port a
    finished job left in ``TIME_WAIT`` passes) and lets it go at once.

    Raises:
      ValueError: naming ``--coordinator``, the port and why it cannot be used.
    """
    _, port = _parse_coordinator(coordinator)
    families = (socket.AF_INET6, socket.AF_INET) if socket.has_ipv6 else (socket.AF_INET,)
    for family in families:
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 here: try IPv4
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
                return
            except OSError as error:
                raise ValueError(
                    f"--coordinator {coordinator!r}: process 0 cannot listen on port {port} "
                    f"({os.strerror(error.errno).lower() if error.errno else error}); choose a free port, "
                    f"the same for every process, or end what uses it") from None


def joining() -> bool:
    """Whether a :func:`initialize_distributed` that gave up is still connecting in the background.

    Such a process never joined its job and must end without leaving it
    (``os._exit``): JAX's own timeout would end it with SIGABRT.
    """
    return any(t.name == JOINING_THREAD and t.is_alive() for t in threading.enumerate())


def join_job(coordinator: str | None, num_processes: int | None, process_id: int | None, *,
             timeout_s: float = 300) -> bool:
    """:func:`initialize_distributed` for the command line: whether a job was joined.

    Raises:
      ValueError: one line, for bad values and for a job that could not be
        joined (coordinator unreachable, timeout).
    """
    if coordinator is None and num_processes is None and process_id is None:
        return False  # one process: JAX's backends are not even started
    try:
        return initialize_distributed(coordinator, num_processes, process_id, timeout_s=timeout_s)
    except TimeoutError:
        raise ValueError(f"--coordinator {coordinator!r}: no job of {num_processes} processes formed within "
                         f"{timeout_s:g} s (--coordinator-timeout); check that process 0 runs there, that "
                         f"HOST:PORT reaches it from here, and that all {num_processes} processes started") from None
    except RuntimeError as error:
        raise ValueError(f"--coordinator {coordinator!r}: could not join the job of {num_processes} "
                         f"processes: {str(error).splitlines()[0][:200]}") from None


def any_process(flag: bool) -> bool:
    """``True`` on every process when ``flag`` is true on any (e.g. a Ctrl-C).

    Multi-process runs must take the same branches in the same order; a
    decision made from one process's local state (a signal) is shared first.
    Every process must call this at the same point. One process: ``flag``.
    """
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
    return bool(np.max(flags))


def gather_to_host(tree, num_seeds: int | None = None):
    """Every leaf of ``tree`` as a NumPy array on this process, first ``num_seeds`` rows.

    Leaves held by devices of other processes are all-gathered
    (``multihost_utils.process_allgather``): in a multi-process run every
    process must call this, with the same tree, at the same point.

    Args:
      tree: a pytree of ``(S_pad, ...)`` arrays (sharded or not).
      num_seeds: keep rows ``[:num_seeds]`` (drop padding); ``None`` keeps all.

    Returns:
      The same pytree of ``(num_seeds, ...)`` NumPy arrays.
    """
    leaves, treedef = jax.tree.flatten(tree)
    local = [not isinstance(x, jax.Array) or x.is_fully_addressable for x in leaves]
    remote = [x for x, is_local in zip(leaves, local) if not is_local]
    if remote:
        from jax.experimental import multihost_utils

        gathered = iter(multihost_utils.process_allgather(remote, tiled=True))
    else:
        gathered = iter(())
    host = [np.asarray(jax.device_get(x) if is_local else next(gathered)) for x, is_local in zip(leaves, local)]
    if num_seeds is not None:
        host = [x[:num_seeds] for x in host]
    return jax.tree.unflatten(treedef, host)


def _words(texts: list[str], width: int) -> np.ndarray:
    """``texts`` as a ``(len(texts), width)`` uint8 array (UTF-8, cut and zero-padded): one shape on every process."""
    rows = np.zeros((len(texts), width), np.uint8)
    for i, text in enumerate(texts):
        raw = text.encode(errors="replace")[:width]
        rows[i, :len(raw)] = np.frombuffer(raw, np.uint8)
    return rows


def check_same_job(parts: dict[str, object]) -> None:
    """Refuses, on every process at once, a job whose processes would run different jobs.

    Every process gives the same names (what must agree: each config flag,
    the run's flags, the environment, the network, the package's sources) with
    its own values; their digests are all-gathered (one small array), and on
    a mismatch the values of the first part that differs. Every process must
    call this at the same point; one process: nothing to do.

    Args:
      parts: ``{name: value}``; values are compared by ``repr``.

    Raises:
      ValueError: the same line on every process, ``the processes of this job
        differ: <name> is <value> on process <i> but <value> on process 0; ...``.
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    names = list(parts)
    texts = [repr(parts[name]) for name in names]
    digests = [hashlib.sha256(f"{name}\0{text}".encode()).digest()[:8] for name, text in zip(names, texts)]
    whole = hashlib.sha256(b"".join(digests)).digest()[:8] + len(names).to_bytes(8, "little")
    everyone = multihost_utils.process_allgather(np.frombuffer(whole, np.uint32))  # (P, 4): one shape everywhere
    if (everyone == everyone[0]).all():
        return
    if (everyone[:, 2:] != everyone[0, 2:]).any():  # not even the same names: other code
        raise ValueError("the processes of this job run different versions of jax_reinforce (its parts to "
                         "compare differ); install the same code everywhere")
    own = np.frombuffer(b"".join(digests), np.uint32).reshape(len(names), 2)
    gathered = multihost_utils.process_allgather(own)  # (P, parts, 2)
    differ = np.flatnonzero((gathered != gathered[0]).any(axis=(0, 2)))
    first = int(differ[0])
    other = int(np.flatnonzero((gathered[:, first] != gathered[0, first]).any(axis=1))[0])
    values = multihost_utils.process_allgather(_words([texts[first]], 120))  # (P, 1, 120)
    shown = [bytes(values[p, 0]).rstrip(b"\0").decode(errors="replace") for p in (other, 0)]
    also = f" (and {', '.join(names[i] for i in differ[1:])})" if len(differ) > 1 else ""
    raise ValueError(f"the processes of this job differ: {names[first]} is {shown[0]} on process {other} but "
                     f"{shown[1]} on process 0{also}; give every process the same command, but its --process-id")


_FATAL = re.compile(rb"(?m)^F\d{4} |^\*\*\* Check failure|^terminate called")
_NATIVE_HOLD_S = 0.5  # a native error line is shown this late, unless a fatal end follows it


def _park_aborts() -> None:
    """SIGABRT waits ``sleep(6)`` seconds in C before ending the process, so a thread can end it first.

    C's ``sleep`` is async-signal-safe and takes the signal's number (6) as its seconds; Python's own
    handlers run too late (in the main thread, after the abort). Skipped where libc has no ``sleep``.
    """
    import ctypes  # only here: a job's start-up

    try:
        libc = ctypes.CDLL(None)
        libc.signal.restype, libc.signal.argtypes = ctypes.c_void_p, (ctypes.c_int, ctypes.c_void_p)
        libc.signal(signal.SIGABRT, ctypes.cast(libc.sleep, ctypes.c_void_p).value)
    except (OSError, AttributeError):
        pass


def watch_native_errors(on_fatal) -> None:
    """Native writes to stderr go through this process; a fatal end of JAX's C++ runtime calls ``on_fatal``.

    When a peer of a job dies, JAX's distributed runtime ends the others
    from its own threads: a fatal log line (``F...``), a C++ stack trace,
    then SIGABRT. Here file descriptor 2 becomes a pipe read by a thread,
    and ``sys.stderr`` writes to the original descriptor, so Python's own
    lines are untouched. The thread shows native output
    :data:`_NATIVE_HOLD_S` late; on a fatal line it drops what it holds and
    calls ``on_fatal(line)`` with that line in its thread, which must end
    the process (``os._exit``); SIGABRT meanwhile waits (:func:`_park_aborts`).
    """
    real = os.dup(2)
    reader, writer = os.pipe()
    sys.stderr.flush()
    os.dup2(writer, 2)
    os.close(writer)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding, errors=sys.stderr.errors,
                           closefd=False)
    _park_aborts()

    def forward():
        held, since = b"", None
        while True:
            wait = None if not held else max(0.0, since + _NATIVE_HOLD_S - time.monotonic())
            if not select.select([reader], [], [], wait)[0]:
                os.write(real, held)
                held, since = b"", None
                continue
            data = os.read(reader, 1 << 16)
            if not data:
                return
            held, since = held + data, since or time.monotonic()
            fatal = _FATAL.search(held)
            if fatal:
                on_fatal(held[fatal.start():].split(b"\n", 1)[0].decode(errors="replace"))

    threading.Thread(target=forward, name="native-stderr", daemon=True).start()


class JobLostError(RuntimeError):
    """A multi-process job lost a process: a collective operation with it failed (one line)."""


@contextlib.contextmanager
def job_lost_errors():
    """Within it, in a job, a collective's failure (a peer gone) is raised as a :class:`JobLostError`.

    JAX raises it (gloo's, on the CPU) as a ``ValueError`` or a
    ``JaxRuntimeError`` whose text names the transport; other errors pass.
    """
    try:
        yield
    except (ValueError, RuntimeError) as error:
        first = (str(error).splitlines() or [""])[0]
        if jax.process_count() == 1 or not re.search(r"Gloo|NCCL|Connection (closed|reset)|Socket closed", first):
            raise
        raise JobLostError(JOB_LOST.format(why=f"a collective operation failed: {first[:160]}")) from None


def leave_job(timeout_s: float = 3.0) -> None:
    """Leaves the job (``jax.distributed.shutdown``), waiting at most ``timeout_s`` for the others.

    The shutdown meets every process at a barrier; with a peer gone it would
    wait for the heartbeat timeout and then abort. The caller ends the
    process after this returns (``os._exit``), joined or not.
    """
    thread = threading.Thread(target=jax.distributed.shutdown, name="jax-distributed-shutdown", daemon=True)
    thread.start()
    thread.join(timeout_s)
