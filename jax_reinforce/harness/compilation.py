"""Compiling the trainer: XLA options for the CPU, the CPU's cores as devices, and the caches of traced and compiled programs.

The CPU options (:func:`cpu_compiler_options`; their gains are measured in ``docs/performance.md``) keep
XLA's experimental YNNPACK/XNNPACK fusions off this workload's skinny matrices, compile with LLVM ``-O1`` and
XLA:CPU's elemental emitters (its MLIR fusion emitters off), and run one Eigen thread per op. They change
floating-point results at the ulp level, so every program that must agree with another bit for bit (a seed
alone and among many, a resumed run and an uninterrupted one) is compiled with them: the trainer uses
:func:`compiler_options` everywhere.

A repeated run neither traces nor compiles its programs again, with JAX's own tools and no ``pickle``:
:func:`compile_program` stores each traced program as a ``jax.export`` artefact (a FlatBuffer of its
StableHLO, shapes and calling convention), read back with ``jax.export.deserialize`` without running ``fn``'s
Python code, and JAX's persistent compilation cache (:func:`enable_compile_cache`) skips XLA's compilation. A
program compiled from the artefact computes bit for bit what ``jax.jit(fn, compiler_options=...)`` computes,
on any device of the kind.

An entry's name, :func:`cache_key`, covers what the caller describes (the program's name and
``description``, its argument shapes and dtypes, the compiler options, the device's platform and kind), a
digest of this package's ``.py`` files, the versions of Python and the libraries, ``XLA_FLAGS`` and the JAX
settings that change tracing or numerics (:data:`CONFIG_NAMES`); not the arguments' values, so a program taking
a hyper-parameter serves every value of it. Beside ``<key>.jaxexport``, ``<key>.types.json`` holds the
artefact's key and sha256 (a damaged artefact, or another program's copied under this key, is never
deserialized) and the ``NamedTuple`` classes its pytrees need by name, looked up in modules already imported, never imported because a file names them. An
entry missing, damaged or unusable by this JAX is exported again and replaced; the caller never sees an error
from the cache. A program whose pytrees hold other custom nodes is compiled but not stored.

A cache directory is trusted only if no other user can write it: :func:`check_cache_dir` refuses
(:class:`CacheDirError`) one that another user owns or that is group- or world-writable, or whose parents
another user could change; the directories it creates are ``0o700``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import sys
import threading
from pathlib import Path

from jax_reinforce.harness.files import atomic_write_bytes

__all__ = [
    "cpu_compiler_options",
    "compiler_options",
    "enable_compile_cache",
    "default_cache_dir",
    "use_cpu_cores",
    "available_cores",
    "enable_program_cache",
    "disable_program_cache",
    "program_cache_dir",
    "cache_key",
    "compile_program",
    "lower_program",
    "code_digest",
    "check_cache_dir",
    "CacheDirError",
    "CheckedEntries",
    "CONFIG_NAMES",
]

#: JAX configuration values that change the traced program or its numerics (part of :func:`cache_key`).
#: Names this JAX does not have are keyed as absent.
CONFIG_NAMES = (
    "jax_enable_x64",
    "jax_threefry_partitionable",
    "jax_default_prng_impl",
    "jax_default_matmul_precision",
    "jax_numpy_rank_promotion",
    "jax_numpy_dtype_promotion",
    "jax_enable_custom_prng",
    "jax_legacy_prng_key",
    "jax_random_seed_offset",
    "jax_high_dynamic_range_gumbel",
    "jax_softmax_custom_jvp",
    "jax_use_direct_linearize",
    "jax_allow_f16_reductions",
    "jax_use_shardy_partitioner",
    "jax_export_calling_convention_version",
    "jax_serialization_version",
    "jax_threefry_gpu_kernel_lowering",
    "jax_explicit_x64_dtypes",
    "jax_use_simplified_jaxpr_constants",
    "jax_embedded_constants_max_bytes",
    "jax_custom_vjp3",
    "jax_scan3",
    "jax_remat3",
    "jax_error_checking_behavior_divide",
    "jax_error_checking_behavior_nan",
    "jax_error_checking_behavior_oob",
    "check_vma",
    "jax_remove_size_one_mesh_axis_from_type",
)

_EXPORT_SUFFIX = ".jaxexport"
_TYPES_SUFFIX = ".types.json"

_directory: Path | None = None


class CacheDirError(ValueError):
    """A cache directory that other users could write (or that cannot be made): not used."""


def _private_dir(path: Path) -> None:
    """Makes ``path`` and its missing parents, each ``0o700`` (``mkdir(parents=True)`` would use the umask)."""
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process: checked like any other
            pass


def _problem(path: Path, parent: bool) -> str | None:
    """Why other users could write ``path`` (a directory, or one of its parents), or ``None``."""
    info = path.stat()
    if not info.st_uid == os.getuid() and not (parent and info.st_uid == 0):
        return f"is owned by another user (uid {info.st_uid}, this process runs as {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (parent and info.st_mode & stat.S_ISVTX):
        return f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o}; chmod go-w {path})"
    return None


def check_cache_dir(path) -> str:
    """Makes the cache directory ``path`` (``0o700``) if it is missing and checks that only this user can write it.

    Refused: a directory owned by another user, or group- or world-writable;
    a parent directory owned by another user than root, or group- or
    world-writable without the sticky bit (``/tmp`` is fine). Symbolic links
    are checked along the path as written and along the path they resolve
    to. Where the system has no user ids (Windows), nothing is checked.

    Returns:
      ``str(path)``.

    Raises:
      CacheDirError: a one-line message naming the directory and what is wrong.
    """
    path = Path(os.path.abspath(path))
    try:
        _private_dir(path)
        if not path.is_dir():
            raise CacheDirError(f"cache directory {path} is not a directory")
        if not hasattr(os, "getuid"):
            return str(path)
        for candidate in dict.fromkeys((path, path.resolve())):
            for place in (candidate, *candidate.parents):
                problem = _problem(place, parent=place != candidate)
                if problem:
                    where = "" if place == candidate else f"'s parent {place}"
                    raise CacheDirError(f"cache directory {candidate}{where} {problem}")
    except OSError as error:
        raise CacheDirError(f"cache directory {path} cannot be used: {error.strerror or error}") from None
    return str(path)


def enable_program_cache(path) -> str:
    """Stores and loads exported programs in ``path`` from now on (made ``0o700`` if missing); returns it.

    Raises:
      CacheDirError: ``path`` can be written by other users, or cannot be
        made (:func:`check_cache_dir`); the cache then stays as it was.
    """
    global _directory
    _directory = Path(check_cache_dir(path))
    return str(_directory)


def disable_program_cache() -> None:
    """Stops using the cache: every program is traced and compiled, nothing is written."""
    global _directory
    _directory = None


def program_cache_dir() -> str | None:
    """The cache directory, or ``None`` when the cache is off."""
    return None if _directory is None else str(_directory)


@functools.cache
def _code_and_versions() -> tuple:
    """A digest of this package's ``.py`` files, and the versions of Python and the libraries (once per process)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    found = []
    for name in ("jax", "jaxlib", "gymnax", "flax", "optax", "numpy"):
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, None))
    return digest.hexdigest(), sys.version, tuple(found)


