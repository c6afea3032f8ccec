"""A multi-process job is one config and fails fast: two ``scripts/train.py`` processes on the loopback address.

Processes that would run different jobs are refused on every process in one line, before anything is
written; a coordinator port in use is refused in one line (JAX segfaulted or printed gRPC's line); a process
killed with ``kill -9`` ends the other within seconds with one line of ours (JAX hung ~100 s in its shutdown
and then aborted with a C++ stack trace, or aborted at once), keeping the checkpoint.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
TINY = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--iterations", "3", "--eval-episodes", "2", "--quiet"]
LOST = "train.py: error: the job lost a process ("


@pytest.fixture(scope="module")
def script_env(tmp_path_factory):
    """CPU only, a compilation cache of this module's own."""
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg-cache")), "JAX_PLATFORMS": "cpu"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_job(flags: list[list[str]], env, out: Path):
    """The processes of one job on 127.0.0.1, each with its own extra flags (last: they win); output piped."""
    job = ["--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", str(len(flags)),
           "--coordinator-timeout", "60", "--out", str(out)]
    return [subprocess.Popen([sys.executable, str(TRAIN), *job, *map(str, extra), "--process-id", str(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for i, extra in enumerate(flags)]


def finish(procs, within: float) -> list[tuple[int, list[str], float]]:
    """``(exit code, stderr lines, seconds)`` of each process, waited for at most ``within`` seconds in all."""
    started, deadline, ended = time.monotonic(), time.monotonic() + within, []
    try:
        for p in procs:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
            ended.append(time.monotonic() - started)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, p.communicate()[1].splitlines(), took) for p, took in zip(procs, ended)]


def own_lines(lines: list[str]) -> list[str]:
    """stderr without the run's log line (``process I of P: devices: ...``)."""
    return [line for line in lines if " devices: " not in line]


@pytest.mark.parametrize("flags, expected", [
    ((["--lr", "0.1"], ["--lr", "0.2"]), "--lr is 0.2 on process 1 but 0.1 on process 0;"),  # both exited 0
    ((["--num-seeds", "4"], ["--iterations", "5"]),  # a gloo C++ exception, SIGABRT
     "--num-seeds is 2 on process 1 but 4 on process 0 (and --iterations);"),
], ids=["lr", "num-seeds-and-iterations"])
def test_processes_that_differ_are_refused_before_anything_is_written(flags, expected, tmp_path, script_env):
    out = tmp_path / "run"
    results = finish(start_job([[*TINY, *f] for f in flags], script_env, out), within=120)
    for code, lines, _ in results:
        assert code == 2 and len(lines) == 1, (code, lines)
        assert lines[0].startswith("train.py: error: the processes of this job differ: ") and expected in lines[0], lines
    assert results[0][1] == results[1][1]  # the same line on every process
    assert not out.exists()


def test_processes_resuming_different_runs_are_refused(tmp_path, script_env):
    """``--resume`` with no config flag takes the run's config: each process read its own --out's (both exited 0)."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for code, lines, _ in finish([subprocess.Popen([sys.executable, str(TRAIN), *TINY, "--lr", lr, "--out", run],
                                                   stderr=subprocess.PIPE, text=True, env=script_env)
                                  for run, lr in zip(runs, ("0.1", "0.2"))], within=120):
        assert code == 0, lines
    before = {run: sorted(p.name for p in run.iterdir()) for run in runs}
    results = finish(start_job([["--resume", "--quiet", "--out", run] for run in runs], script_env, runs[0]), 120)
    for code, lines, _ in results:
        assert code == 2 and len(lines) == 1, (code, lines)
        assert "the run's --lr (config.json in --out) is 0.2 on process 1 but 0.1 on process 0" in lines[0], lines
    assert {run: sorted(p.name for p in run.iterdir()) for run in runs} == before


def test_a_coordinator_port_in_use_is_one_line(tmp_path, script_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, str(TRAIN), *TINY, "--out", str(tmp_path / "run"), "--coordinator",
                                 f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0"],
                                capture_output=True, text=True, env=script_env, timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, lines)
    assert lines[0] == (f"train.py: error: --coordinator '127.0.0.1:{port}': process 0 cannot listen on port {port} "
                        f"(address already in use); choose a free port, the same for every process, or end what "
                        f"uses it")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_process_ends_the_job_within_seconds_in_one_line(victim, tmp_path, script_env):
    """kill -9 one process while both train; the other ends within 20 s: one line, exit 4, the checkpoint kept."""
    out = tmp_path / "run"
    long = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--iterations", "1000000", "--no-stop-when-solved",
            "--chunk-iterations", "1", "--checkpoint-every", "1", "--eval-episodes", "0", "--quiet"]
    procs = start_job([long, long], script_env, out)
    deadline = time.monotonic() + 180
    while not (out / "metrics.csv").exists() or (out / "metrics.csv").read_text().count("\n") < 3:  # training
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, [p.poll() for p in procs]
        time.sleep(0.05)
    procs[victim].kill()
    survivor = procs[1 - victim]
    [(code, lines, took)] = finish([survivor], within=20)  # was: 86-95 s, then SIGABRT (victim 1); SIGABRT (victim 0)
    procs[victim].wait()
    assert code == 4, (code, lines)
    assert len(own_lines(lines)) == 1 and own_lines(lines)[0].startswith(LOST), lines
    assert own_lines(lines)[0].endswith("this process stops too; every file is written whole, so the last "
                                        "checkpoint (if any) is kept"), lines
    assert took < 15, took
    assert (out / "checkpoint.npz").is_file()
