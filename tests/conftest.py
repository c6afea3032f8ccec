"""The suite's shared helpers and its one cache of compiled programs.

Helpers (``_fast_jit``, ``test_docs``) live in ``tests/``: made importable from every layer's folder.

The cache: one fresh directory per run of the suite, ``XDG_CACHE_HOME`` for the
whole run (so :func:`jax_reinforce.harness.compilation.default_cache_dir` is in
it), set before pytest-xdist starts its workers, which inherit it, as do the
scripts the tests start with ``os.environ``: a program one test compiled, any
other test's script reads back. Never the user's own cache. Tests of the cache
itself, and of damaged caches, make directories of their own.

The processes that run tests (each xdist worker, or pytest itself with ``-n 0``)
also keep JAX's compilation cache in that directory
(:func:`jax_reinforce.harness.compilation.enable_xla_cache`): a program one test
compiled in-process, a later test (on any worker, or in a script) reads back
instead of compiling it again. A test that points JAX's cache elsewhere has it
pointed back when it ends.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

_SUITE_CACHE = {}  # this process's directory and the XDG_CACHE_HOME it replaced (controller, or -n 0)


def pytest_configure(config):
    worker = hasattr(config, "workerinput")
    if not worker:  # an xdist worker: XDG_CACHE_HOME came with the controller's environment
        _SUITE_CACHE.update(directory=tempfile.mkdtemp(prefix="jax-reinforce-suite-"),
                            before=os.environ.get("XDG_CACHE_HOME"))
        os.environ["XDG_CACHE_HOME"] = _SUITE_CACHE["directory"]
    if worker or not getattr(config.option, "numprocesses", None):  # this process runs the tests
        _use_suite_xla_cache()


def _suite_xla_cache() -> str:
    from jax_reinforce.harness.compilation import default_cache_dir

    return os.path.join(default_cache_dir(), "xla")


def _use_suite_xla_cache() -> None:
    from jax_reinforce.harness.compilation import enable_xla_cache

    directory = _suite_xla_cache()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    enable_xla_cache(directory)


@pytest.fixture(autouse=True)
def _suite_xla_cache_after_each_test():
    """Points JAX's compilation cache back at the suite's when a test moved it."""
    yield
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_compilation_cache_dir != _suite_xla_cache():
        _use_suite_xla_cache()


def pytest_unconfigure(config):
    if _SUITE_CACHE:
        shutil.rmtree(_SUITE_CACHE["directory"], ignore_errors=True)
        if _SUITE_CACHE["before"] is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = _SUITE_CACHE["before"]