def source_digest() -> tuple:
    """``(digest of this package's .py files, Python's version, ((library, version), ...))``, read once per process.

    What every process of a job must share (:func:`jax_reinforce.harness.devices.check_same_job`), and part of
    every cache key.
    """
    return _code_and_versions()


def _config_values() -> tuple:
    """``(name, repr(value))`` of each of :data:`CONFIG_NAMES` now (``None`` where this JAX lacks it)."""
    import jax

    missing = object()
    values = []
    for name in CONFIG_NAMES:
        value = getattr(jax.config, name, missing)
        values.append((name, None if value is missing else repr(value)))
    return tuple(values)


def cache_key(name: str, description) -> str:
    """The entry name of program ``name`` described by ``description``: ``f"{name}-{32 hex digits}"``.

    Args:
      name: the program's name (the start of the file names).
      description: everything the program depends on besides this package's
        code, the libraries and JAX's settings, as a ``repr``-able value of
        plain values (tuples, dicts, numbers, strings);
        :func:`compile_program` adds the argument shapes, the compiler
        options and the device's platform and kind.

    Returns:
      ``name`` and the first 32 hex digits of the sha256 of the ``repr`` of
      the description, the source digest, the versions, ``XLA_FLAGS`` and
      the values of :data:`CONFIG_NAMES`, all read now.
    """
    text = repr((name, description, _code_and_versions(), os.environ.get("XLA_FLAGS"), _config_values()))
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _unplaced(spec):
    """``spec`` (a ``ShapeDtypeStruct`` or an array) as a ``ShapeDtypeStruct`` with no sharding."""
    import jax

    return jax.ShapeDtypeStruct(spec.shape, spec.dtype, weak_type=getattr(spec, "weak_type", False))


