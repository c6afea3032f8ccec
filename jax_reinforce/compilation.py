"""Compiling the trainer: XLA options for the CPU, the CPU's cores as devices, and the persistent cache.

Measured on the 2-core development machine (``docs/performance.md``):

- XLA's CPU backend hands some fusions to the experimental YNNPACK/XNNPACK
  libraries; for this workload's skinny matrices (4 x 16, 16 x 2) that made
  the learning pass 2-3x slower, so :func:`cpu_compiler_options` turns them off.
- ``xla_backend_optimization_level=1`` (LLVM ``-O1`` instead of ``-O3``)
  compiles the training loop about 40% faster and runs it as fast.
- One Eigen thread per op avoids synchronising two cores over ops of a few
  microseconds.

These options change floating-point results at the ulp level, so every
program that must agree with another bit for bit (a seed trained alone and the
same seed among many, a resumed run and an uninterrupted one) must be
compiled with the same options: the trainer uses :func:`compiler_options`
everywhere.
"""

from __future__ import annotations

import os

__all__ = ["cpu_compiler_options", "compiler_options", "enable_compile_cache", "default_cache_dir", "use_cpu_cores",
           "available_cores"]


def cpu_compiler_options() -> dict:
    """XLA options that make the trainer compile and run faster on the CPU."""
    return {
        "xla_cpu_experimental_ynn_fusion_type": "",
        "xla_cpu_experimental_xnn_fusion_type": "",
        "xla_backend_optimization_level": 1,
        "xla_cpu_multi_thread_eigen": False,
    }


def compiler_options(platform: str | None = None) -> dict | None:
    """The options for ``jax.jit(..., compiler_options=...)`` on ``platform``.

    Args:
      platform: ``"cpu"``, ``"gpu"``, ...; ``None`` for the default backend.

    Returns:
      :func:`cpu_compiler_options` on the CPU, ``None`` (XLA's defaults) elsewhere.
    """
    import jax

    platform = platform or jax.default_backend()
    return cpu_compiler_options() if platform == "cpu" else None


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/jax-reinforce`` (``~/.cache/jax-reinforce``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jax-reinforce")


def enable_compile_cache(path: str | None = None, warn=None) -> str | None:
    """Turns on the caches of compiled programs in ``path`` (default :func:`default_cache_dir`).

    Two caches, so that a second run of the same configuration neither traces
    nor compiles its programs again:

    - ``path/xla``: JAX's persistent compilation cache, every program cached
      (skips XLA's compilation; JAX still traces and lowers the program). Its
      key covers the program, ``XLA_FLAGS``, the compile options, the device
      and the library versions; an entry JAX cannot read (damaged) is a miss,
      with JAX's warning naming the program, until the directory is deleted.
    - ``path/programs``: :mod:`jax_reinforce.program_cache`, the trainer's
      and the evaluation's traced programs as ``jax.export`` artefacts
      (skips tracing too; no pickle).

    The directories are made ``0o700`` where missing. A cache directory other
    users could write is never used
    (:func:`jax_reinforce.program_cache.check_cache_dir`): then neither cache
    is turned on, ``warn`` is called with one line saying why, and the
    programs are compiled as without a cache. The same happens if the
    directories cannot be made (a read-only or full disk, a name too long).

    Args:
      path: the cache directory.
      warn: called with the one-line message when the cache is refused;
        default ``warnings.warn(message, RuntimeWarning)``.

    Returns:
      The cache directory, or ``None`` when it was refused.
    """
    import jax

    from jax_reinforce.program_cache import CacheDirError, check_cache_dir, enable_program_cache

    path = path or default_cache_dir()
    try:
        for directory in (path, os.path.join(path, "xla"), os.path.join(path, "programs")):
            check_cache_dir(directory)
    except CacheDirError as error:
        message = f"compiled programs are not cached: {error}"
        if warn is None:
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=2)
        else:
            warn(message)
        return None
    enable_program_cache(os.path.join(path, "programs"))
    jax.config.update("jax_compilation_cache_dir", os.path.join(path, "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_cpu_cores(count: int | None = None) -> int:
    """Makes JAX's CPU backend expose ``count`` devices, one per core, for ``--devices N`` or ``all``.

    XLA runs one CPU program on one thread (with
    :func:`cpu_compiler_options`); JAX's CPU backend shows one device by
    default. The runner's default on a CPU needs no more: it calls one
    device from one thread per core (:func:`jax_reinforce.runner.default_threads`),
    with one compiled program. With one device per core, a batch of agents
    dealt over them (``--devices all``) runs on every core too, equally fast
    but compiling the program once per device (``docs/performance.md``,
    round 8).

    Must run before JAX initialises its backends (the first ``jax.devices()``
    or computation). Changes nothing if the count was already chosen, by
    ``JAX_NUM_CPU_DEVICES`` or ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS``, or if the backends are already initialised.

    Args:
      count: devices to expose; ``None``: :func:`available_cores`.

    Returns:
      The number of CPU devices JAX will have (as far as this call decides).
    """
    import jax

    if "JAX_NUM_CPU_DEVICES" in os.environ or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return len(jax.devices("cpu"))
    count = available_cores() if count is None else int(count)
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # backends already initialised: keep what they have
        return len(jax.devices("cpu"))
    return count
