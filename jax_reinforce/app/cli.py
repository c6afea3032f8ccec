"""Command-line plumbing shared by the scripts: every failure is one line.

Bad input must end in a single line naming the flag, the value and what is
allowed, with exit code 2 and no traceback. argparse prints a usage block and
says some things twice; :class:`OneLineParser` turns every argparse error
into a :class:`UsageError` with a single clean sentence instead.
:func:`check_path` says in words why a path cannot be used (a name too long,
a symbolic-link loop, no permission) before any work;
:func:`check_jax_environment` refuses a JAX environment the tools cannot run
in before the run directory is made; :class:`SignalWatch` and
:func:`exit_on_signals` end the process on SIGINT or SIGTERM with one line,
even while the main thread waits in a long C call.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import stat
import sys
import threading
from pathlib import Path

from jax_reinforce.core.config import FLAGS, Config, parse_int
from jax_reinforce.core.env_defaults import ENV_DEFAULTS
from jax_reinforce.harness.compilation import use_cpu_cores
from jax_reinforce.harness.trackers import check_trackers

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "clean_argparse_message", "exit_now",
           "add_config_flags", "config_from_args", "typed_config_fields", "int_flag", "check_path", "check_out_path", "shown_path", "error_words",
           "os_error_line", "check_jax_environment", "start_jax", "SignalWatch", "exit_on_signals",
           "exit_with_line", "last_line", "EXIT_JOB_LOST", "ProgressLine", "add_tracker_flags", "trackers_from_args"]

EXIT_BAD_INPUT = 2
EXIT_JOB_LOST = 4  # a multi-process job lost a process (start_jax; devices.JobLostError)


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def clean_argparse_message(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's error message as one sentence: the flag said once, unknown flags with a hint."""
    named = re.match(r"^argument (\S+): (.*)$", message)
    if named and named.group(1) in named.group(2):  # "argument --x: x (--x) must ...": say it once
        message = named.group(2)
    unknown = re.match(r"^unrecognized arguments: (.*)$", message)
    if unknown:
        import difflib  # only here: the scripts import this module before anything else

        flags = [s for a in parser._actions for s in a.option_strings]
        first = unknown.group(1).split()[0].split("=", 1)[0]
        close = [f for f in flags if f.startswith(first)] or difflib.get_close_matches(first, flags, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}? " if close else ""
        message = f"unknown argument {unknown.group(1)!r}; {hint}see {parser.prog} --help for the flags allowed"
    return message


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`UsageError` naming the flag and what is allowed.

    A value that starts with ``-`` and then a number (``--lr -0,0.1``, ``--gamma -1e-3``, ``--seed -1``) is a
    value, not a flag: argparse's own test takes only ``-1`` and ``-0.5``, and answers "expected one argument"
    for the rest; no flag of these scripts starts with a digit, so none is shadowed.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?[0-9]|^-(inf|nan)", re.IGNORECASE)

    def error(self, message):
        raise UsageError(clean_argparse_message(self, message))


