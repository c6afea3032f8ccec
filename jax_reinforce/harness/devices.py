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
"""

from __future__ import annotations

import math
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
]

# The fewest agents in one call of a device (the runner's smallest batch): a vmapped batch of one agent
# compiles to different (unbatched) dot products, so a lone agent would not be bitwise the same.
MIN_BATCH = 2
JOINING_THREAD = "jax-distributed-initialize"  # the thread that runs JAX's connect (see initialize_distributed)


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
