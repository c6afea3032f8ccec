"""Driving many agents in chunks: progress between jitted calls, and no work for finished agents.

:func:`jax_reinforce.make_run_iterations` runs every agent of a vmapped batch
until the last one stops, and a stopped agent still costs its share of every
step (SPMD: the batch moves together). When most agents of a large run have
solved, a few slow ones would keep the whole batch busy. :class:`SeedRunner`
therefore runs the batch in chunks of iterations and, between chunks, moves
the agents still training into a smaller batch (a power of two, at least
two), compiled once per size.

This changes no result: each agent's computation depends only on its own
state and key, and with the trainer's compiler options
(:func:`jax_reinforce.compiler_options`, used here by default) the compiled
per-agent arithmetic is bitwise the same for every batch of two or more
agents. (With XLA's default CPU options, batches under 8 agents round
differently; a batch of ONE is special-cased by XLA in any case, so a single
agent runs as a pair of identical copies.)
``tests/test_runner.py`` checks that agents trained this way are bitwise
equal to the same agents run in one batch, whatever the chunk size.

Given several devices (of one process), the batch is split evenly over
them with ``jax.shard_map`` (over the seeds only: no collective), at least
two agents per device, so the devices run at once. On a CPU each device is a
core (:func:`jax_reinforce.compilation.use_cpu_cores`), so the agents of a
run train on every core. One program is compiled for all the devices; XLA
optimises a program partitioned over several devices slightly differently,
so results on ``D > 1`` devices equal those on one device to about 1e-6
(not bitwise) and are bitwise reproducible for the same ``D``. (Running
one single-device program per device would be bitwise equal, but compiles
``D`` programs: 1.6 s more per device on the development machine.)
"""

from __future__ import annotations

import numpy as np

from jax_reinforce.envs import describe_env
from jax_reinforce.executable_cache import load_or_compile

__all__ = ["SeedRunner", "RunProgress", "MIN_BATCH", "default_max_batch", "make_agents_program"]

# A vmapped batch of one agent compiles to different (unbatched) dot products.
MIN_BATCH = 2
# Compact when at most this fraction of the batch is still training.
COMPACT_FRACTION = 1 / 8


# On a CPU, environments per device in one call (see default_max_batch).
CPU_ENVS_PER_DEVICE = 256


