"""Compiled programs kept on disk, so that a repeated run skips tracing as well as compiling.

JAX's persistent compilation cache (:func:`jax_reinforce.enable_compile_cache`)
skips XLA's compilation on a repeated run, but JAX still traces the Python
program and lowers it to StableHLO to compute the cache key: 0.6-0.8 s for
the training loop on the development machine, most of a warm one-seed run.
This cache stores the compiled executable itself
(``jax.experimental.serialize_executable``) under a key made of everything
the program depends on, so a repeated run loads it in about 0.1 s without
tracing:

- the program's name and the caller's description of it (the run's
  configuration, batch size, chunk length, compiler options, devices);
- the versions of Python, JAX, jaxlib, gymnax and optax, and whether 64-bit
  floats are enabled;
- a digest of this package's own source files, so any change to the code
  makes new keys.

An entry that cannot be read or loaded (damaged, or from an incompatible
jaxlib) is compiled again and replaced. Entries are executable code for this
machine, written with ``pickle`` by JAX's serializer: like JAX's own cache,
the directory must be writable only by its user. Delete the directory to
clear it.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import sys
from pathlib import Path

from jax_reinforce.checkpoint import atomic_write_bytes

__all__ = ["enable_executable_cache", "disable_executable_cache", "executable_cache_dir", "load_or_compile", "cache_key"]

_directory: Path | None = None


def enable_executable_cache(path) -> str:
    """Stores and loads compiled programs in ``path`` from now on; returns the directory."""
    global _directory
    _directory = Path(path)
    return str(_directory)


def disable_executable_cache() -> None:
    """Stops using the cache (every program is traced and compiled)."""
    global _directory
    _directory = None


def executable_cache_dir() -> str | None:
    """The cache directory, or ``None`` when the cache is off."""
    return None if _directory is None else str(_directory)


@functools.cache
def _code_and_versions() -> tuple:
    """A digest of this package's ``.py`` files, and the versions of Python and the libraries (once per process)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    found = []
    for name in ("jax", "jaxlib", "gymnax", "optax"):
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, None))
    return digest.hexdigest(), sys.version, tuple(found)


def cache_key(name: str, description) -> str:
    """The entry name of program ``name`` described by ``description`` (a ``repr``-able value)."""
    import jax

    text = repr((name, description, _code_and_versions(), bool(jax.config.jax_enable_x64)))
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


_hits = [0, False]  # persistent-cache hits seen, listener registered


def _persistent_cache_hits() -> int:
    """Hits of JAX's persistent compilation cache in this process (``jax.monitoring`` events)."""
    import jax

    if not _hits[1]:
        def count(event, **_):
            if event == "/jax/compilation_cache/cache_hits":
                _hits[0] += 1

        jax.monitoring.register_event_listener(count)
        _hits[1] = True
    return _hits[0]


def _devices_description(devices) -> tuple:
    return tuple((d.platform, d.device_kind, d.id, d.process_index) for d in devices)


def load_or_compile(name: str, description, lower, devices=None):
    """A compiled program: loaded from the cache, else ``lower().compile()`` and stored.

    Args:
      name: the program's name (part of the file name).
      description: everything the program depends on besides this package's
        code and the library versions, as a ``repr``-able value (a tuple of
        plain values and dicts).
      lower: a function of no arguments returning the program's
        ``jax.stages.Lowered`` (``jax.jit(f).lower(*example_args)``); called
        only when the cache has no usable entry.
      devices: the devices the program runs on (part of the key); ``None``:
        the default backend's first device.

    Returns:
      A ``jax.stages.Compiled``.
    """
    import jax

    if _directory is None:
        return lower().compile()
    from jax.experimental import serialize_executable

    devices = list(devices) if devices is not None else jax.devices()[:1]
    path = _directory / (cache_key(name, (description, _devices_description(devices))) + ".jaxexec")
    try:
        with open(path, "rb") as file:
            serialized, in_tree, out_tree = pickle.load(file)
        return serialize_executable.deserialize_and_load(serialized, in_tree, out_tree,
                                                         backend=devices[0].client, execution_devices=devices)
    except Exception:  # no entry, or a damaged or incompatible one: compile, and replace it
        pass
    # Stored only when compiled afresh. On the CPU, jaxlib 0.10 serialises an executable that was
    # itself loaded from JAX's persistent cache without its kernels, and the stored copy fails when
    # run ("NOT_FOUND: Function wrapped_slice not found"). So this program is kept out of that
    # cache (no entry written: the minimum compile time is raised meanwhile), and if the cache
    # still had it (written by an earlier version), it is used but not stored.
    hits_before = _persistent_cache_hits()
    minimum = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
    try:
        compiled = lower().compile()
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)
    if _persistent_cache_hits() != hits_before:
        return compiled
    try:
        payload = pickle.dumps(serialize_executable.serialize(compiled), protocol=pickle.HIGHEST_PROTOCOL)
        _directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, payload)
    except Exception:  # a program JAX cannot serialise, or an unwritable cache: run without storing
        pass
    return compiled