def exit_now(code: int):
    """Ends a script's process with ``code`` at once, skipping JAX's clean-up at exit.

    JAX's ``atexit`` handler destroys its backends and clears its caches, a
    measurable share of a warm one-seed run (``docs/performance.md``). The scripts
    close every file they write (each written whole, then renamed), so once
    the standard streams are flushed nothing is left to do. In a
    multi-process job (``jax.distributed``) the process exits normally, so
    that it leaves the job cleanly; a failed one (``code != 0``) leaves it
    within seconds (:func:`jax_reinforce.harness.devices.leave_job`), then
    exits; a job that lost a process (:data:`EXIT_JOB_LOST`) exits at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    jax = sys.modules.get("jax")
    distributed = sys.modules.get("jax_reinforce.harness.devices")
    joining = distributed is not None and distributed.joining()  # a join that timed out: never leave it "cleanly"
    if jax is not None and jax.distributed.is_initialized() and not joining:
        if code == 0:
            sys.exit(code)
        if code != EXIT_JOB_LOST:  # a failed job, but its processes may all be here: leave it, in seconds
            distributed.leave_job()
    os._exit(code)


def _shown_default(value) -> str:
    """A default as the command line spells it: ``8``, ``64,64``, ``none``, ``0.1``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def add_config_flags(parser: argparse.ArgumentParser, title: str = "config (every jax_reinforce.Config field)"):
    """One flag per :class:`jax_reinforce.Config` field, from :data:`jax_reinforce.core.config.FLAGS`.

    The flags keep the typed text (``None`` when not typed);
    :func:`config_from_args` turns them into a ``Config``, whose checks give
    the one error message for a bad value.
    """
    defaults = Config()
    per_env = {field for setting in ENV_DEFAULTS.values() for field in setting}
    group = parser.add_argument_group(title)
    for flag in FLAGS:
        default = getattr(defaults, flag.field)
        shown = default if isinstance(default, bool) else _shown_default(default)
        if flag.field in per_env:  # jax_reinforce.core.env_defaults: the environment's own
            shown = f"the environment's; {defaults.env}: {shown}"
        help_text = f"{flag.help} (default: {shown})"
        if isinstance(default, bool):  # --flag / --no-flag
            group.add_argument(flag.flag, dest=flag.field, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(flag.flag, dest=flag.field, default=None, metavar=flag.field.upper(), help=help_text)
    return group


def flags_table() -> str:
    """The markdown table of every config flag: flag, CartPole-v1's default, meaning, what it allows.

    Generated from :class:`jax_reinforce.Config`'s fields (``docs/cli.md`` holds it between
    ``<!-- flags-table:start -->`` and ``<!-- flags-table:end -->``; a test keeps the two equal).
    """
    defaults = Config()
    lines = ["| flag | default (CartPole-v1) | meaning | allowed |", "| --- | --- | --- | --- |"]
    for flag in FLAGS:
        default = getattr(defaults, flag.field)
        name = f"`{flag.flag}` / `--no-{flag.flag[2:]}`" if isinstance(default, bool) else f"`{flag.flag}`"
        shown = ("on" if default else "off") if isinstance(default, bool) else f"`{_shown_default(default)}`"
        lines.append(f"| {name} | {shown} | {flag.help} | {flag.allowed} |")
    return "\n".join(lines) + "\n"


def config_from_args(args):
    """The :class:`jax_reinforce.Config` of the typed config flags (the others at their defaults).

    Raises:
      ValueError: naming the field, its flag, the value and what is allowed.
    """

    return Config.from_flags({f.field: getattr(args, f.field) for f in FLAGS if getattr(args, f.field, None) is not None})


def typed_config_fields(args) -> set[str]:
    """The :class:`jax_reinforce.Config` fields whose flags were typed."""

    return {f.field for f in FLAGS if getattr(args, f.field, None) is not None}


def int_flag(flag: str, low: int, high: int | None = None):
    """An argparse ``type``: an integer in ``[low, high]``, else one message naming ``flag``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text):
        try:
            value = parse_int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}; got {text!r}")
        return value

    return parse


# ------------------------------------------------------------------ paths


def error_words(number: int) -> str:
    """``os.strerror(number)`` in lower case: ``file name too long``, ``too many levels of symbolic links``."""
    text = os.strerror(number)
    return text[:1].lower() + text[1:]


def shown_path(path) -> str:
    """``repr`` of ``path``, at most about 100 characters (a 300-byte name would fill the line)."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    return repr(text if len(text) <= 100 else f"{text[:56]}...{text[-40:]}")


def _name_max(path: str) -> int:
    """The longest file name, in bytes, where ``path`` would be (``NAME_MAX``; 255 if not known)."""
    directory = os.path.dirname(os.path.abspath(path)) or os.sep
    while directory != os.path.dirname(directory) and not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def path_problem(path, *, write: bool = False) -> str | None:
    """Why ``path`` cannot be used, in words, or ``None``; changes nothing on disk.

    Finds what the first ``open`` or ``mkdir`` would fail on with a message
    that says little (``File exists`` for a link loop, a traceback for a long
    name), and says it as ``os.strerror`` does: a component longer than the
    filesystem allows (ENAMETOOLONG), a symbolic-link loop (ELOOP), a path
    that may not be searched, read or (``write``) written (EACCES, or EROFS
    on a read-only file system; for a missing path, its nearest existing
    directory), a symbolic link to nothing.
    A missing path, or one under a file, is left to the caller's own checks.
    """
    raw = os.fsencode(path)
    if len(raw) >= 4096:  # PATH_MAX on Linux, with its final NUL
        return f"{error_words(errno.ENAMETOOLONG)} (a path of {len(raw)} bytes; at most 4095)"
    longest, limit = max(raw.split(b"/"), key=len), _name_max(os.fsdecode(raw))
    if len(longest) > limit:
        return f"{error_words(errno.ENAMETOOLONG)} (a path component of {len(longest)} bytes; at most {limit})"
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):  # missing, or under a file: the caller's own checks say so
        is_dir = None
    except OSError as error:
        return error_words(error.errno)
    if is_dir is not None:  # it exists
        wanted = (os.R_OK | os.X_OK if is_dir else os.R_OK) | (os.W_OK if write else 0)
        return None if os.access(path, wanted) else _denied(path, wanted)
    missing = os.path.abspath(path)
    while not os.path.lexists(missing) or os.path.islink(missing) and not os.path.exists(missing):
        if os.path.islink(missing):
            target = f"a symbolic link to {shown_path(os.readlink(missing))}, which does not exist"
            return target if missing == os.path.abspath(path) else f"{shown_path(missing)} is {target}"
        missing = os.path.dirname(missing)
    if not write or not os.path.isdir(missing):
        return None
    return None if os.access(missing, os.W_OK | os.X_OK) else f"{_denied(missing, os.W_OK | os.X_OK)} ({shown_path(missing)})"


