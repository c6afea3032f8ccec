"""Checkpoints: one ``checkpoint.npz`` per run directory, no pickle anywhere.

Format (version :data:`FORMAT_VERSION`), a NumPy ``.npz`` archive read with
``allow_pickle=False``, so loading never runs code from the file:

- ``format``: the string ``"jax-reinforce-checkpoint"``;
- ``format_version``: int64 scalar;
- ``config``: the run's :class:`jax_reinforce.Config` as a JSON string;
- ``params/<layer>/w``, ``params/<layer>/b``: the policy of every agent, with
  a leading seed axis ``(num_seeds, fan_in, fan_out)`` and ``(num_seeds, fan_out)``;
- optionally ``state/<path>``: every other leaf of the full training state
  (optimizer state, PRNG keys, iteration counters), for resuming, named by its
  pytree path;
- with the state, ``history/<metric>``: ``(num_seeds, I)`` per-seed metrics of
  the ``I`` iterations run so far (``I`` = the largest ``state/iteration``), from
  which ``metrics.csv`` is rebuilt, so a resumed run has one row per iteration.

Writes are atomic: a temporary file in the same directory is written, flushed
and fsynced, then renamed over ``checkpoint.npz``, so a crash leaves either
the old checkpoint or the new one, never a torn file (at most a stray
temporary file, which :func:`remove_stale_temporaries` clears).

Loading checks everything before anything is used: the file must be a zip
archive of plain ``.npy`` arrays (an object array, which only pickle could
rebuild, is refused unread), carry the format tag and version, hold a valid
config, and hold exactly the entries that config implies, with the right
shapes and dtypes. Any other file raises :class:`CheckpointError`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "CHECKPOINT_NAME",
    "CheckpointError",
    "atomic_write_bytes",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_arrays",
    "flatten_tree",
    "unflatten_like",
    "load_train_state",
    "remove_stale_temporaries",
]

FORMAT_NAME = "jax-reinforce-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, foreign or does not fit."""


def _file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temp file, fsync, rename).

    A reader, or a crash at any moment, sees the old file or the new one,
    never a mixture. The temporary file is ``.<name>.<random>.tmp`` beside
    ``path``; it gets the permissions a plain ``open()`` would give.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())  # mkstemp makes 0o600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def remove_stale_temporaries(run_dir, names) -> list[Path]:
    """Deletes temporary files that a killed :func:`atomic_write_bytes` left.

    Args:
      run_dir: the directory.
      names: the file names whose temporaries (``.<name>.*.tmp``) to remove.

    Returns:
      The paths removed.
    """
    removed = []
    for name in names:
        for tmp in Path(run_dir).glob(f".{name}.*.tmp"):
            if tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
    return removed


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


def save_checkpoint(run_dir, params, config, state=None, history=None) -> Path:
    """Saves the params of all seeds (and optionally the full training state).

    Args:
      run_dir: the run directory (created if missing).
      params: the policy pytree with a leading seed axis on every leaf.
      config: the run's :class:`jax_reinforce.Config`.
      state: optionally the full :class:`jax_reinforce.TrainState` (batched
        over seeds), so that training can resume exactly.
      history: optionally a dict of per-seed metric arrays ``(S, I)`` of the
        iterations run so far, saved as ``history/<name>``.

    Returns:
      The checkpoint's path, ``run_dir/checkpoint.npz``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {
        "format": np.asarray(FORMAT_NAME),
        "format_version": np.asarray(FORMAT_VERSION, np.int64),
        "config": np.asarray(json.dumps(config.to_dict(), sort_keys=True)),
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


def _read_npz(path: Path) -> dict:
    """Every entry of a ``.npz`` as a NumPy array, never unpickling anything."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is not a .npz (zip) archive: truncated, corrupted or foreign")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects; refused unread (a checkpoint holds plain arrays only)"
            ) from None
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupted?): {error}") from None
    except Exception as error:  # noqa: BLE001 - zip, zlib, header and I/O errors alike
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupted?): {type(error).__name__}: {error}"
        ) from None
    # NumPy hands back the raw bytes of a member that is not a .npy file.
    odd = sorted(name for name, value in arrays.items() if not isinstance(value, np.ndarray))
    if odd:
        raise CheckpointError(f"checkpoint {path} holds members that are not .npy arrays: {odd[:4]}")
    return arrays


