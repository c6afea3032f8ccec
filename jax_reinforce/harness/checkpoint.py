"""Checkpoints: one ``checkpoint.npz`` per run directory, no pickle anywhere.

Format (version :data:`FORMAT_VERSION`), a NumPy ``.npz`` archive read with
``allow_pickle=False``, so loading never runs code from the file:

- ``format``: the string ``"jax-reinforce-checkpoint"``;
- ``format_version``: int64 scalar;
- ``config``: the run's :class:`jax_reinforce.Config` as a JSON string;
- optionally ``run``: the run's own flags beside its config (device count and
  layout, evaluation episodes, checkpoint interval, trackers), a JSON object
  as a string: committed with the state by the same rename, so a resume never
  sees a checkpoint without them (``run.json`` is a copy for reading);
- ``params/<layer>/w``, ``params/<layer>/b``: the policy of every agent, with
  a leading agent axis ``(A, fan_in, fan_out)`` and ``(A, fan_out)``, ``A =
  config.num_agents`` (every seed of every setting of a sweep; without a
  sweep, ``num_seeds``);
- optionally ``state/<path>``: every other leaf of the full training state
  (optimizer state, hyper-parameters, PRNG keys, iteration counters), for
  resuming, named by its pytree path;
- with the state, ``history/<metric>``: ``(A, I)`` per-agent metrics of
  the ``I`` iterations run so far (``I`` = the largest ``state/iteration``), from
  which ``metrics.csv`` is rebuilt, so a resumed run has one row per iteration;
  beside the program's metrics, ``history/seconds`` (float32, optional), the
  cumulative training wall-clock at the end of each iteration, for the
  learning curve's third panel (NaN when a checkpoint lacks it).

Writes are atomic: a temporary file in the same directory is written, flushed
and fsynced, then renamed over ``checkpoint.npz``, so a crash leaves either
the old checkpoint or the new one, never a torn file (at most a stray
temporary file, which :func:`jax_reinforce.harness.files.remove_stale_temporaries` clears).

Loading checks everything before anything is used, and decompresses nothing
it has not bounded first. From the zip directory alone: every member is a
``.npy`` of a known kind (the three small entries, ``params/``, ``state/``,
``history/``), stored or deflated. The small entries, each declared at most
:data:`TEXT_ENTRY_BYTES`, are read first: the format tag and version, and a
valid config. That config implies every other entry's name, shape and dtype
(a history's width is the largest ``state/iteration``, at most the config's
iterations), so each member's declared (uncompressed) size is checked against
its array plus a ``.npy`` header before any of it is read; then its header
(an object array, which only pickle could rebuild, is refused unread), and
only then its data, never more than it declares (a member that decompresses
to more is refused at the first byte beyond). Last, the parameters and the
optimizer state must be finite, except for seeds the checkpoint marks
diverged (``state/failed_at >= 0``), and the training state's values must be
ones a run of its config reaches: each agent's hyper-parameters its config's,
the counters within the iterations run (:func:`_refuse_impossible_state`).
Any other file raises :class:`CheckpointError`, in one line.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jax_reinforce.core.config import Config
from jax_reinforce.harness import memory
from jax_reinforce.harness.files import atomic_write_bytes

__all__ = [
    "FORMAT_VERSION",
    "CHECKPOINT_NAME",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_arrays",
    "load_run_flags",
    "flatten_tree",
    "unflatten_like",
    "load_train_state",
]

FORMAT_NAME = "jax-reinforce-checkpoint"
# 2: the state holds each agent's hyper-parameters (a sweep's agents); 3: and, with a value baseline,
# V(s)'s network and optimizer state, and the greedy confirmations' counts. A version-2 checkpoint's
# parameters are read for evaluation; it is not resumed (its training state lacks the counts).
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)
CHECKPOINT_NAME = "checkpoint.npz"
# The declared (uncompressed) size each small entry ("format", "format_version", "config", "run") may have.
TEXT_ENTRY_BYTES = 4 * 2**20
# What a .npy member may hold beside its data: magic string, version and header length (12 bytes at
# most) and the header text, which NumPy caps at 10000 bytes too.
_NPY_HEADER_BYTES = 12 + 10_000
# Members are decompressed this many bytes at a time.
_READ_CHUNK = 2**20
_SMALL_ENTRIES = ("format", "format_version", "config", "run")
_SECTIONS = ("params/", "state/", "history/")
# A metric's name in the history (value_loss, a metrics_fn's), and how many a checkpoint may hold.
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
MAX_HISTORY_ENTRIES = 64


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, foreign or does not fit."""