def default_max_batch(num_envs: int, devices) -> int | None:
    """Agents per call for :class:`SeedRunner` on ``devices``: capped on a CPU, one batch elsewhere.

    On a CPU, a batch of ``CPU_ENVS_PER_DEVICE`` environments per device
    already runs near full speed, and a fixed small batch means finished
    agents are dropped without compiling a program of another size (about 3 s
    each, cold): 256 seeds trained in 7.6 s with calls of 16 agents, against
    8.0 s with 64 and 8.4 s with one batch compacted by recompiling (2-core
    machine, warm cache). Elsewhere (a GPU wants the biggest batch): ``None``.
    """
    if any(d.platform != "cpu" for d in devices):
        return None
    return len(devices) * max(MIN_BATCH, CPU_ENVS_PER_DEVICE // int(num_envs))


def make_agents_program(run_agents, devices, compiler_options=None):
    """``jit(run_agents)`` for ``(state, iterations)``, its batch split over ``devices``; and the batch's sharding.

    ``run_agents(state, iterations)`` is a vmapped batch of agents
    (``jax.vmap(make_run_iterations(...), in_axes=(0, None))``) with
    ``iterations`` static. On one device the program is ``run_agents``
    itself and the sharding ``None``; on several, ``jax.shard_map`` splits
    the batch's leading (seed) axis evenly over them, with no collective, and
    inputs must be placed with the returned ``NamedSharding``.
    """
    import jax

    devices = list(devices)
    sharding = None
    if len(devices) > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(devices), ("seeds",))
        by_seed = PartitionSpec("seeds")
        sharding = NamedSharding(mesh, by_seed)
        local_agents = run_agents

        def run_agents(state, iterations):
            return jax.shard_map(lambda s: local_agents(s, iterations), mesh=mesh, in_specs=(by_seed,),
                                 out_specs=(by_seed, by_seed), check_vma=False)(state)

    return jax.jit(run_agents, static_argnums=1, compiler_options=compiler_options), sharding


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class RunProgress:
    """What a runner's host-side ``state`` and ``history`` say about the run.

    Shared by :class:`SeedRunner` and :class:`jax_reinforce.distributed.ShardedRunner`,
    which keep ``config``, ``state`` (a seed-batched TrainState of NumPy
    arrays) and ``history`` (``{metric: (num_seeds, iterations_run)}``).
    """

    @property
    def iterations_run(self) -> int:
        """Iterations run so far (columns of the history)."""
        return int(self.history["episodes"].shape[1])

    def running(self) -> np.ndarray:
        """``(num_seeds,)`` bool: agents that will still train."""
        s = self.state
        return (np.asarray(s.iteration) < self.config.iterations) & (np.asarray(s.solved_at) < 0) & (
            np.asarray(s.failed_at) < 0
        )

    def solve_scores(self) -> np.ndarray:
        """``(num_seeds,)`` mean return over each agent's last 100+ episodes."""
        sums = np.asarray(self.state.recent_return_sum).sum(axis=1)
        counts = np.asarray(self.state.recent_episodes).sum(axis=1)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class SeedRunner(RunProgress):
    """Trains ``config.num_seeds`` agents in chunks of ``chunk_iterations``.

    Attributes:
      state: the full seed-batched :class:`jax_reinforce.TrainState` as
        NumPy arrays, updated after every chunk.
      history: ``{metric: (num_seeds, iterations_run)}`` per-seed metrics.
    """

    def __init__(self, config, env_spec, chunk_iterations: int, compiler_options=None, compact: bool = True,
                 devices=None, max_batch: int | None = None):
        import jax

        from jax_reinforce.compilation import compiler_options as default_options
        from jax_reinforce.training import METRIC_DTYPES, METRIC_NAMES, make_init_state, make_run_iterations

        self.config = config
        self.chunk = int(chunk_iterations)
        self.compact = compact
        if max_batch is not None and int(max_batch) < 1:
            raise ValueError(f"max_batch must be None or an integer >= 1; got {max_batch!r}")
        self.max_batch = None if max_batch is None else int(max_batch)
        self._metric_names = METRIC_NAMES
        self._metric_dtypes = {name: np.dtype(dtype) for name, dtype in METRIC_DTYPES.items()}
        axis = "agent"
        if compiler_options is None:
            compiler_options = default_options()
        self._init = jax.jit(jax.vmap(make_init_state(config, env_spec)), compiler_options=compiler_options)
        run_agents = jax.vmap(make_run_iterations(config, env_spec, axis_name=axis), in_axes=(0, None), axis_name=axis)
        self.devices = list(devices) if devices is not None else [jax.devices()[0]]
        if len(self.devices) != len(set(self.devices)) or len({d.process_index for d in self.devices}) != 1:
            raise ValueError(f"devices must be distinct devices of one process; got {self.devices!r}")
        self._run, self._sharding = make_agents_program(run_agents, self.devices, compiler_options)
        self._compiled = {}
        # What the programs depend on besides the code (executable_cache's key).
        self._description = (config.to_dict(), describe_env(env_spec), sorted((compiler_options or {}).items()))
        self.state = None
        self.history = {name: np.zeros((config.num_seeds, 0), self._metric_dtypes[name]) for name in METRIC_NAMES}

    # ------------------------------------------------------------------ state

    def init(self, keys):
        """Fresh agents from ``(num_seeds,)`` keys (``jax_reinforce.agent_keys``)."""
        import jax

        keys = np.asarray(keys)
        init = load_or_compile("init", (self._description, keys.shape, str(keys.dtype)),
                               lambda: self._init.lower(keys), self.devices[:1])
        self.state = jax.device_get(init(keys))
        return self.state

    def restore(self, state, history):
        """Continues from a saved state and metric history."""
        self.state = state
        self.history = {name: np.asarray(history[name]) for name in self._metric_names}

    # ------------------------------------------------------------------ running

    def _full_size(self, num_agents: int) -> int:
        """Smallest batch for ``num_agents`` that every device shares evenly, >= MIN_BATCH each."""
        per_device = max(MIN_BATCH, -(-num_agents // len(self.devices)))
        return per_device * len(self.devices)

    def _batch_indices(self) -> np.ndarray:
        """Which seeds form the next batch (a seed may appear more than once, as padding)."""
        num_seeds = self.config.num_seeds
        active = np.flatnonzero(self.running())
        if not self.compact or len(active) > num_seeds * COMPACT_FRACTION:
            chosen, size = np.arange(num_seeds), self._full_size(num_seeds)
        else:
            size = len(self.devices) * max(MIN_BATCH, _next_power_of_two(-(-len(active) // len(self.devices))))
            chosen = np.arange(num_seeds) if size >= self._full_size(num_seeds) else active
            size = min(size, self._full_size(num_seeds))
        pad_with = active[0] if len(active) else chosen[0]
        return np.concatenate([chosen, np.full(size - len(chosen), pad_with, dtype=chosen.dtype)])

    def _unit_size(self) -> int:
        """Agents per call when ``max_batch`` caps the batch."""
        return self._full_size(min(self.config.num_seeds, self.max_batch))

    def _batches(self) -> list[np.ndarray]:
        """The seeds of each call of the next chunk (a seed may appear more than once, as padding).

        Without ``max_batch``: one call, :meth:`_batch_indices`. With it: the
        agents still training (every agent if ``compact`` is off) packed into
        calls of one fixed size, so finished agents cost nothing and no other
        size is ever compiled.
        """
        if self.max_batch is None:
            return [self._batch_indices()]
        unit = self._unit_size()
        active = np.flatnonzero(self.running())
        agents = active if (self.compact and len(active)) else np.arange(self.config.num_seeds)
        groups = [agents[i:i + unit] for i in range(0, len(agents), unit)]
        return [np.concatenate([g, np.full(unit - len(g), g[0], dtype=g.dtype)]) for g in groups]

    def compile(self, batch_size: int | None = None):
        """Compiles the chunk function for a batch size, or loads it (:mod:`jax_reinforce.executable_cache`)."""
        import jax

        default = self._full_size(self.config.num_seeds) if self.max_batch is None else self._unit_size()
        size = batch_size or default
        if size not in self._compiled:
            example = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct((size, *x.shape[1:]), x.dtype, sharding=self._sharding), self.state
            )
            self._compiled[size] = load_or_compile(
                "train_chunk", (self._description, size, self.chunk), lambda: self._run.lower(example, self.chunk),
                self.devices)
        return self._compiled[size]

    def run_chunk(self) -> dict:
        """Runs up to ``chunk_iterations`` iterations of every agent still training.

        Returns:
          ``{metric: (num_seeds, rows)}`` for the rows this chunk ran (NaN or 0
          for agents that did not train in them); also appended to
          :attr:`history`.
        """
        import jax

        batches = self._batches()
        index = np.concatenate(batches)
        before = int(np.max(np.asarray(self.state.iteration)[index]))
        results = []
        for part in batches:  # dispatched one after another without waiting: the device stays busy
            batch = jax.tree.map(lambda x: x[part], self.state)
            if self._sharding is not None:
                batch = jax.device_put(batch, self._sharding)
            results.append(self.compile(len(part))(batch))
        results = jax.device_get(results)
        new_batch, metrics = jax.tree.map(lambda *parts: np.concatenate(parts), *results)
        # Write each seed back once (padding copies are identical to their original).
        seeds, first = np.unique(index, return_index=True)
        self.state = jax.tree.map(
            lambda full, part: _scatter(full, seeds, part[first]), self.state, new_batch
        )
        rows = int(np.max(np.asarray(new_batch.iteration))) - before
        chunk_metrics = {}
        for name in self._metric_names:
            dtype = self._metric_dtypes[name]
            filler = np.nan if np.issubdtype(dtype, np.floating) else 0
            full = np.full((self.config.num_seeds, rows), filler, dtype)
            full[seeds] = np.asarray(metrics[name])[first, :rows]
            chunk_metrics[name] = full
            self.history[name] = np.concatenate([self.history[name], full], axis=1)
        return chunk_metrics


def _scatter(full, seeds, values):
    out = np.array(full, copy=True)
    out[seeds] = values
    return out