def _describe_specs(arg_specs) -> tuple:
    """The pytree structure and the leaves' shapes and dtypes of the arguments (part of the key)."""
    import jax

    leaves, tree = jax.tree.flatten(arg_specs)
    return repr(tree), tuple((tuple(x.shape), str(x.dtype), bool(x.weak_type)) for x in leaves)


def _node_types(tree, found: dict) -> dict:
    """Every custom node class in a ``PyTreeDef`` (not tuple, list, dict or None), by ``module:qualname``."""
    node = tree.node_data()
    if node is not None and node[0] not in (tuple, list, dict, type(None)):
        found[f"{node[0].__module__}:{node[0].__qualname__}"] = node[0]
    for child in tree.children():
        _node_types(child, found)
    return found


def _imported_class(path: str):
    """The class ``module:qualname`` from an already imported module, or ``None``."""
    module_name, _, qualname = path.partition(":")
    value = sys.modules.get(module_name)
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, type) else None


def _register(path: str, cls) -> None:
    """Lets ``jax.export`` serialize ``NamedTuple`` class ``cls`` as ``path`` (nothing if it already can)."""
    import jax

    if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        return  # another custom node: serializable only if its owner registered it
    try:
        jax.export.register_namedtuple_serialization(cls, serialized_name=path)
    except ValueError:  # registered already, by this module or by the class's owner
        pass


def _export_platform(device) -> str:
    """The platform ``jax.export`` names ``device``'s by: ``"cpu"``, ``"cuda"``, ``"rocm"``, ``"tpu"`` (not ``"gpu"``).

    The name JAX's own lowering uses for the device's backend.
    """
    client = device.client
    return getattr(client, "_raw_platform", client.platform)


def _load(stem: Path, arg_specs, platform: str):
    """The stored ``Exported`` at ``stem``, if it is there, readable and fits ``arg_specs``; else ``None``."""
    import jax

    try:
        data = stem.with_name(stem.name + _EXPORT_SUFFIX).read_bytes()
        index = json.loads(stem.with_name(stem.name + _TYPES_SUFFIX).read_bytes())
    except (OSError, ValueError):
        return None
    type_paths = index.get("types") if isinstance(index, dict) else None
    if not (isinstance(type_paths, list) and all(isinstance(p, str) for p in type_paths)
            and index.get("key") == stem.name  # another program's entry copied here is not this one
            and index.get("sha256") == hashlib.sha256(data).hexdigest()):
        return None
    for path in type_paths:
        cls = _imported_class(path)
        if cls is None:
            return None
        _register(path, cls)
    try:
        exported = jax.export.deserialize(bytearray(data))
    except Exception:  # damaged, or written by an incompatible JAX
        return None
    leaves, tree = jax.tree.flatten((tuple(arg_specs), {}))
    fits = (
        platform in exported.platforms
        and exported.in_tree == tree
        and len(exported.in_avals) == len(leaves)
        and all(a.shape == tuple(x.shape) and a.dtype == x.dtype for a, x in zip(exported.in_avals, leaves))
    )
    return exported if fits else None


