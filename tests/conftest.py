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


# The slowest modules, slowest first (seconds of one run of the suite on 2 cores, round 14 of
# docs/performance.md). pytest-xdist hands each worker whole modules in the order collected
# (--no-loadscope-reorder): the long ones start first and the short ones fill in at the end, so the two
# workers finish together. Left to itself it orders modules by their number of tests, which leaves the
# long modules of few tests (test_benchmark.py: one test, 50 s) to the end: a simulation with one run's
# durations gave 508 s against 472 s this way (round 13). Modules not listed keep the order they are collected in.
SLOWEST_MODULES = (
    "tests/core/test_envs.py",  # 73 s
    "tests/test_docs.py",  # 72 s
    "tests/harness/test_runner.py",  # 62 s
    "tests/app/test_benchmark.py",  # 54 s
    "tests/app/test_open_runs.py",  # 49 s
    "tests/app/test_reliability.py",  # 47 s
    "tests/harness/test_distributed.py",  # 46 s
    "tests/app/test_failures.py",  # 45 s
    "tests/core/test_training.py",  # 44 s
    "tests/core/test_policies.py",  # 30 s
    "tests/app/test_trackers_cli.py",  # 28 s
    "tests/app/test_train_cli_scaling.py",  # 25 s
    "tests/app/test_jobs.py",  # 23 s
    "tests/core/test_gradients.py",  # 22 s
    "tests/app/test_sweep.py",  # 21 s
    "tests/harness/test_program_cache.py",  # 20 s
    "tests/core/test_batching.py",  # 18 s
    "tests/core/test_value_baseline.py",  # 18 s
    "tests/app/test_cli.py",  # 16 s
)


def pytest_collection_modifyitems(config, items):
    rank = {module: i for i, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: a module stays whole


def pytest_unconfigure(config):
    if _SUITE_CACHE:
        shutil.rmtree(_SUITE_CACHE["directory"], ignore_errors=True)
        if _SUITE_CACHE["before"] is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = _SUITE_CACHE["before"]