def _denied(path, wanted: int) -> str:
    """Why ``os.access(path, wanted)`` failed: a read-only file system (EROFS) where only the write was, else EACCES."""
    try:
        read_only = bool(wanted & os.W_OK and os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return error_words(errno.EROFS if read_only and os.access(path, wanted & ~os.W_OK) else errno.EACCES)


def check_path(flag: str, path, *, write: bool = False) -> None:
    """Raises :class:`UsageError` ``<flag> '<path>': <why, in words>`` when :func:`path_problem` finds one."""
    problem = path_problem(path, write=write)
    if problem is not None:
        raise UsageError(f"{flag} {shown_path(path)}: {problem}")


def check_out_path(out, *, resume: bool = False) -> None:
    """``train.py --out``: the run directory (to write) and, on ``resume``, the files read from it, usable.

    Raises:
      UsageError: ``--out '<path>': <why>`` (see :func:`path_problem`).
    """
    if out is None:
        return
    check_path("--out", out, write=True)
    if resume:
        for name in ("checkpoint.npz", "run.json", "config.json"):
            if os.path.lexists(os.path.join(out, name)):
                check_path("--out", os.path.join(out, name))


def os_error_line(error: OSError, path=None) -> str:
    """An ``OSError`` as ``'<file>': <reason in words>`` (``path`` where the error names no file)."""
    where = error.filename if error.filename is not None else path
    reason = error_words(error.errno) if error.errno else str(error)
    return f"{shown_path(where)}: {reason}" if where is not None else reason


# ------------------------------------------------------------------ the JAX environment

SUPPORTED_PRNG_IMPL = "threefry2x32"  # the trainer's keys are uint32[2] (agent_keys, checkpoints)


def _jax_settings_problem() -> str | None:
    """What is wrong with the ``JAX_*`` settings read at import, without starting any backend."""
    try:
        import jax
    except ValueError as error:  # JAX refuses a value it cannot parse, at import
        named = re.search(r"JAX flag (\w+)|environment '(\w+)'", str(error))
        variable = (named.group(1) or named.group(2)).upper() if named else None
        if variable is None:
            return f"JAX refuses its environment: {str(error).splitlines()[0]}"
        return f"{variable}={os.environ.get(variable)!r} is not a value JAX accepts ({str(error).splitlines()[0]})"
    impl = jax.config.jax_default_prng_impl
    if impl != SUPPORTED_PRNG_IMPL:
        return (f"JAX_DEFAULT_PRNG_IMPL={impl!r}: the trainer supports only {SUPPORTED_PRNG_IMPL!r} keys "
                f"(uint32[2]); unset JAX_DEFAULT_PRNG_IMPL or set it to {SUPPORTED_PRNG_IMPL}")
    count = jax.config.jax_num_cpu_devices
    if count == 0 or count < -1:
        return (f"JAX_NUM_CPU_DEVICES={os.environ.get('JAX_NUM_CPU_DEVICES', str(count))!r} must be an integer "
                f">= 1 (the CPU devices JAX exposes), or unset")
    forced = re.findall(r"--xla_force_host_platform_device_count=(\S*)", os.environ.get("XLA_FLAGS", ""))
    if forced and not (re.fullmatch("[0-9]+", forced[-1]) and int(forced[-1]) >= 1):
        return (f"XLA_FLAGS's --xla_force_host_platform_device_count={forced[-1]} must be an integer >= 1 "
                f"(the CPU devices JAX exposes)")
    return None


def _backend_problem(error: BaseException) -> str:
    first = (str(error).splitlines() or [""])[0]
    first = re.sub(r"\.? \(set JAX_PLATFORMS=.*", "", first)[:300] or type(error).__name__  # JAX's hint, replaced
    platforms = os.environ.get("JAX_PLATFORMS")
    flags = f"; XLA_FLAGS={os.environ['XLA_FLAGS']!r} may be why" if os.environ.get("XLA_FLAGS") else ""
    if platforms and platforms.strip().lower() != "cpu":
        return (f"JAX_PLATFORMS={platforms!r}: JAX cannot start that platform here ({first}); allowed: platforms "
                f"this machine and jaxlib have, e.g. JAX_PLATFORMS=cpu, or JAX_PLATFORMS unset for JAX's choice{flags}")
    return f"JAX cannot start its backends ({first}){flags}; JAX_PLATFORMS=cpu uses the CPU alone"


def check_jax_environment(*, start_backends: bool = True) -> None:
    """Refuses, in one line, a JAX environment the tools cannot run in, before any file is touched.

    JAX reads ``JAX_*`` variables when it is imported and starts its backends
    on first use; a bad value otherwise surfaces as a long traceback deep in
    the first computation, after the run directory was made. Refused:

    - a value JAX cannot parse (``JAX_NUM_CPU_DEVICES=x``, ``JAX_ENABLE_X64=maybe``);
    - ``JAX_DEFAULT_PRNG_IMPL`` other than ``threefry2x32``: the trainer's keys
      are ``uint32[2]`` (``agent_keys``, the checkpoints);
    - ``JAX_NUM_CPU_DEVICES`` below 1 (but ``-1``, JAX's "the default"), and
      ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` below 1;
    - with ``start_backends``: ``JAX_PLATFORMS`` naming a platform that cannot
      start here (``gpu`` without one, ``junk``): this starts JAX's backends.

    ``start_backends=False`` starts nothing: call it before
    ``jax.distributed.initialize`` and
    :func:`jax_reinforce.harness.compilation.use_cpu_cores`, which must run first.

    Raises:
      UsageError: naming the variable, its value and what is allowed.
    """
    problem = _jax_settings_problem()
    if problem is not None:
        raise UsageError(problem)
    if start_backends:
        import jax

        try:
            jax.devices()
        except Exception as error:  # noqa: BLE001 - RuntimeError, or a plugin's own assertion
            raise UsageError(_backend_problem(error)) from None


def start_jax(coordinator=None, num_processes=None, process_id=None, *, timeout_s: float = 300,
              prog: str = "train.py") -> bool:
    """Starts JAX for a script, in the order it needs; a bad environment or job in one line.

    :func:`check_jax_environment` without starting anything; then joins the
    job (:func:`jax_reinforce.harness.devices.join_job`, giving up after
    ``timeout_s``) or, in one process, exposes one CPU device per core
    (:func:`jax_reinforce.harness.compilation.use_cpu_cores`), both before the
    backends start; then starts the backends. In a job, a peer's death ends
    this process with one line, ``<prog>: error: the job lost a process ...``,
    and exit code :data:`EXIT_JOB_LOST`
    (:func:`jax_reinforce.harness.devices.watch_native_errors`).

    Returns:
      Whether a multi-process job was joined.

    Raises:
      UsageError, ValueError: one line.
    """
    check_jax_environment(start_backends=False)
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.harness.devices import JOB_LOST, join_job, watch_native_errors

    joined = join_job(coordinator, num_processes, process_id, timeout_s=timeout_s)
    if joined:  # a peer that dies ends this process in one line of ours, not JAX's C++ abort
        def on_fatal(line: str):
            lost = re.search("distributed service|coordination service|heartbeat", line)
            why = (f"another process ended, or process 0's coordinator at {coordinator} is gone" if lost
                   else f"JAX's runtime failed: {re.sub(r'^F[0-9]{4} [^]]*] ', '', line)[:200]}")
            exit_with_line(f"{prog}: error: {JOB_LOST.format(why=why)}", EXIT_JOB_LOST)

        watch_native_errors(on_fatal)
    else:
        try:
            use_cpu_cores()  # may start the backends (when the device count was set outside)
        except Exception as error:  # noqa: BLE001 - as check_jax_environment
            raise UsageError(_backend_problem(error)) from None
    check_jax_environment()
    return joined


# ------------------------------------------------------------------ signals


def exit_with_line(line: str, code: int) -> None:
    """Writes ``line`` to stderr and ends the process with ``code`` at once, from any thread.

    ``os.write`` takes no lock that the main thread, stopped anywhere, could
    hold; ``os._exit`` runs no clean-up: every file the tools write is
    written whole (a temporary file, then a rename), so none is left half done.
    """
    last_line(line)
    os._exit(code)


_LAST_LINE = threading.RLock()  # held, never released, by the thread that writes the process's last line


def last_line(line: str) -> None:
    """Writes ``line`` to stderr as the process's last line: from any other thread, waits for the end.

    Two threads may end the process at once (an error in the main thread, a
    signal or a lost peer in another): the first one's line is the only one.
    """
    _LAST_LINE.acquire()
    start = "\n" if sys.stderr.isatty() else ""  # a progress bar may be mid-line
    try:
        fd = sys.stderr.fileno()  # the terminal's, also where fd 2 is a pipe (devices.watch_native_errors)
    except (AttributeError, OSError, ValueError):  # captured (a test): no lock of it can be held here
        print(line, file=sys.stderr, flush=True)
        return
    os.write(fd, f"{start}{line}\n".encode(errors="replace"))  # takes no lock another thread could hold


class SignalWatch:
    """Acts on SIGINT and SIGTERM within milliseconds, whatever the main thread is doing.

    Python runs a signal handler in the main thread only, between bytecodes:
    not while that thread waits in a long C call (XLA compiling a program,
    ``jax.distributed`` connecting), which may last minutes. Python's C-level
    handler does write the signal's number to the wakeup file descriptor
    (``signal.set_wakeup_fd``) at once, though; a daemon thread blocked on
    that descriptor calls ``on_signal(signum)`` (in that thread). The Python
    handlers installed meanwhile do nothing (no ``KeyboardInterrupt``):
    ``on_signal`` decides everything, typically recording a request or
    :func:`exit_with_line`.

    A context manager; enter it in the main thread. On exit the previous
    handlers and wakeup descriptor come back, so watches nest.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_signal):
        self.on_signal = on_signal
        self._previous, self._previous_fd, self._sockets = {}, -1, None

    def __enter__(self):
        import socket

        reader, writer = socket.socketpair()
        writer.setblocking(False)  # set_wakeup_fd wants a non-blocking descriptor
        self._sockets = reader, writer
        # The descriptor before the handlers, so that no signal falls between them unseen.
        self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._previous = {s: signal.signal(s, _do_nothing) for s in self.SIGNALS}
        threading.Thread(target=self._watch, args=(reader,), name="signal-watch", daemon=True).start()
        return self

    def _watch(self, reader):
        with reader:
            while True:
                data = reader.recv(64)
                for signum in data:
                    if signum == 0:  # __exit__'s sentinel
                        return
                    if signum in self.SIGNALS:
                        try:
                            self.on_signal(signal.Signals(signum))
                        except BaseException as error:  # noqa: BLE001 - a watch that died would ignore signals
                            exit_with_line(f"{type(error).__name__}: {error}", 128 + signum)

    def __exit__(self, *exc):
        signal.set_wakeup_fd(self._previous_fd, warn_on_full_buffer=False)
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        reader, writer = self._sockets
        writer.setblocking(True)
        writer.send(b"\0")
        writer.close()
        return False


def _do_nothing(_signum, _frame):
    """The Python handler under a :class:`SignalWatch`: its thread acts, not the main thread."""


def exit_on_signals(prog: str, message: str = "during start-up; nothing was trained") -> SignalWatch:
    """A script's first line of defence: SIGINT or SIGTERM exits at once, 130 or 143, with one line.

    ``<prog>: interrupted by SIGINT <message>``, however busy the main
    thread (see :class:`SignalWatch`). The returned watch stays for the
    life of the process; set its ``message`` as the script goes on. Call it
    before any heavy import, from ``if __name__ == "__main__"`` (never on
    import: a notebook or a test keeps its own Ctrl-C). A training loop
    installs its own policy over it (:class:`jax_reinforce.app.run.StopSignals`).
    """

    def on_signal(signum):
        exit_with_line(f"{prog}: interrupted by {signum.name} {watch.message}", 128 + signum)

    watch = SignalWatch(on_signal)
    watch.message = message
    return watch.__enter__()


class ProgressLine:
    """The progress line of ``train.py`` on stderr: every 0.2 s on a terminal, every 2 s otherwise.

    Called with :func:`jax_reinforce.train_run`'s progress dict; a sweep's
    line also counts the settings whose every seed has solved.
    """

    def __init__(self):
        import time

        self._clock = time.perf_counter
        self.tty, self.last = sys.stderr.isatty(), 0.0

    def __call__(self, p: dict):
        now = self._clock()
        if now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        filled = int(24 * min(p["iteration"] / p["total"], 1.0))
        settings = (f"  settings solved {p['settings_solved']}/{p['num_settings']}"
                    if p.get("num_settings", 1) > 1 else "")
        text = (f"[{'#' * filled}{'-' * (24 - filled)}] iter {p['iteration']}/{p['total']}  median return "
                f"{p['median_return']:7.1f}  solved {p['solved']}/{p['num_seeds']}{settings}  "
                f"{p['env_steps_per_s'] / 1e6:6.2f}M env-steps/s")
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self):
        if self.tty and self.last:
            print(file=sys.stderr)


def add_tracker_flags(parser) -> None:
    """``--tensorboard``, ``--wandb`` and W&B's project, group and run name (:mod:`jax_reinforce.harness.trackers`)."""
    t = parser.add_argument_group("experiment trackers (opt-in; a resumed run continues its own)")
    t.add_argument("--tensorboard", action="store_true", default=None,
                   help='TensorBoard event files in RUN_DIR/tensorboard (pip install -e ".[tensorboard]")')
    t.add_argument("--wandb", action="store_true", default=None,
                   help='log to Weights & Biases, files in RUN_DIR/wandb (pip install -e ".[wandb]"; '
                        "WANDB_MODE=offline logs without a network)")
    t.add_argument("--wandb-project", default=None, help="W&B project (default jax-reinforce)")
    t.add_argument("--wandb-group", default=None, help="W&B group (e.g. one per sweep)")
    t.add_argument("--wandb-name", default=None, help="W&B run name (default: the run directory's name)")


def trackers_from_args(args) -> tuple:
    """``(tensorboard, wandb)`` for :func:`jax_reinforce.train_run` from :func:`add_tracker_flags`' flags.

    ``None`` where a flag was not given (a resume then continues the run's
    own trackers). Refuses W&B options without ``--wandb``, and a missing
    extra, in one line (before any work; a default run imports nothing).
    """
    options = {"project": args.wandb_project, "group": args.wandb_group, "name": args.wandb_name}
    if not args.wandb and any(v is not None for v in options.values()):
        raise UsageError("--wandb-project, --wandb-group and --wandb-name need --wandb")
    wandb = None
    if args.wandb:
        wandb = {"project": args.wandb_project or "jax-reinforce", "group": args.wandb_group,
                 "name": args.wandb_name or (Path(args.out).name if args.out else None)}
    if args.tensorboard or args.wandb:
        check_trackers(tensorboard=bool(args.tensorboard), wandb=bool(args.wandb))
    return args.tensorboard, wandb