def _path_name(path) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "idx", "name"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flatten_tree(tree, prefix: str) -> dict[str, np.ndarray]:
    """``{prefix/<path>: array}`` for every leaf of a pytree."""
    import jax

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {f"{prefix}/{_path_name(path)}": np.asarray(leaf) for path, leaf in leaves}


def unflatten_like(template, arrays: dict, prefix: str):
    """Rebuilds a pytree shaped like ``template`` from :func:`flatten_tree` output.

    Every leaf must be present with the template's shape and dtype, and no
    other entry may start with ``prefix/``.

    Raises:
      CheckpointError: naming the first missing, mismatched or unexpected entry.
    """
    import jax

    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    expected = set()
    for path, leaf in leaves:
        name = f"{prefix}/{_path_name(path)}"
        expected.add(name)
        if name not in arrays:
            raise CheckpointError(f"checkpoint is missing {name!r}")
        value = arrays[name]
        if value.shape != tuple(leaf.shape) or value.dtype != np.dtype(leaf.dtype):
            raise CheckpointError(
                f"checkpoint entry {name!r} has shape {value.shape} {value.dtype}; "
                f"expected {tuple(leaf.shape)} {np.dtype(leaf.dtype)}"
            )
        out.append(value)
    unexpected = sorted(n for n in arrays if n.startswith(prefix + "/") and n not in expected)
    if unexpected:
        raise CheckpointError(
            f"checkpoint has entries {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''} "
            f"that its config does not imply (another network or environment?)"
        )
    return jax.tree_util.tree_unflatten(treedef, out)


