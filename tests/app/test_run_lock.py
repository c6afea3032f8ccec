"""A run directory has one owner: RunLock, with real processes (issue 14, item 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jax_reinforce.app.run import RUN_FILES, RunError, RunLock

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
TINY = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--quiet", "--eval-episodes", "0"]


@pytest.fixture(scope="module")
def script_env():
    """CPU only, the suite's compilation cache (``tests/conftest.py``)."""
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def start(args, env):
    return subprocess.Popen([sys.executable, str(TRAIN), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=180):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def wait_for(path: Path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_the_lock_is_exclusive_and_released(tmp_path):
    first, second = RunLock(), RunLock()
    first.acquire(tmp_path)
    assert (tmp_path / RunLock.NAME).read_text().startswith(f"process {os.getpid()} on ")
    with pytest.raises(RunError, match=r"is in use by another run \(process \d+ on .+\); wait for it to end"):
        second.acquire(tmp_path)
    first.release()
    assert not (tmp_path / RunLock.NAME).exists()
    second.acquire(tmp_path)  # free again
    second.release()


def test_deleting_the_lock_file_frees_nothing_and_the_owner_deletes_only_its_own(tmp_path):
    """Issue 26, item 3: with RUN_DIR/.lock removed, a second run took a new lock and trained beside the owner."""
    owner, newcomer = RunLock(), RunLock()
    owner.acquire(tmp_path)
    (tmp_path / RunLock.NAME).unlink()
    with pytest.raises(RunError) as error:
        newcomer.acquire(tmp_path)
    assert str(error.value) == (f"--out {str(tmp_path)!r} is in use by another run (another process); wait for it to "
                                f"end or choose another --out")
    (tmp_path / RunLock.NAME).write_text("someone else's\n")  # not the file the owner wrote
    owner.release()
    assert (tmp_path / RunLock.NAME).read_text() == "someone else's\n"
    newcomer.acquire(tmp_path)  # free now
    newcomer.release()
    assert not (tmp_path / RunLock.NAME).exists()


def test_two_runs_started_together_on_one_out(tmp_path, script_env):
    """Started a fraction of a second apart: one trains, the other exits 2 naming the directory and the owner."""
    out = tmp_path / "run"
    procs = [start([*TINY, "--iterations", "30", "--out", out], script_env) for _ in range(2)]
    results = [finish(p) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    _, _, refused = next(r for r in results if r[0] == 2)
    lines = refused.splitlines()
    assert len(lines) == 1 and "Traceback" not in refused, refused
    assert lines[0].startswith(f"train.py: error: --out {str(out)!r} ") and "process " in lines[0], lines[0]
    assert ("is in use by another run" in lines[0]) or ("already holds files" in lines[0]), lines[0]
    winner_out = next(r for r in results if r[0] == 0)[1]
    assert winner_out.rstrip().endswith(f"run directory: {out}")
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)  # one whole run, the lock removed


def test_a_second_run_and_a_resume_are_refused_while_a_run_owns_the_directory(tmp_path, script_env):
    out = tmp_path / "run"
    owner = start([*TINY, "--iterations", "400", "--num-envs", "64", "--out", out,
                   "--no-stop-when-solved"], script_env)
    try:
        wait_for(out / "config.json", owner)  # training has begun
        holder = (out / RunLock.NAME).read_text().strip()
        assert holder.startswith(f"process {owner.pid} on "), holder
        for args in ([*TINY, "--out", out, "--overwrite"], ["--resume", "--out", out, "--quiet"]):
            code, _, err = finish(start(args, script_env))
            assert code == 2 and len(err.splitlines()) == 1, err
            assert f"--out {str(out)!r} is in use by another run ({holder})" in err, err
        (out / RunLock.NAME).unlink()  # the lock is the directory's: removing the file frees nothing
        code, _, err = finish(start(["--resume", "--out", out, "--quiet"], script_env))
        assert code == 2 and f"--out {str(out)!r} is in use by another run (another process)" in err, err
        # kill -9 leaves no stale lock: another run takes the directory over at once.
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        code, _, err = finish(start([*TINY, "--iterations", "2", "--out", out, "--overwrite"], script_env))
        assert code == 0, err
        assert json.loads((out / "summary.json").read_text())["iterations_run"] == 2
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
