"""The command-line scripts run inside the test's process: quick where a test checks a refusal, not a process.

A refusal after JAX is loaded costs a fresh ``scripts/train.py`` process
about 0.6 s of start-up; its ``main`` called here costs milliseconds. The
tests that need a real process (exit codes from signals, locks, jobs, the
process's own start) keep starting one.
"""

import importlib.util
import threading
from pathlib import Path
from types import SimpleNamespace


def load_script(path: Path):
    """``scripts/<name>.py`` imported by path as a module, not as ``__main__``: no signal handlers are installed
    and the garbage collector is left alone."""
    spec = importlib.util.spec_from_file_location(f"{Path(path).stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script_main(script, args, capfd, monkeypatch) -> SimpleNamespace:
    """``script.main(args)`` as a finished process: ``returncode``, and ``stdout`` and ``stderr``, what it wrote to
    file descriptors 1 and 2 (``capfd``)."""
    from jax_reinforce.app import cli

    # A refusal's line holds this lock for good (a script's process ends next): a fresh one for each call.
    monkeypatch.setattr(cli, "_LAST_LINE", threading.RLock())
    capfd.readouterr()
    code = script.main([str(a) for a in args])
    out, err = capfd.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)