def save_checkpoint(run_dir, params, config, state=None, history=None, run: dict | None = None) -> Path:
    """Saves the params of all seeds (and optionally the full training state).

    Args:
      run_dir: the run directory (created if missing).
      params: the policy pytree with a leading seed axis on every leaf.
      config: the run's :class:`jax_reinforce.Config`.
      state: optionally the full :class:`jax_reinforce.TrainState` (batched
        over seeds), so that training can resume exactly.
      history: optionally (with ``state``) a dict of per-seed metric arrays
        ``(S, I)`` of the iterations run so far, saved as ``history/<name>``.
      run: optionally the run's own flags (a JSON-able dict), saved as ``run``
        (:func:`load_run_flags`).

    Returns:
      The checkpoint's path, ``run_dir/checkpoint.npz``.

    Raises:
      ValueError: a history without the state whose iterations it records.
    """
    if history and state is None:
        raise ValueError("save_checkpoint: a history is saved with the training state whose iterations it records")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {
        "format": np.asarray(FORMAT_NAME),
        "format_version": np.asarray(FORMAT_VERSION, np.int64),
        "config": np.asarray(json.dumps(config.to_dict(), sort_keys=True)),
        **({} if run is None else {"run": np.asarray(json.dumps(run, sort_keys=True))}),
    }
    arrays.update(flatten_tree(params, "params"))
    if state is not None:
        arrays.update(flatten_tree(state._replace(params=None), "state"))
    for name, values in (history or {}).items():
        arrays[f"history/{name}"] = np.asarray(values)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = run_dir / CHECKPOINT_NAME
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _tree_specs(tree, prefix: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{prefix/<path>: (shape, dtype)}`` for every leaf of a pytree (arrays or ``jax.ShapeDtypeStruct``)."""
    import jax

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {f"{prefix}/{_path_name(path)}": (tuple(np.shape(leaf)), np.dtype(leaf.dtype)) for path, leaf in leaves}


def _expected_state(config):
    """The agent-batched :class:`jax_reinforce.TrainState` a run of ``config`` saves, as shapes only.

    ``config.num_agents`` agents: every seed of every setting of a sweep.
    """
    import jax

    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import HYPERPARAMETERS, make_init_state

    keys = jax.ShapeDtypeStruct((config.num_agents, 2), np.uint32)
    hparams = {name: jax.ShapeDtypeStruct((config.num_agents,), np.float32) for name in HYPERPARAMETERS}
    return jax.eval_shape(jax.vmap(lambda key, hp: make_init_state(config)(key, None, hp)), keys, hparams)


def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """``{entry: ZipInfo}`` of a ``.npz``, from its directory alone: ``.npy`` members of the kinds a checkpoint has."""
    infos = archive.infolist()
    odd = sorted(info.filename for info in infos if not info.filename.endswith(".npy"))
    if odd:
        raise CheckpointError(f"checkpoint {path} holds members that are not .npy arrays: {odd[:4]}")
    members = {}
    for info in infos:
        name = info.filename[: -len(".npy")]
        if name in members:
            raise CheckpointError(f"checkpoint {path} holds the entry {name!r} twice")
        members[name] = info
    if "format" not in members:
        raise CheckpointError(f"{path} is not a jax-reinforce checkpoint (no format tag {FORMAT_NAME!r})")
    unknown = sorted(n for n in members if n not in _SMALL_ENTRIES and not n.startswith(_SECTIONS))
    if unknown:
        raise CheckpointError(
            f"checkpoint {path} holds entries a checkpoint does not have: {unknown[:4]}"
            f"{' ...' if len(unknown) > 4 else ''}; refused unread"
        )
    for name, info in members.items():
        if info.flag_bits & 0x1:
            raise CheckpointError(f"checkpoint {path} entry {name!r} is encrypted; a checkpoint's entries are not")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(
                f"checkpoint {path} entry {name!r} uses zip compression method {info.compress_type}; "
                f"a checkpoint's entries are stored or deflated"
            )
    return members


def _check_declared(path: Path, name: str, info: zipfile.ZipInfo, limit: int, what: str) -> None:
    """Refuses a member whose declared (uncompressed) size is over ``limit``, before reading any of it."""
    if info.file_size > limit:
        raise CheckpointError(
            f"checkpoint {path} entry {name!r} declares {info.file_size} bytes uncompressed, more than the "
            f"{limit} {what}; refused unread"
        )


class _CountingReader:
    """``read`` of a member's stream that counts the bytes and their CRC-32 (ZipExtFile's own check is off)."""

    def __init__(self, stream):
        self.stream, self.count, self.crc = stream, 0, 0

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        self.crc = zlib.crc32(data, self.crc)
        return data


def _read_member(archive: zipfile.ZipFile, path: Path, name: str, info: zipfile.ZipInfo, expected=None):
    """One member's array, never more than its declared size decompressed, never unpickled.

    The ``.npy`` header (the first bytes of the member) is read and checked
    first: no object dtype, ``expected`` ``(shape, dtype)`` if given, and a
    data size that, with the header, is exactly the size the zip directory
    declares. Only then is the data read, in pieces, into one buffer of that
    size; a member that decompresses to more than it declares is refused at
    the first byte beyond, and one whose bytes do not match their CRC-32 after.
    """
    # ZipExtFile returns no more than the size it is given: given one byte more than the member
    # declares, a member longer than it declares shows itself by that byte. Its CRC check would
    # then fail first, so it is off (no CRC) and done here, over the declared bytes.
    probe = copy.copy(info)
    probe.file_size, probe.CRC = info.file_size + 1, None
    with archive.open(probe) as raw:
        stream = _CountingReader(raw)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise CheckpointError(
                f"checkpoint {path} entry {name!r} is a .npy of version {version}; expected 1.0 or 2.0"
            )
        if dtype.hasobject:
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects (entry {name!r}); refused unread "
                f"(a checkpoint holds plain arrays only)"
            )
        if expected is not None and (shape, dtype) != expected:
            raise CheckpointError(
                f"checkpoint {path} entry {name!r} has shape {shape} {dtype}; expected {expected[0]} {expected[1]}"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        if stream.count + nbytes != info.file_size:
            raise CheckpointError(
                f"checkpoint {path} entry {name!r} declares {info.file_size} bytes, but its header describes "
                f"{stream.count + nbytes}"
            )
        data = bytearray(nbytes)
        done = 0
        while done < nbytes:
            piece = stream.read(min(_READ_CHUNK, nbytes - done))
            if not piece:
                raise CheckpointError(
                    f"checkpoint {path} entry {name!r} ends after {done} of its {nbytes} bytes of data"
                )
            data[done : done + len(piece)] = piece
            done += len(piece)
        if raw.read(1):
            raise CheckpointError(
                f"checkpoint {path} entry {name!r} decompresses to more than the {info.file_size} bytes it declares"
            )
        if stream.crc != info.CRC:
            raise CheckpointError(f"checkpoint {path} entry {name!r} fails its CRC-32 check (corrupted)")
    array = np.frombuffer(data, dtype) if nbytes else np.zeros(0, dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _text_entry(arrays: dict, name: str):
    value = arrays.get(name)
    if value is None or value.shape != () or value.dtype.kind != "U":
        return None
    return str(value)


def _read_config(archive, path: Path, members: dict, env_spec=None, policy=None) -> tuple[dict, object]:
    """The small entries (format tag, version, config), each read only if its declared size is small."""

    small = {}
    for name in _SMALL_ENTRIES:
        if name in members:
            _check_declared(path, name, members[name], TEXT_ENTRY_BYTES,
                            "bytes a checkpoint's format, version, config or run flags may take")
            small[name] = _read_member(archive, path, name, members[name])
    if _text_entry(small, "format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a jax-reinforce checkpoint (no format tag {FORMAT_NAME!r})")
    version = small.get("format_version")
    if (version is None or version.shape != () or version.dtype.kind not in "iu"
            or int(version) not in READABLE_VERSIONS):
        raise CheckpointError(
            f"checkpoint {path} has format version {None if version is None else version.tolist()!r}; "
            f"this version of jax-reinforce reads versions {' and '.join(map(str, READABLE_VERSIONS))}"
        )
    text = _text_entry(small, "config")
    if text is None:
        raise CheckpointError(f"checkpoint {path} has no config (a JSON string entry 'config')")
    try:
        config = Config.from_dict(json.loads(text), env_spec, policy)
    except (ValueError, TypeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None
    return small, config


def _refuse_non_finite(arrays: dict, path: Path, num_seeds: int) -> None:
    """Refuses NaN or inf in the parameters or optimizer state of a seed the checkpoint does not mark diverged.

    A seed is marked diverged by ``state/failed_at >= 0``; a checkpoint
    without a training state marks none.
    """
    failed = arrays.get("state/failed_at")
    if failed is not None and (failed.shape != (num_seeds,) or failed.dtype.kind not in "iu"):
        failed = None  # not a marking (load_train_state refuses such a state)
    diverged = failed >= 0 if failed is not None else np.zeros(num_seeds, bool)
    for name, value in arrays.items():
        learned = ("params/", "state/opt_state/", "state/value_params/", "state/value_opt_state/")
        if not name.startswith(learned) or value.dtype.kind not in "fc":
            continue
        if value.shape[:1] != (num_seeds,):
            continue  # a state that does not fit: load_train_state refuses it
        bad = ~np.isfinite(value.reshape(num_seeds, -1)).all(axis=1) & ~diverged
        if bad.any():
            seeds = np.flatnonzero(bad).tolist()
            marking = ("state/failed_at is -1 for them" if failed is not None
                       else "it has no training state that marks a seed diverged")
            raise CheckpointError(
                f"checkpoint {path} holds non-finite values in {name!r} of seeds {seeds[:8]}"
                f"{' ...' if len(seeds) > 8 else ''}, which it does not mark diverged ({marking}); refused"
            )


def _refuse_impossible_state(arrays: dict, config, path: Path, num_agents: int) -> None:
    """Refuses training-state values that no run of ``config`` reaches (a checkpoint changed by hand).

    Each agent's hyper-parameters are its setting's (the values it would
    train with otherwise); ``iteration`` is within the config's iterations;
    ``solved_at`` and ``failed_at`` are -1 or an iteration the agent has run;
    ``confirm_attempts`` at most one per iteration run; ``confirm_steps`` at
    least 0; the solve window's episode counts whole numbers up to
    ``num_envs``, its return sums finite. The PRNG keys may be any. An entry
    of another shape or kind is left to :func:`load_train_state`, which
    refuses it.
    """
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import agent_hyperparameters, solve_window

    def check(name, kinds, bad, allowed, shape=(num_agents,)):
        """The entry ``state/<name>``, refused where ``bad(value)`` (``None`` for another shape or kind)."""
        value = arrays.get(f"state/{name}")
        if value is None or value.shape != shape or value.dtype.kind not in kinds:
            return None
        agents = np.flatnonzero(np.reshape(bad(value), (num_agents, -1)).any(axis=1))
        if len(agents):
            agent = int(agents[0])
            raise CheckpointError(
                f"checkpoint {path} entry 'state/{name}' holds {value[agent].tolist()} for agent {agent}; allowed: "
                f"{allowed(agent) if callable(allowed) else allowed}; refused (changed by hand?)")
        return value

    run = check("iteration", "i", lambda v: (v < 0) | (v > config.iterations),
                f"0 to {config.iterations}, its config's iterations")
    if run is not None:
        for name in ("solved_at", "failed_at"):
            check(name, "i", lambda v: (v < -1) | (v >= run),
                  lambda a: "-1 (not yet)" + (f" or an iteration the agent has run, 0 to {run[a] - 1}" if run[a]
                                              else ", as the agent has run no iteration"))
        check("confirm_attempts", "i", lambda v: (v < 0) | (v > run),
              lambda a: f"0 to {run[a]}, at most one greedy test per iteration run")
    check("confirm_steps", "i", lambda v: v < 0, "0 or more environment steps")
    window = (num_agents, solve_window(config.num_envs))
    check("recent_episodes", "f", lambda v: ~((v >= 0) & (v <= config.num_envs) & (v == np.round(v))),
          f"whole numbers of episodes, 0 to {config.num_envs} (--num-envs) per iteration", window)
    check("recent_return_sum", "f", lambda v: ~np.isfinite(v), "finite numbers", window)
    setting = " (its setting's)" if config.num_settings > 1 else ""
    for name, expected in agent_hyperparameters(config).items():
        check(f"hparams/{name}", "f", lambda v: v != expected,
              lambda a: f"{expected[a]}, its config's {name}{setting}")


def _read_checkpoint(archive, path: Path, template_state=None, env_spec=None, policy=None):
    """``(arrays, config, template_state)``: every member checked by name and declared size, then read.

    ``template_state``: the state to resume into; every ``state/`` entry must
    then be there with its shape and dtype. Without it (evaluation, and the
    first look of a resume) the parameters must fit the config exactly, and
    the training state's entries are bounded by the sizes the config implies
    (:func:`load_train_state` checks their shapes).
    """
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import HOST_METRIC_DTYPES, METRIC_DTYPES

    members = _members(archive, path)
    arrays, config = _read_config(archive, path, members, env_spec, policy)
    strict = template_state is not None
    version = int(arrays["format_version"])
    if strict and version < FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} is format version {version}, written before solves were confirmed by the greedy "
            f"policy (its training state lacks that count); it can be evaluated (scripts/evaluate.py) but not resumed")
    if template_state is None:
        template_state = _expected_state(config)
    params = _tree_specs(template_state.params, "params")
    state = _tree_specs(template_state._replace(params=None), "state")
    num_seeds = next(iter(params.values()))[0][0]  # every leaf has the leading seed axis
    has_state = any(name.startswith("state/") for name in members)
    required = {**params, **(state if has_state and strict else {})}
    for name in required:
        if name not in members:
            raise CheckpointError(f"checkpoint {path} is missing {name!r}")
    unexpected = sorted(n for n in members if n.startswith(("params/", "state/")) and n not in {**params, **state})
    if unexpected:
        raise CheckpointError(
            f"checkpoint {path} has entries {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''} "
            f"that its config does not imply (another network or environment?)"
        )
    history = sorted(n for n in members if n.startswith("history/"))
    known = {**METRIC_DTYPES, **HOST_METRIC_DTYPES}  # and any metric's name: value_loss, a metrics_fn's
    unknown = [n for n in history if n[len("history/"):] not in known and not _METRIC_NAME.fullmatch(n[8:])]
    if unknown or len(history) > MAX_HISTORY_ENTRIES:
        raise CheckpointError(f"checkpoint {path} has {len(history)} history entries, at most {MAX_HISTORY_ENTRIES} "
                              f"named like metrics allowed; odd ones: {unknown[:4]}")
    if history and "state/iteration" not in members:
        raise CheckpointError(f"checkpoint {path} has a metric history but no training state")
    present = {name: spec for name, spec in {**params, **state}.items() if name in members}
    for name, (shape, dtype) in present.items():
        _check_declared(path, name, members[name], _NPY_HEADER_BYTES + math.prod(shape) * dtype.itemsize,
                        f"bytes its config's {shape} {dtype} array and a .npy header take")
    budget = memory.memory_budget_bytes()
    total = sum(info.file_size for info in members.values())
    if budget is not None and total > budget:
        raise CheckpointError(
            f"checkpoint {path} declares {memory.format_bytes(total)} of arrays, more than this machine's "
            f"{memory.format_bytes(budget)} of memory; refused unread"
        )
    for name, spec in present.items():
        arrays[name] = _read_member(archive, path, name, members[name], spec if strict or name in params else None)
    if history:
        # One column per iteration run: the history's size follows from state/iteration.
        iteration = arrays["state/iteration"]
        if iteration.dtype.kind not in "iu" or iteration.size == 0:
            raise CheckpointError(f"checkpoint {path} has a state/iteration of {iteration.shape} {iteration.dtype}; "
                                  f"expected ({num_seeds},) int32")
        run = int(iteration.max())
        if int(iteration.min()) < 0 or run > config.iterations:
            raise CheckpointError(
                f"checkpoint {path} has state/iteration {iteration.ravel().tolist()[:8]} outside "
                f"[0, {config.iterations}], the iterations of its config"
            )
        for name in history:
            _check_declared(path, name, members[name], _NPY_HEADER_BYTES + num_seeds * run * 8,
                            f"bytes of {num_seeds} seeds x {run} iterations run and a .npy header")
        for name in history:
            arrays[name] = _read_member(archive, path, name, members[name])
    _refuse_non_finite(arrays, path, num_seeds)
    _refuse_impossible_state(arrays, config, path, num_seeds)
    return arrays, config, template_state


def _load(run_dir, template_state=None, env_spec=None, policy=None):
    """:func:`_read_checkpoint` of ``run_dir/checkpoint.npz``; every failure a :class:`CheckpointError`."""
    return _open(run_dir, lambda archive, path: _read_checkpoint(archive, path, template_state, env_spec, policy))


def _read_run_flags(archive, path: Path) -> dict | None:
    """The ``run`` entry as a dict (``None`` where there is none), read only if its declared size is small."""
    members = _members(archive, path)
    if "run" not in members:
        return None
    _check_declared(path, "run", members["run"], TEXT_ENTRY_BYTES, "bytes a checkpoint's run flags may take")
    text = _text_entry({"run": _read_member(archive, path, "run", members["run"])}, "run")
    try:
        flags = json.loads(text) if text is not None else None
    except ValueError:
        flags = None
    if not isinstance(flags, dict):
        raise CheckpointError(f"checkpoint {path} has a 'run' entry that is not a JSON object (the run's flags)")
    return flags


def load_run_flags(run_dir) -> dict | None:
    """The run's own flags that ``run_dir/checkpoint.npz`` holds (:func:`save_checkpoint`'s ``run``).

    Reads that entry alone, its size bounded first. ``None``: a checkpoint
    without it (an older version, or one saved without the flags).

    Raises:
      CheckpointError: no readable checkpoint, or a ``run`` entry that is not a JSON object.
    """
    return _open(run_dir, _read_run_flags)


def _open(run_dir, read):
    """``read(archive, path)`` of ``run_dir/checkpoint.npz``; every failure a :class:`CheckpointError`."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with open(path, "rb"):  # is_zipfile hides why a file cannot be read
            pass
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read: {(error.strerror or str(error)).lower()}") from None
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is not a .npz (zip) archive: truncated, corrupted or foreign")
    try:
        with zipfile.ZipFile(path) as archive:
            return read(archive, path)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - zip, zlib, header and I/O errors alike
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupted?): {type(error).__name__}: {error}"
        ) from None


