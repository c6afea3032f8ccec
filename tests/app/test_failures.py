"""Every failure is one line: paths, the JAX environment, a signal at any moment, the coordinator wait.

Real ``scripts/train.py`` and ``scripts/evaluate.py`` processes on the CPU,
except for a full disk, simulated in-process by making the write fail with
ENOSPC. Permissions are tested with ``chmod``; as root (whom ``chmod`` does
not bind) the process runs under ``setpriv`` without the capabilities that
override file permissions.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from scripts_in_process import load_script, run_script_main

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
EVALUATE = ROOT / "scripts" / "evaluate.py"
TINY = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--iterations", "3", "--quiet"]
LONG_NAME = "n" * 300  # one path component over the 255 bytes of NAME_MAX


@pytest.fixture(scope="module")
def script_env():
    """CPU only, the suite's compilation cache (``tests/conftest.py``)."""
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory, script_env):
    out = tmp_path_factory.mktemp("existing") / "run"
    result = run(TRAIN, [*TINY, "--eval-episodes", "2", "--out", out], script_env)
    assert result.returncode == 0, result.stderr
    return out


def run(script, args, env, prefix=(), timeout=120):
    return subprocess.run([*prefix, sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def assert_one_line(result, code, *fragments, prog="train.py"):
    """Exit ``code``, exactly one line on stderr, ``<prog>: error: ...`` with ``fragments``, no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------ paths


@pytest.fixture()
def odd_paths(tmp_path):
    """A symbolic-link loop, a link to nothing, and a name too long, under tmp_path."""
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return {"loop": tmp_path / "loop-a", "long": tmp_path / LONG_NAME, "dangling": tmp_path / "dangling"}


LOOP, LONG = "too many levels of symbolic links", "file name too long (a path component of 300 bytes; at most 255)"
TRAIN_PATHS = [
    ([], "long", LONG),
    (["--resume"], "long", LONG),
    ([], "loop", LOOP),  # was "File exists"
    (["--resume"], "loop", LOOP),  # was "it does not exist"
    ([], "dangling", "a symbolic link to"),  # was "File exists"
]


@pytest.mark.parametrize("flags, which, reason", TRAIN_PATHS, ids=[f"{' '.join(f)} {w}".strip() for f, w, _ in TRAIN_PATHS])
def test_train_out_that_cannot_be_a_run_directory(flags, which, reason, odd_paths, tmp_path, script_env):
    before = sorted(tmp_path.iterdir())
    out = odd_paths[which]
    result = run(TRAIN, [*TINY, *flags, "--out", out], script_env)
    assert_one_line(result, 2, "--out '", reason)
    assert str(out)[:40] in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_evaluate_paths_that_cannot_be_used(existing_run, odd_paths, tmp_path, capfd, monkeypatch):
    evaluate = load_script(EVALUATE)  # its main in this process (scripts_in_process)
    cases = [
        ([odd_paths["long"]], ["RUN_DIR '", LONG]),
        ([odd_paths["loop"]], ["RUN_DIR '", str(odd_paths["loop"]), LOOP]),
        ([existing_run, "--gif", tmp_path / f"{LONG_NAME}.gif"], ["--gif '", "file name too long"]),
        ([existing_run, "--gif", odd_paths["loop"] / "x.gif"], ["--gif '", LOOP]),  # was "does not exist"
        ([existing_run, "--gif", odd_paths["dangling"] / "x.gif"], ["--gif '", "a symbolic link to"]),
    ]
    for args, fragments in cases:
        assert_one_line(run_script_main(evaluate, [*args, "--episodes", "1"], capfd, monkeypatch), 2, *fragments,
                        prog="evaluate.py")


def without_root_powers():
    """A command prefix under which ``chmod`` binds: none for a user; ``setpriv`` dropping root's overrides."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: file permissions do not bind")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_permission_denied_is_said_in_words(existing_run, tmp_path, script_env):
    prefix = without_root_powers()
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    locked_run = tmp_path / "locked-run"
    shutil.copytree(existing_run, locked_run)
    unreadable_run = tmp_path / "unreadable-run"
    shutil.copytree(existing_run, unreadable_run)
    read_only.chmod(0o555)
    (locked_run / "checkpoint.npz").chmod(0o000)
    unreadable_run.chmod(0o000)
    try:
        cases = [
            (TRAIN, [*TINY, "--out", read_only / "run"], ["--out '", "permission denied"]),
            (TRAIN, ["--resume", "--out", locked_run, "--quiet"], ["checkpoint.npz'", "permission denied"]),
            (EVALUATE, [locked_run], ["RUN_DIR '", "checkpoint.npz'", "permission denied"]),  # was "not a .npz"
            (EVALUATE, [unreadable_run], ["RUN_DIR '", "permission denied"]),  # was a traceback
            (EVALUATE, [existing_run, "--gif", read_only / "x.gif"], ["--gif '", "permission denied"]),
        ]
        for script, args, fragments in cases:
            assert_one_line(run(script, args, script_env, prefix), 2, *fragments, prog=script.name)
    finally:
        read_only.chmod(0o755)
        unreadable_run.chmod(0o755)
        (locked_run / "checkpoint.npz").chmod(0o644)
    assert list(read_only.iterdir()) == []


def test_a_read_only_file_system_is_said_in_words(tmp_path, script_env):
    """Issue 26, item 20: a read-only file system was reported as "permission denied" (os.access says only no)."""
    mount, unshare = tmp_path / "read-only-fs", shutil.which("unshare")
    mount.mkdir()
    in_namespace = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
                    'mount -t tmpfs -o ro none "$0" && exec "$@"', str(mount)]
    if unshare is None or subprocess.run([*in_namespace, "true"], capture_output=True).returncode != 0:
        pytest.skip("no user and mount namespaces here to mount a read-only file system in")
    for out in (mount, mount / "run"):
        result = run(TRAIN, [*TINY, "--out", out], script_env, prefix=in_namespace)
        assert_one_line(result, 2, f"--out {str(out)!r}: read-only file system")
        assert "permission denied" not in result.stderr


def full_disk(*_args, **_kwargs):
    """What a write raises on a full disk (``f.write`` names no file)."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_training_is_one_line(tmp_path, monkeypatch, capsys):
    import jax_reinforce.harness.checkpoint

    train = load_script(TRAIN)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(jax_reinforce.harness.checkpoint, "atomic_write_bytes", full_disk)
    out = tmp_path / "run"
    code = train.main([*TINY, "--out", str(out), "--eval-episodes", "0", "--no-compile-cache"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1, err
    assert err[-1] == (f"train.py: error: cannot write the run: '{out}': no space left on device; every file is "
                       f"written whole, so the last checkpoint in {out} (if any) is intact"), err
    assert not any("Traceback" in line for line in err)


def test_a_full_disk_while_writing_the_gif_is_one_line(existing_run, tmp_path, monkeypatch, capsys):
    import jax_reinforce.harness.reporting

    evaluate = load_script(EVALUATE)
    monkeypatch.setattr(jax_reinforce.harness.reporting, "atomic_write_bytes", full_disk)
    gif = tmp_path / "episode.gif"
    code = evaluate.main([str(existing_run), "--episodes", "1", "--gif", str(gif)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1, err
    assert err == [f"evaluate.py: error: cannot write --gif: '{gif}': no space left on device; nothing was written"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the JAX environment

BAD_JAX_ENVIRONMENTS = [
    ({"JAX_PLATFORMS": "junk"}, ["JAX_PLATFORMS='junk'", "JAX_PLATFORMS=cpu"]),
    ({"JAX_NUM_CPU_DEVICES": "0"}, ["JAX_NUM_CPU_DEVICES='0'", ">= 1"]),
    ({"JAX_NUM_CPU_DEVICES": "x"}, ["JAX_NUM_CPU_DEVICES='x'"]),
    ({"JAX_DEFAULT_PRNG_IMPL": "rbg"}, ["JAX_DEFAULT_PRNG_IMPL='rbg'", "threefry2x32"]),
    ({"XLA_FLAGS": "--xla_force_host_platform_device_count=0"}, ["--xla_force_host_platform_device_count=0", ">= 1"]),
]


@pytest.mark.parametrize("variables, fragments", [
    *BAD_JAX_ENVIRONMENTS,
    ({"JAX_PLATFORMS": "gpu"}, ["JAX_PLATFORMS='gpu'", "cannot start"]),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "")
def test_a_bad_jax_environment_is_refused_before_the_run_directory(variables, fragments, tmp_path, script_env):
    if variables.get("JAX_PLATFORMS") == "gpu":
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            pytest.skip("a GPU is here")
    out = tmp_path / "run"
    result = run(TRAIN, [*TINY, "--out", out], {**script_env, **variables})
    assert_one_line(result, 2, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("variables, fragments", BAD_JAX_ENVIRONMENTS[::3])
def test_evaluate_refuses_a_bad_jax_environment(variables, fragments, existing_run, script_env):
    result = run(EVALUATE, [existing_run, "--episodes", "1"], {**script_env, **variables})
    assert_one_line(result, 2, *fragments, prog="evaluate.py")


# ------------------------------------------------------------------ signals


class Script:
    """A script running in the background; its stderr collected line by line."""

    def __init__(self, script, args, env):
        self.proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines, self.started = [], time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, (self.proc.returncode, self.lines)
            assert time.monotonic() < deadline, f"no line with {text!r} within {timeout} s: {self.lines}"
            time.sleep(0.01)

    def wait_for_handlers(self, timeout=30):
        """Until the script has installed its own handlers (SIGTERM caught, in /proc/PID/status)."""
        status = Path(f"/proc/{self.proc.pid}/status")
        if not status.parent.exists():
            pytest.skip("no /proc")
        deadline = time.monotonic() + timeout
        while True:
            caught = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("SigCgt:")]
            if caught and int(caught[0], 16) >> (signal.SIGTERM - 1) & 1:
                return
            assert time.monotonic() < deadline
            time.sleep(0.0005)

    def stop_with(self, signum, within: float, times: int = 1) -> str:
        """Sends ``signum``; asserts an exit within ``within`` seconds with one last line; returns it."""
        sent = time.monotonic()
        for _ in range(times):
            self.proc.send_signal(signum)
            time.sleep(0.2)
        try:
            self.proc.wait(timeout=within + 60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(10)
        took = time.monotonic() - sent
        stderr = "\n".join(self.lines)
        assert self.proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], (self.proc.returncode, stderr)
        assert "Traceback" not in stderr and self.lines, stderr
        assert took < within, f"exited {took:.1f} s after {signal.Signals(signum).name}: {stderr}"
        return self.lines[-1]


@pytest.mark.parametrize("signum, moment", [
    (signal.SIGINT, "first moment"), (signal.SIGTERM, "first moment"), (signal.SIGINT, 0.3), (signal.SIGTERM, 0.3),
], ids=["SIGINT-first-moment", "SIGTERM-first-moment", "SIGINT-0.3s", "SIGTERM-0.3s"])
def test_a_signal_during_start_up_is_one_line(signum, moment, tmp_path, script_env):
    """From the script's first lines on (before them Python starts itself, ~30 ms, with its own defaults).

    At 0.3 s after them the script is importing JAX (about 0.7 s on a warm machine), one second before any training.
    """
    script = Script(TRAIN, [*TINY, "--out", tmp_path / "run"], script_env)
    script.wait_for_handlers()  # before them Python's own defaults hold (a loaded machine may take 0.3 s to get there)
    if moment != "first moment":
        time.sleep(moment)
    last = script.stop_with(signum, within=3)
    assert last == f"train.py: interrupted by {signal.Signals(signum).name} during start-up; nothing was trained"
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


# Twelve layers, JAX's cache off: compiling the training program takes 10-20 s on a 2-core machine.
COLD = ["--hidden", ",".join(["8"] * 12), "--num-envs", "8", "--num-seeds", "2", "--iterations", "50",
        "--no-stop-when-solved", "--eval-episodes", "0", "--quiet", "--no-compile-cache"]


def test_a_signal_while_compiling_ends_it_within_seconds(tmp_path, script_env):
    """The main thread is inside XLA, where Python's handlers do not run: the run exits all the same."""
    script = Script(TRAIN, [*COLD, "--out", tmp_path / "run"], script_env)
    script.wait_for_line("devices: ")  # the training program is compiled next
    time.sleep(1.0)
    last = script.stop_with(signal.SIGINT, within=9)
    assert last.startswith("train.py: "), last
    assert (" stopped by SIGINT at iteration 0; checkpoint saved" in last
            or "SIGINT: no point to stop at within 5 s (compiling" in last), last
    assert (tmp_path / "run" / "checkpoint.npz").exists()  # saved before compiling, kept


def test_a_second_signal_while_compiling_exits_at_once(tmp_path, script_env):
    script = Script(TRAIN, [*COLD, "--out", tmp_path / "run"], script_env)
    script.wait_for_line("devices: ")
    time.sleep(0.5)
    last = script.stop_with(signal.SIGTERM, within=2, times=2)
    assert last == "train.py: second SIGTERM: exiting now; the last checkpoint is kept"
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_signal_during_the_final_evaluation_ends_it(tmp_path, script_env):
    """Evaluation comes after training's last check for a signal; today's code ignored one there."""
    out = tmp_path / "run"
    script = Script(TRAIN, [*TINY, "--eval-episodes", "20000", "--out", out], script_env)
    deadline = time.monotonic() + 120
    while not (out / "learning_curve.png").exists():  # written just before the evaluation starts
        assert script.proc.poll() is None and time.monotonic() < deadline, script.lines
        time.sleep(0.005)
    last = script.stop_with(signal.SIGINT, within=8)
    assert last.startswith("train.py: ") and "SIGINT" in last, last
    assert not (out / "summary.json").exists() or "as the run finished" in last


def test_evaluate_is_stopped_by_a_signal_in_one_line(existing_run, script_env):
    """Signalled from its handlers' first moment on, while 100,000 episodes per seed keep it busy (~10 s)."""
    script = Script(EVALUATE, [existing_run, "--episodes", "100000"], script_env)
    script.wait_for_handlers()
    time.sleep(1.0)
    last = script.stop_with(signal.SIGINT, within=3)
    assert last == "evaluate.py: interrupted by SIGINT during evaluation; nothing was written"


# ------------------------------------------------------------------ the coordinator

NO_COORDINATOR = ["--coordinator", "nosuchhost.invalid:12355", "--num-processes", "2", "--process-id", "1"]


def test_the_coordinator_wait_gives_up_after_its_timeout(tmp_path, script_env):
    started = time.monotonic()
    result = run(TRAIN, [*TINY, *NO_COORDINATOR, "--coordinator-timeout", "3", "--out", tmp_path / "run"],
                 script_env, timeout=60)
    took = time.monotonic() - started
    assert_one_line(result, 2, "--coordinator 'nosuchhost.invalid:12355'", "within 3 s (--coordinator-timeout)")
    assert 3 <= took < 15, took
    assert not (tmp_path / "run").exists()


def test_ctrl_c_during_the_coordinator_wait(tmp_path, script_env):
    script = Script(TRAIN, [*TINY, *NO_COORDINATOR, "--out", tmp_path / "run"], script_env)
    time.sleep(3.0)  # joining by now: JAX's connect, one C call
    last = script.stop_with(signal.SIGINT, within=3)
    assert last == "train.py: interrupted by SIGINT during start-up; nothing was trained"


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_the_coordinator_timeout_flag_is_checked(value, script_env):
    result = run(TRAIN, [*TINY, *NO_COORDINATOR, "--coordinator-timeout", value], script_env)
    assert_one_line(result, 2, "--coordinator-timeout", f"'{value}'")