def _store(stem: Path, exported) -> None:
    """Writes ``exported`` and the ``NamedTuple`` classes it needs at ``stem``; nothing if it cannot be serialized."""
    types = _node_types(exported.out_tree, _node_types(exported.in_tree, {}))
    for path, cls in types.items():
        if _imported_class(path) is not cls:
            return  # a class a later run could not find by name (local, or shadowed)
        _register(path, cls)
    data = bytes(exported.serialize())  # raises for a custom node jax.export cannot serialize
    _private_dir(stem.parent)  # deleted since the cache was enabled
    # The index first: an artefact is only ever read beside an index holding its digest.
    index = {"key": stem.name, "sha256": hashlib.sha256(data).hexdigest(), "types": sorted(types)}
    atomic_write_bytes(stem.with_name(stem.name + _TYPES_SUFFIX), json.dumps(index).encode())
    atomic_write_bytes(stem.with_name(stem.name + _EXPORT_SUFFIX), data)


_OWN_MODULES = ("jax_reinforce", "gymnax", "jax", "flax", "optax", "numpy")  # digested or versioned in the key


def code_digest(*objects) -> str | None:
    """A digest of the source code that ``objects`` (classes, functions) come from, outside this package and
    the libraries whose versions the key holds: your environment's class, your network's ``init``/``apply``,
    your ``metrics_fn``, and plain values their closures hold. ``None`` when a source cannot be read (a
    function typed into a REPL): such a program is compiled but not cached.
    """
    import inspect

    digest, seen = hashlib.sha256(), set()

    def add(obj) -> bool:
        module = inspect.getmodule(obj)
        name = getattr(module, "__name__", "")
        if name.split(".")[0] in _OWN_MODULES:
            return True
        if name not in seen:
            seen.add(name)
            try:
                digest.update(name.encode() + b"\0" + inspect.getsource(module).encode())
            except (OSError, TypeError):
                return False
        for cell in getattr(obj, "__closure__", None) or ():
            value = cell.cell_contents
            if callable(value):
                if not add(value):
                    return False
            elif isinstance(value, (int, float, str, bool, tuple, type(None))):
                digest.update(repr(value).encode())
            else:
                return False
        return True

    for obj in objects:
        if obj is not None and not add(obj):
            return None
    return digest.hexdigest()


def compile_program(name: str, description, fn, arg_specs, device=None, compiler_options=None):
    """A compiled program for ``fn(*args)`` on ``device``: :func:`lower_program`'s, compiled.

    Returns:
      A ``jax.stages.Compiled``: call it with ``fn``'s arguments, arrays on
      ``device`` or host NumPy arrays; it returns ``fn``'s result pytree.
    """
    return lower_program(name, description, fn, arg_specs, device, compiler_options).compile()


