"""The suite's shared helpers and its one cache of compiled programs.

Helpers (``_fast_jit``, ``test_docs``) live in ``tests/``: made importable from every layer's folder.

The cache: one fresh directory per run of the suite, ``XDG_CACHE_HOME`` for the
whole run (so :func:`jax_reinforce.harness.compilation.default_cache_dir` is in
it), set before pytest-xdist starts its workers, which inherit it, as do the
scripts the tests start with ``os.environ``: a program one test compiled, any
other test's script reads back. Never the user's own cache. Tests of the cache
itself, and of damaged caches, make directories of their own.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_SUITE_CACHE = {}  # this process's directory and the XDG_CACHE_HOME it replaced (controller, or -n 0)


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return  # an xdist worker: XDG_CACHE_HOME came with the controller's environment
    _SUITE_CACHE.update(directory=tempfile.mkdtemp(prefix="jax-reinforce-suite-"),
                        before=os.environ.get("XDG_CACHE_HOME"))
    os.environ["XDG_CACHE_HOME"] = _SUITE_CACHE["directory"]


def pytest_unconfigure(config):
    if _SUITE_CACHE:
        shutil.rmtree(_SUITE_CACHE["directory"], ignore_errors=True)
        if _SUITE_CACHE["before"] is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = _SUITE_CACHE["before"]
