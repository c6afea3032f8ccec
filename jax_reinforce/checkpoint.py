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
  pytree path.

Writes are atomic: a temporary file in the same directory is written, flushed
and fsynced, then renamed over ``checkpoint.npz``, so a crash leaves either
the old checkpoint or the new one, never a torn file.
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
]

FORMAT_NAME = "jax-reinforce-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, foreign or does not fit."""


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
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

    Every leaf must be present with the template's shape and dtype.

    Raises:
      CheckpointError: naming the first missing or mismatched leaf.
    """
    import jax

    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for path, leaf in leaves:
        name = f"{prefix}/{_path_name(path)}"
        if name not in arrays:
            raise CheckpointError(f"checkpoint is missing {name!r}")
        value = arrays[name]
        if value.shape != tuple(leaf.shape) or value.dtype != np.dtype(leaf.dtype):
            raise CheckpointError(
                f"checkpoint entry {name!r} has shape {value.shape} {value.dtype}; "
                f"expected {tuple(leaf.shape)} {np.dtype(leaf.dtype)}"
            )
        out.append(value)
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
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupted?): {error}") from None
    if "format" not in arrays or str(arrays["format"]) != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a jax-reinforce checkpoint (no format tag {FORMAT_NAME!r})")
    version = arrays.get("format_version")
    if version is None or version.shape != () or int(version) != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {None if version is None else version.tolist()}; "
            f"this version of jax-reinforce reads version {FORMAT_VERSION}"
        )
    try:
        config = Config.from_dict(json.loads(str(arrays["config"])))
    except (KeyError, ValueError, TypeError) as error:
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
      The state as NumPy leaves, the metric history ``{name: (S, I)}``, and
      the config.

    Raises:
      CheckpointError: if the checkpoint has no training state or it does not
        fit the template.
    """
    arrays, config = load_checkpoint_arrays(run_dir)
    if not any(name.startswith("state/") for name in arrays):
        raise CheckpointError(
            f"checkpoint in {run_dir} holds parameters only, not a training state to resume from"
        )
    params = unflatten_like(template_state.params, arrays, "params")
    rest = unflatten_like(template_state._replace(params=None), arrays, "state")
    history = {name[len("history/"):]: value for name, value in arrays.items() if name.startswith("history/")}
    num_seeds = params[0]["w"].shape[0]
    for name, value in history.items():
        if value.ndim != 2 or value.shape[0] != num_seeds:
            raise CheckpointError(f"checkpoint history {name!r} has shape {value.shape}; expected ({num_seeds}, iterations)")
    return rest._replace(params=params), history, config