def lower_program(name: str, description, fn, arg_specs, device=None, compiler_options=None):
    """The lowered program for ``fn(*args)`` on ``device`` (default: ``jax.devices()[0]``), not compiled yet.

    Lowering holds the GIL (it runs ``fn``'s Python code); XLA's compilation
    (``.compile()``) does not, so a caller can lower its programs one after
    the other and compile them in threads.

    With the cache on (:func:`enable_program_cache`), the program is the
    stored ``jax.export`` artefact for its key when there is a usable one
    (``fn`` is not called); otherwise ``fn`` is traced and exported
    (``jax.export.export(jax.jit(fn))``) and the artefact stored atomically,
    replacing a damaged or unusable one. Either way the program lowered is
    ``jax.jit(exported.call, compiler_options=compiler_options)``, which
    computes bit for bit what ``jax.jit(fn, compiler_options=...)``
    computes. With the cache off, ``jax.jit(fn, compiler_options=...)`` is
    lowered and nothing is exported or written.

    Args:
      name: the program's name (the start of its file names).
      description: everything ``fn`` depends on besides its arguments, this
        package's code, the libraries and JAX's settings (see
        :func:`cache_key`): ``fn`` closes over its static values (the
        configuration, chunk length, ...), which must all be here, and the
        :func:`code_digest` of any code of the user's. ``None``: not cached.
      fn: a function of ``len(arg_specs)`` positional arguments, each a
        pytree of arrays (tuples, lists, dicts, ``NamedTuple``s).
      arg_specs: a tuple of pytrees of ``jax.ShapeDtypeStruct`` (or arrays),
        ``fn``'s arguments; shardings in them are ignored.
      device: the device the program runs on (its platform and kind are part
        of the key; its id is not: the artefact serves every device of the
        kind).
      compiler_options: XLA options for ``jax.jit``, e.g.
        :func:`jax_reinforce.harness.compilation.compiler_options` (part of the key).

    Returns:
      A ``jax.stages.Lowered``: ``.out_info`` is ``fn``'s result as
      ``jax.ShapeDtypeStruct`` leaves; ``.compile()`` the program.
    """
    import jax
    from jax.sharding import SingleDeviceSharding

    device = device if device is not None else jax.devices()[0]
    platform = _export_platform(device)
    arg_specs = jax.tree.map(_unplaced, tuple(arg_specs))
    placed = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type, sharding=SingleDeviceSharding(device)),
        arg_specs)

    def lower(function, exported=None):
        with _without_lapack(exported):
            return jax.jit(function, compiler_options=compiler_options).lower(*placed)

    if _directory is None or description is None:  # None: code that cannot be digested is not cached
        return lower(fn)
    options = sorted((compiler_options or {}).items())
    key = cache_key(name, (description, _describe_specs(arg_specs), options, device.platform, device.device_kind))
    stem = _directory / key
    exported = _load(stem, arg_specs, platform)
    if exported is not None:
        try:
            return lower(_named_call(exported, name), exported)
        except Exception:  # an artefact this JAX reads but cannot lower: export it again
            pass
    try:
        exported = jax.export.export(jax.jit(fn), platforms=(platform,))(*arg_specs)
    except Exception:  # a program jax.export does not support: lower it as it is, store nothing
        return lower(fn)
    try:
        _store(stem, exported)
    except Exception:  # an unserializable pytree node, or an unwritable directory: run without storing
        pass
    return lower(_named_call(exported, name), exported)


# Threads lowering an exported program that calls no LAPACK kernel (see _without_lapack).
_NO_LAPACK = threading.local()


@contextlib.contextmanager
def _without_lapack(exported):
    """Lowering ``exported.call`` on the CPU here skips JAX's LAPACK set-up when the program calls no LAPACK kernel.

    JAX initialises its LAPACK kernels before lowering any exported program for the CPU
    (``jax._src.export._export._ensure_backends_initialized``), which imports SciPy's LAPACK: 0.15-0.4 s of
    a warm start, for programs (this trainer's) that call none. Their names are in the serialized module
    (custom calls ``lapack_*``): a program that names none is lowered without that set-up, in this thread
    only; any other lowering, here or in another thread, sets it up as JAX does. Without the hook (another
    JAX), nothing changes.
    """
    if exported is None or b"lapack" in exported.mlir_module_serialized or not _hook_lapack():
        yield
        return
    _NO_LAPACK.on = True
    try:
        yield
    finally:
        _NO_LAPACK.on = False


@functools.cache
def _hook_lapack() -> bool:
    """Wraps JAX's LAPACK set-up for exported programs so that a thread in :func:`_without_lapack` skips it."""
    # lazy: JAX's private export module, loaded with JAX when a program is compiled
    from jax._src.export import _export

    original = getattr(_export, "_ensure_backends_initialized", None)
    if original is None:
        return False

    def ensure_backends_initialized(platforms):
        if not getattr(_NO_LAPACK, "on", False):
            original(platforms)

    _export._ensure_backends_initialized = ensure_backends_initialized
    return True


def _named_call(exported, name: str):
    """``exported.call`` under the program's name (which names its entry in JAX's compilation cache)."""

    def call(*args):
        return exported.call(*args)

    call.__name__ = call.__qualname__ = name
    return call


# ------------------------------------------------------------------ compiler options, CPU devices, JAX's cache