def load_checkpoint_arrays(run_dir, env_spec=None, policy=None):
    """``(arrays, config)`` of a checkpoint, checked for format, config, names, sizes and finiteness.

    Every entry the config implies must be there with its shape and dtype
    (the training state's only if the checkpoint has one); see the module
    docstring for what is checked before anything is decompressed.

    Raises:
      CheckpointError: file missing, not a readable ``.npz`` (truncated,
        corrupted, or containing pickled objects), another format or version,
        an invalid config, entries the config does not imply or of the wrong
        size, or non-finite parameters or optimizer state of a seed not
        marked diverged.
    """
    arrays, config, _ = _load(run_dir, env_spec=env_spec, policy=policy)
    return arrays, config


def load_checkpoint(run_dir, env_spec=None, policy=None):
    """Loads ``(params, config)`` from ``run_dir/checkpoint.npz``.

    The params are checked against the config: as many layers as
    ``config.hidden`` implies, shapes matching the environment's observation
    and action sizes, one leading seed axis of ``config.num_seeds``, finite
    (but for seeds the checkpoint marks diverged).

    ``env_spec``: the environment's spec, needed (and then checked by name) for a run of an environment
    object whose class cannot be imported by path; ``policy``: likewise, a network with no import path.

    Returns:
      ``(params, config)``: NumPy arrays with a leading seed axis, and the
      :class:`jax_reinforce.Config`.

    Raises:
      CheckpointError: (a ``ValueError``) saying what is wrong.
    """
    arrays, config, template = _load(run_dir, env_spec=env_spec, policy=policy)
    params = unflatten_like(template.params, arrays, "params")
    return params, config