def _text_entry(arrays: dict, name: str):
    value = arrays.get(name)
    if value is None or value.shape != () or value.dtype.kind != "U":
        return None
    return str(value)


def load_checkpoint_arrays(run_dir):
    """``(arrays, config)`` of a checkpoint, checked for format and config.

    Raises:
      CheckpointError: file missing, not a readable ``.npz`` (truncated,
        corrupted, or containing pickled objects), another format or version,
        or an invalid config.
    """
    from jax_reinforce.config import Config

    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    arrays = _read_npz(path)
    if _text_entry(arrays, "format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a jax-reinforce checkpoint (no format tag {FORMAT_NAME!r})")
    version = arrays.get("format_version")
    if version is None or version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {None if version is None else version.tolist()!r}; "
            f"this version of jax-reinforce reads version {FORMAT_VERSION}"
        )
    text = _text_entry(arrays, "config")
    if text is None:
        raise CheckpointError(f"checkpoint {path} has no config (a JSON string entry 'config')")
    try:
        config = Config.from_dict(json.loads(text))
    except (ValueError, TypeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None
    return arrays, config


def _expected_params(config, num_seeds: int):
    import jax

    from jax_reinforce.envs import make_env
    from jax_reinforce.policy import init_policy

    spec = make_env(config.env)
    keys = jax.ShapeDtypeStruct((num_seeds, 2), np.uint32)
    return jax.eval_shape(
        jax.vmap(lambda k: init_policy(k, spec.obs_dim, config.hidden, spec.n_actions)), keys
    )


def load_checkpoint(run_dir):
    """Loads ``(params, config)`` from ``run_dir/checkpoint.npz``.

    The params are checked against the config: as many layers as
    ``config.hidden`` implies, shapes matching the environment's observation
    and action sizes, one leading seed axis of ``config.num_seeds``.

    Returns:
      ``(params, config)``: NumPy arrays with a leading seed axis, and the
      :class:`jax_reinforce.Config`.

    Raises:
      CheckpointError: (a ``ValueError``) saying what is wrong.
    """
    arrays, config = load_checkpoint_arrays(run_dir)
    params = unflatten_like(_expected_params(config, config.num_seeds), arrays, "params")
    return params, config


def load_train_state(run_dir, template_state):
    """``(state, history, config)`` saved by :func:`save_checkpoint` for resuming.

    Args:
      run_dir: the run directory.
      template_state: a seed-batched :class:`jax_reinforce.TrainState` (or
        its ``jax.eval_shape``) of the same config, giving every leaf's shape
        and dtype.

    Returns:
      The state as NumPy leaves, the metric history ``{name: (S, I)}`` (one
      column per iteration run, ``I`` the largest ``state.iteration``; the
      dtypes of :data:`jax_reinforce.training.METRIC_DTYPES`), and the config.

    Raises:
      CheckpointError: if the checkpoint has no training state, or it or its
        history does not fit the template.
    """
    from jax_reinforce.training import METRIC_DTYPES

    arrays, config = load_checkpoint_arrays(run_dir)
    if not any(name.startswith("state/") for name in arrays):
        raise CheckpointError(
            f"checkpoint in {run_dir} holds parameters only, not a training state to resume from"
        )
    params = unflatten_like(template_state.params, arrays, "params")
    rest = unflatten_like(template_state._replace(params=None), arrays, "state")
    num_seeds = np.asarray(rest.iteration).shape[0]
    iterations_run = int(np.max(rest.iteration)) if num_seeds else 0
    history = {}
    for name, dtype in METRIC_DTYPES.items():
        value = arrays.get(f"history/{name}")
        expected = (num_seeds, iterations_run)
        kind = "f" if np.issubdtype(np.dtype(dtype), np.floating) else "iu"
        if value is None or value.shape != expected or value.dtype.kind not in kind:
            found = "nothing" if value is None else f"shape {value.shape} {value.dtype}"
            raise CheckpointError(
                f"checkpoint history {name!r} has {found}; expected {expected} "
                f"(seeds, iterations run) of {np.dtype(dtype)}"
            )
        history[name] = value.astype(dtype)
    unexpected = sorted(n for n in arrays if n.startswith("history/") and n[len("history/"):] not in METRIC_DTYPES)
    if unexpected:
        raise CheckpointError(f"checkpoint has unknown history entries {unexpected[:4]}")
    return rest._replace(params=params), history, config