def cpu_compiler_options() -> dict:
    """XLA options that make the trainer compile and run faster on the CPU."""
    return {
        "xla_cpu_experimental_ynn_fusion_type": "",
        "xla_cpu_experimental_xnn_fusion_type": "",
        "xla_backend_optimization_level": 1,
        "xla_cpu_multi_thread_eigen": False,
        "xla_cpu_use_fusion_emitters": False,
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
      and the library versions. Its entries are written whole and checked
      before JAX reads them (:class:`CheckedEntries`): a damaged or truncated
      entry, or another program's under this key, is a silent miss, compiled
      and written again.
    - ``path/programs``: :mod:`jax_reinforce.harness.compilation`, the trainer's
      and the evaluation's traced programs as ``jax.export`` artefacts
      (skips tracing too; no pickle).

    The directories are made ``0o700`` where missing. A cache directory other
    users could write is never used
    (:func:`jax_reinforce.harness.compilation.check_cache_dir`): then neither cache
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
    enable_xla_cache(os.path.join(path, "xla"))
    return path


def enable_xla_cache(directory: str) -> None:
    """JAX's persistent compilation cache alone, in ``directory``, every program cached, each entry checked.

    :func:`enable_compile_cache`'s first cache (``path/xla``) without the second: XLA's compilation of any
    ``jax.jit`` program, in this process, is read back from ``directory`` once it has been written there
    (by this process or another), through :class:`CheckedEntries`. The caller checks the directory
    (:func:`check_cache_dir`); it must exist.
    """
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _check_jax_cache_entries(directory)


class CheckedEntries:
    """JAX's persistent compilation cache in ``directory``, each entry checked before JAX reads it.

    JAX's own file cache writes an entry in place (a full disk leaves it truncated), never replaces one, and
    trusts what it reads: a truncated entry is a warning and a compilation on every later run, another
    program's entry under this key an ``AssertionError`` deep in JAX. Here ``<key>-cache`` holds JAX's
    value followed by ``sha256(key + value)``, written atomically
    (:func:`jax_reinforce.harness.files.atomic_write_bytes`) and replacing what was there. An entry whose
    digest is not that of its key and contents (truncated, damaged, another key's, or JAX's own format) is
    deleted and reported missing: JAX compiles the program and :meth:`put` stores it again. An entry that
    cannot be written (a full disk) is left out; a later run writes it.
    """

    def __init__(self, directory):
        self._path = Path(directory)

    def _file(self, key: str) -> Path:
        return self._path / f"{key}-cache"

    @staticmethod
    def _digest(key: str, value: bytes) -> bytes:
        return hashlib.sha256(key.encode() + b"\0" + value).digest()

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` (missing, or not what was stored: then deleted)."""
        try:
            data = self._file(key).read_bytes()
        except OSError:
            return None
        value, digest = data[:-32], data[-32:]
        if len(data) > 32 and digest == self._digest(key, value):
            return value
        try:
            self._file(key).unlink()
        except OSError:
            pass
        return None

    def put(self, key: str, value: bytes) -> None:
        """Stores ``value`` under ``key`` atomically, with its digest; nothing when the disk refuses."""
        try:
            atomic_write_bytes(self._file(key), bytes(value) + self._digest(key, bytes(value)))
        except OSError:
            pass

    def clear(self) -> None:
        """Nothing: JAX clears its in-memory state; the entries on disk stay."""


def _check_jax_cache_entries(directory: str) -> bool:
    """Makes JAX read and write its persistent cache through :class:`CheckedEntries` in ``directory``.

    JAX has no public hook for its cache's storage: this sets ``jax._src.compilation_cache``'s cache object,
    as its own initialisation would. Where this JAX has no such object, JAX's own cache stays (``False``).
    """
    try:
        from jax._src import compilation_cache  # lazy and private: JAX's cache object, see the docstring

        compilation_cache.reset_cache()
        with compilation_cache._cache_initialized_mutex:
            compilation_cache._cache = CheckedEntries(directory)
            compilation_cache._cache_initialized = True
    except (ImportError, AttributeError):  # another JAX: its own cache, unchecked
        return False
    return True


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
    device from one thread per core (:func:`jax_reinforce.harness.runner.default_threads`),
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