def load_train_state(run_dir, template_state, env_spec=None, metric_dtypes=None, policy=None):
    """``(state, history, config)`` saved by :func:`save_checkpoint` for resuming.

    Args:
      run_dir: the run directory.
      template_state: a seed-batched :class:`jax_reinforce.TrainState` (or
        its ``jax.eval_shape``) of the same config, giving every leaf's shape
        and dtype.
      env_spec, policy: the environment and network of a run whose own are not importable.
      metric_dtypes: ``{name: dtype}`` of the metrics the resumed run makes (default: the built-in ones of
        the checkpoint's config, :func:`~jax_reinforce.core.training.metric_dtypes`); ``value_loss`` missing
        from an older checkpoint is NaN.

    Returns:
      The state as NumPy leaves, the metric history ``{name: (S, I)}`` (one
      column per iteration run, ``I`` the largest ``state.iteration``; the
      dtypes of :data:`jax_reinforce.core.training.METRIC_DTYPES`; and those of
      :data:`~jax_reinforce.core.training.HOST_METRIC_DTYPES`, ``seconds``, NaN
      where the checkpoint has none), and the config.

    Raises:
      CheckpointError: if the checkpoint has no training state, or it or its
        history does not fit the template.
    """
    # lazy: loads JAX, which the scripts import only after checking its environment (app.cli.start_jax)
    from jax_reinforce.core.training import HOST_METRIC_DTYPES, metric_dtypes as built_in_metrics

    arrays, config, _ = _load(run_dir, template_state, env_spec, policy)
    if not any(name.startswith("state/") for name in arrays):
        raise CheckpointError(
            f"checkpoint in {run_dir} holds parameters only, not a training state to resume from"
        )
    params = unflatten_like(template_state.params, arrays, "params")
    rest = unflatten_like(template_state._replace(params=None), arrays, "state")
    num_seeds = np.asarray(rest.iteration).shape[0]
    iterations_run = int(np.max(rest.iteration)) if num_seeds else 0
    history = {}
    expected = (num_seeds, iterations_run)
    expected_dtypes = {**(built_in_metrics(config) if metric_dtypes is None else metric_dtypes), **HOST_METRIC_DTYPES}
    for name, dtype in expected_dtypes.items():
        value = arrays.get(f"history/{name}")
        if value is None and name in (*HOST_METRIC_DTYPES, "value_loss"):  # a checkpoint of an older version
            value = np.full(expected, np.nan, dtype)
        kind = "f" if np.issubdtype(np.dtype(dtype), np.floating) else "iu"
        if value is None or value.shape != expected or value.dtype.kind not in kind:
            found = "nothing" if value is None else f"shape {value.shape} {value.dtype}"
            raise CheckpointError(
                f"checkpoint history {name!r} has {found}; expected {expected} "
                f"(seeds, iterations run) of {np.dtype(dtype)}"
            )
        history[name] = value.astype(dtype)
    unexpected = sorted(n[len("history/"):] for n in arrays if n.startswith("history/") and n[8:] not in history)
    if unexpected:
        raise CheckpointError(f"checkpoint in {run_dir} holds metrics {unexpected[:4]} that this run does not make: a "
                              f"run trained with a metrics_fn is resumed with the same metrics_fn passed again")
    return rest._replace(params=params), history, config
