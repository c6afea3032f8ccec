"""Driving many agents in chunks: progress between jitted calls, and no work for finished agents.

:func:`jax_reinforce.make_run_iterations` runs every agent of a vmapped batch
until the last one stops, and a stopped agent still costs its share of every
step (SPMD: the batch moves together). When most agents of a large run have
solved, a few slow ones would keep the whole batch busy. :class:`Runner`
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
``tests/harness/test_runner.py`` checks that agents trained this way are bitwise
equal to the same agents run in one batch, whatever the chunk size.

Given several devices, the calls are dealt over them, each call a
single-device program of ``size`` agents (the same program, compiled once
per device), so the devices run at once. On a device, up to ``threads``
calls run at once, each from its own thread: JAX's CPU client runs calls
made from several threads in parallel, one core each (calls made from one
thread run one after another), so on a CPU one device and one thread per
core (:func:`default_threads`) train on every core with ONE compiled
program. Splitting the CPU into one device per core
(:func:`jax_reinforce.harness.compilation.use_cpu_cores`) runs as fast but compiles
the program once per device (``docs/performance.md``, round 8). Devices of
several processes
(``jax.distributed``): each process trains its own block of the seeds on its
own devices, and after every chunk the processes exchange their seeds' state
and metrics (``process_allgather``), so every process holds every seed.
Nothing is partitioned: every agent runs the
same machine code on 1, 2 or 16 devices and in any thread, so the results do
not depend on the device, thread or process count, bit for bit
(``tests/harness/test_runner.py``, ``tests/app/test_train_cli_scaling.py``). A program
partitioned over the devices (``jax.shard_map``) would compile once, but XLA
optimises it slightly differently (results about 1e-6 apart, then diverging);
the extra compiles run in parallel threads.

With fewer seeds than devices, the same runner splits each agent's
environments over a group of devices instead (:func:`mesh_shape`): one call
of every seed on a ``("seeds", "envs")`` mesh of all the devices, a
``jax.shard_map`` program whose gradient, baseline statistics, metrics and
loop stop tests are summed or maxed over an ``"envs"`` group (all-reduces
inside the loop, the price of the split; across processes too). That layout
is the one that is not bitwise the one-device run: the sums are taken in
another order (about 1e-6 apart after a few iterations on the CPU).
"""

from __future__ import annotations

import numpy as np

from jax_reinforce.core.config import SWEEPABLE, env_spec_of
from jax_reinforce.core.envs import describe_env
from jax_reinforce.core.training import HYPERPARAMETERS, agent_hyperparameters, agent_keys_from, make_init_state
from jax_reinforce.core.training import make_run_iterations, metric_dtypes
from jax_reinforce.harness.compilation import code_digest, available_cores, lower_program
from jax_reinforce.harness.compilation import compiler_options as default_options
from jax_reinforce.harness.devices import MIN_BATCH, gather_to_host

__all__ = ["Runner", "RunProgress", "default_max_batch", "default_threads", "compile_for_devices",
           "mesh_shape"]

SEED_AXIS, ENV_AXIS, AGENT_AXIS = "seeds", "envs", "agent"  # mesh axes; the vmapped agents

# Compact when at most this fraction of the batch is still training.
COMPACT_FRACTION = 1 / 8


# On a CPU, environments per device in one call (see default_max_batch).
CPU_ENVS_PER_DEVICE = 256


def default_threads(devices) -> int:
    """Calls :class:`Runner` runs at once on each of ``devices`` (those of this process).

    On a CPU, one per core this process may use, shared by the CPU devices:
    ``max(1, available_cores() // len(devices))`` (JAX's CPU client runs
    calls from different threads in parallel, one core each). Elsewhere 1:
    an accelerator runs one program at a time, and one call of every agent
    fills it.
    """
    import jax

    devices = [d for d in devices if d.process_index == jax.process_index()]
    if not devices or any(d.platform != "cpu" for d in devices):
        return 1
    return max(1, available_cores() // len(devices))


def default_max_batch(num_envs: int, devices, threads: int | None = None) -> int | None:
    """Agents per call for :class:`Runner` on ``devices``: capped on a CPU, one batch elsewhere.

    On a CPU, a batch of ``CPU_ENVS_PER_DEVICE`` environments per concurrent
    call already runs near full speed, and a fixed small batch means finished
    agents are dropped without compiling a program of another size
    (``docs/performance.md`` compares the sizes). The cap is shared by every concurrent call:
    ``len(devices) * threads`` of them (``threads``: :func:`default_threads`
    when ``None``). Elsewhere (a GPU wants the biggest batch): ``None``.
    """
    if any(d.platform != "cpu" for d in devices):
        return None
    threads = default_threads(devices) if threads is None else int(threads)
    return len(devices) * threads * max(MIN_BATCH, CPU_ENVS_PER_DEVICE // int(num_envs))


def compile_for_devices(compile_for, devices) -> dict:
    """``{device: compile_for(device)}``, the compilations in parallel threads.

    XLA releases the GIL while it compiles; compiling for a second device
    costs wall time only where a core is free.
    """
    from concurrent.futures import ThreadPoolExecutor

    devices = list(devices)
    if len(devices) <= 1:
        return {device: compile_for(device) for device in devices}
    with ThreadPoolExecutor(len(devices)) as pool:
        return dict(zip(devices, pool.map(compile_for, devices)))


def mesh_shape(num_seeds: int, num_envs: int, num_devices: int) -> tuple[int, int]:
    """``(seed_shards, env_shards)`` with ``seed_shards * env_shards = num_devices``.

    - ``num_seeds >= num_devices``: ``(num_devices, 1)``: the seeds are dealt
      over the devices; nothing crosses devices inside a call.
    - fewer seeds than devices: each agent's environments are split too, over
      the fewest shards ``e`` (``e`` dividing ``num_devices`` and
      ``num_envs``) that leave no more seed shards than seeds, so that no
      device holds padding agents alone; the fewer the shards, the fewer the
      all-reduces. If ``num_envs`` has no such divisor, the largest usable
      ``e`` is taken and some devices hold only padding (and a warning says so).
    """
    if num_seeds >= num_devices:
        return num_devices, 1
    usable = [e for e in range(1, num_devices + 1) if num_devices % e == 0 and num_envs % e == 0]
    enough = [e for e in usable if num_devices // e <= num_seeds]
    if enough:
        env_shards = min(enough)
    else:
        import warnings

        env_shards = max(usable)
        warnings.warn(
            f"{num_seeds} seeds of {num_envs} environments cannot fill {num_devices} devices "
            f"(num_envs has no suitable divisor): {num_devices // env_shards - num_seeds} device groups "
            "hold only padding agents; use fewer devices or a num_envs divisible by the device count",
            stacklevel=2,
        )
    return num_devices // env_shards, env_shards


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class RunProgress:
    """What a runner's host-side ``state`` and ``history`` say about the run.

    Kept by :class:`Runner`: ``config``, ``state`` (a seed-batched TrainState of NumPy
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


class Runner(RunProgress):
    """Trains ``config.num_agents`` agents in chunks of ``chunk_iterations``, on every layout.

    Agent ``a`` is seed ``a % num_seeds`` of setting ``a // num_seeds`` of
    the config's sweep (:meth:`jax_reinforce.Config.settings`; one setting
    without a sweep): its key is ``fold_in(PRNGKey(config.seed), a %
    num_seeds)`` and its hyper-parameters that setting's, so it trains
    exactly as that seed alone with that setting.

    ``env_shards == 1`` (at least as many seeds as devices): calls of a
    one-device program dealt over the devices, up to ``threads`` at once on
    each (:func:`default_threads` when ``None``), bitwise the one-device,
    one-thread run.
    ``env_shards > 1``: one call of every seed (padded to a multiple of the
    seed shards) on :attr:`mesh`, each agent's environments split over an
    ``"envs"`` group. Every method is collective in a multi-process job:
    every process calls them in the same order.

    Attributes:
      state: the full seed-batched :class:`jax_reinforce.TrainState` as
        NumPy arrays, updated after every chunk (the same on every process).
      history: ``{metric: (num_seeds, iterations_run)}`` per-seed metrics.
      seconds: ``(iterations_run,)`` float32 cumulative training wall-clock
        seconds at the end of each iteration: each chunk's time (its calls
        and fetches) spread evenly over the iterations it ran, NaN for
        iterations restored without them. Kept apart from :attr:`history`,
        which is bitwise the same from run to run; saved in checkpoints as
        ``history/seconds`` (:meth:`history_with_seconds`).
      env_shards: devices that share one agent's environments (1: none).
      threads: calls run at once on each device (1 when split).
      mesh: the ``("seeds", "envs")`` mesh when ``env_shards > 1``, else ``None``.
      owned: the seeds this process trains (its block; every seed when split).
    """

    def __init__(self, config, env_spec, chunk_iterations: int, compiler_options=None, compact: bool = True,
                 devices=None, max_batch: int | None = None, threads: int | None = None, *, policy=None,
                 metrics_fn=None):
        import jax

        if env_spec is None:
            env_spec = env_spec_of(config)
        self.config = config
        self.chunk = int(chunk_iterations)
        if max_batch is not None and int(max_batch) < 1:
            raise ValueError(f"max_batch must be None or an integer >= 1; got {max_batch!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                    or threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1; got {threads!r}")
        self._metric_dtypes = {name: np.dtype(dtype) for name, dtype in metric_dtypes(config).items()}
        if metrics_fn is not None:  # the own metrics' names, from one trace of an iteration (float32)
            run_one = make_run_iterations(config, env_spec, policy=policy, metrics_fn=metrics_fn)
            hparams = {name: jax.ShapeDtypeStruct((), np.float32) for name in HYPERPARAMETERS}  # a sweep's too
            state = jax.eval_shape(lambda key, hp: make_init_state(config, env_spec, policy=policy)(key, None, hp),
                                   jax.ShapeDtypeStruct((2,), np.uint32), hparams)
            names = jax.eval_shape(lambda s: run_one(s, 1)[1], state)
            self._metric_dtypes.update({name: np.dtype(np.float32) for name in names if name not in self._metric_dtypes})
        self._metric_names = tuple(self._metric_dtypes)
        if compiler_options is None:
            compiler_options = default_options()
        self._options = compiler_options
        self.devices = list(devices) if devices is not None else [jax.devices()[0]]
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        if len(self.devices) != len(set(self.devices)) or not self.local_devices:
            raise ValueError(f"devices must be distinct devices, some of this process; got {self.devices!r}")
        seed_shards, self.env_shards = mesh_shape(config.num_agents, config.num_envs, len(self.devices))
        split = self.env_shards > 1
        # A split layout is fixed: every seed in one call; finished agents stay frozen in their lanes.
        self.compact = compact and not split
        self.max_batch = None if (max_batch is None or split) else int(max_batch)
        self._init_state = jax.vmap(make_init_state(config, env_spec, policy=policy))
        self._run_agents = jax.vmap(make_run_iterations(config, env_spec, axis_name=AGENT_AXIS,
                                                        env_axis_name=ENV_AXIS if split else None,
                                                        policy=policy, metrics_fn=metrics_fn),
                                    in_axes=(0, None), axis_name=AGENT_AXIS)
        if split:
            from jax.sharding import Mesh

            devices_by_process = sorted(self.devices, key=lambda d: (d.process_index, d.id))
            self.mesh = Mesh(np.asarray(devices_by_process, dtype=object).reshape(seed_shards, self.env_shards),
                             (SEED_AXIS, ENV_AXIS))
            self._slots = [self.mesh]
            self.threads = 1  # one collective call of every seed
            self._blocks = [np.arange(config.num_agents)]  # every process takes part in the one call
        else:
            # Each process trains its own block of seeds on its own devices; all see every seed after a chunk.
            self.mesh = None
            self._slots = self.local_devices
            self.threads = default_threads(self.local_devices) if threads is None else int(threads)
            processes = sorted({d.process_index for d in self.devices})
            self._blocks = np.array_split(np.arange(config.num_agents), len(processes))
        self.owned = self._blocks[0] if split else self._blocks[processes.index(jax.process_index())]
        self._compiled = {}
        self._init_programs = {}
        # What the programs depend on besides the code and the arguments (program_cache's key): not the
        # hyper-parameters' values nor the seeds, which are arguments.

        shape = {k: v for k, v in config.to_dict().items() if k not in (*SWEEPABLE, "seed", "num_seeds")}
        own = code_digest(type(env_spec.env), *(policy[:2] if policy else ()), metrics_fn)  # the user's code, if any
        self._description = None if own is None else (shape, describe_env(env_spec),
                                                       sorted((compiler_options or {}).items()), own)
        self.state = None
        self.history = {name: np.zeros((config.num_agents, 0), dtype) for name, dtype in self._metric_dtypes.items()}
        self.seconds = np.zeros(0, np.float32)

    @property
    def metric_dtypes(self) -> dict:
        """``{name: dtype}`` of the metrics each iteration makes (the built-in ones, ``value_loss``, a ``metrics_fn``'s)."""
        return dict(self._metric_dtypes)

    def describe(self) -> str:
        """One line for the log: devices, processes and the layout."""
        platforms = "/".join(sorted({d.platform for d in self.devices}))
        processes = len({d.process_index for d in self.devices})
        where = (f"{len(self.devices)} {platforms} device{'s' * (len(self.devices) > 1)} in {processes} "
                 f"process{'es' * (processes > 1)}")
        if self.mesh is None:
            each = " on each" if len(self.devices) > 1 else ""
            at_once = f", {self.threads} calls at once{each}, one thread each" if self.threads > 1 else ""
            return f"{where}{at_once}: the seeds dealt over them"
        seed_shards = self.mesh.shape[SEED_AXIS]
        padding = self._full_size() - self.config.num_agents
        return (f"{where}: {seed_shards} seed shard{'s' * (seed_shards > 1)} x {self.env_shards} environment "
                f"shards, each agent's environments split" + (f" ({padding} padding agents)" if padding else ""))

    # ------------------------------------------------------------------ state

    def init(self, keys=None):
        """Fresh agents: agent ``a`` from ``fold_in(PRNGKey(config.seed), a % num_seeds)``, or from ``keys``.

        ``keys``: ``(num_agents, 2)``. The keys and every agent's
        hyper-parameters (:meth:`agent_hyperparameters`) are made inside the
        compiled initialisation program, from arguments: another seed or
        other values reuse it.
        """
        import jax

        name, args = self._init_program(keys)
        program = self._init_programs[name]
        if isinstance(program, jax.stages.Lowered):  # lowered (by state_shapes) but not compiled yet
            program = self._init_programs[name] = program.compile()
        self.state = jax.device_get(program(*args))
        return self.state

    def state_shapes(self):
        """The shapes and dtypes of :meth:`init`'s state (``jax.ShapeDtypeStruct`` leaves), nothing run.

        Read from the lowered initialisation program (lowered, or loaded from the cache, once for
        :meth:`init` too; not compiled here), so a warm start traces nothing for it.
        """
        import jax

        name, _ = self._init_program(None)
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), self._init_programs[name].out_info)

    def _init_program(self, keys):
        """The initialisation program's name and arguments; the program (lowered, then compiled by :meth:`init`)
        is kept in ``_init_programs`` so that :meth:`state_shapes` and :meth:`init` share it."""
        import jax

        hparams = self.agent_hyperparameters()
        if keys is None:
            def init_agents(seed, indices, hparams):
                return self._init_state(agent_keys_from(seed, indices), None, hparams)

            indices = np.arange(self.config.num_agents, dtype=np.uint32) % np.uint32(self.config.num_seeds)
            args = (np.uint32(self.config.seed), indices, hparams)
        else:
            def init_agents(keys, hparams):
                return self._init_state(keys, None, hparams)

            args = (np.asarray(keys), hparams)
        specs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), args)
        name = "init" if keys is None else "init_from_keys"
        if name not in self._init_programs:
            self._init_programs[name] = lower_program(name, self._description, init_agents, specs,
                                                      self.local_devices[0], self._options)
        return name, args

    def agent_hyperparameters(self) -> dict:
        """``{name: (num_agents,) float32}``: each agent's setting (:func:`jax_reinforce.core.training.agent_hyperparameters`)."""
        return agent_hyperparameters(self.config)

    def restore(self, state, history):
        """Continues from a saved state and metric history (the same on every process).

        ``history["seconds"]`` (``(num_agents, I)`` or ``(I,)``), where there,
        restores :attr:`seconds`; without it they are NaN (a checkpoint of an
        older version), unless :attr:`seconds` already fits the history's width
        (the runner's own history given back).
        """
        self.state = state
        self.history = {name: np.asarray(history[name]) for name in self._metric_names}
        width = self.history["episodes"].shape[1]
        seconds = history.get("seconds")
        if seconds is not None:
            seconds = np.asarray(seconds, np.float32)
            self.seconds = np.max(seconds, axis=0) if seconds.ndim == 2 and seconds.shape[0] else seconds
        elif self.seconds.shape != (width,):
            self.seconds = np.full(width, np.nan, np.float32)
        if self.seconds.shape != (width,):
            raise ValueError(f"seconds of {self.seconds.shape} do not fit a history of {width} iterations")

    def history_with_seconds(self) -> dict:
        """:attr:`history` and ``"seconds"``: :attr:`seconds` repeated for every agent, ``(num_agents, I)``."""
        seconds = np.broadcast_to(self.seconds, (self.config.num_agents, len(self.seconds)))
        return {**self.history, "seconds": np.ascontiguousarray(seconds)}

    # ------------------------------------------------------------------ running

    def _full_size(self) -> int:
        """Agents per call when the batch is not capped: this process's seeds shared by its slots, >= MIN_BATCH.

        Split: every seed, padded to a multiple of the seed shards.
        """
        if self.mesh is not None:
            shards = self.mesh.shape[SEED_AXIS]
            return -(-self.config.num_agents // shards) * shards
        return max(MIN_BATCH, -(-len(self.owned) // self._lanes()))

    def _lanes(self) -> int:
        """Calls that run at once in this process: its devices times :attr:`threads`."""
        return len(self._slots) * self.threads

    def _call_size(self, active: int) -> int:
        """Agents per call for ``active`` agents still training.

        With ``max_batch``: one fixed size, ``max_batch`` shared by the
        concurrent calls (devices times threads; never more than the seeds
        need), so finished agents cost nothing and no other size is
        compiled. Without: every seed in one call per concurrent call until
        at most :data:`COMPACT_FRACTION` still train, then the smallest power
        of two per concurrent call that holds them.
        """
        num_seeds, lanes = len(self.owned), self._lanes()
        if self.max_batch is not None:
            return max(MIN_BATCH, -(-min(num_seeds, self.max_batch) // lanes))
        full = self._full_size()
        if not self.compact or active > num_seeds * COMPACT_FRACTION:
            return full
        return min(full, max(MIN_BATCH, _next_power_of_two(-(-active // lanes))))

    def _batches(self) -> list[np.ndarray]:
        """The seeds of each call of the next chunk (a seed may appear more than once, as padding).

        This process's agents still training (all of them if ``compact`` is
        off) are packed into calls of :meth:`_call_size` agents; call ``k``
        runs on local device ``k % len(local_devices)`` (split: one call, on
        the mesh).
        """
        active = self.owned[self.running()[self.owned]]
        size = self._call_size(len(active))
        agents = active if (self.compact and len(active)) else self.owned
        if self.max_batch is None and size == self._full_size():
            agents = self.owned  # the uncompacted batch: every seed, as it began
        groups = [agents[i:i + size] for i in range(0, len(agents), size)]
        return [np.concatenate([g, np.full(size - len(g), g[0], dtype=g.dtype)]) for g in groups]

    def lower(self, batch_size: int | None = None) -> dict:
        """The chunk programs :meth:`compile` would compile, lowered (``{slot: jax.stages.Lowered}``), for
        the slots that have none compiled yet.

        Lowering runs Python (it holds the GIL) and compiling does not: a run lowers the chunk first, then
        compiles it in a thread while it lowers and compiles its other programs (:meth:`compile`'s ``lowered``).
        """
        import jax

        size = self._batch_size(batch_size)
        compiled = self._compiled.get(size, {})
        missing = [slot for slot in self._slots if slot not in compiled]
        if not missing:
            return {}
        state = self.state if self.state is not None else self.state_shapes()
        example = jax.tree.map(lambda x: jax.ShapeDtypeStruct((size, *x.shape[1:]), x.dtype), state)

        def run_chunk(state):
            return self._run_agents(state, self.chunk)

        if self.mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec

            by_seed = PartitionSpec(SEED_AXIS)
            # check_vma=False: JAX 0.10's replication checker fails an internal assertion on a collective
            # over a vmap-only axis name ("agent") inside shard_map; outputs are equal over an "envs" group
            # by construction (summed gradients).
            program = jax.jit(jax.shard_map(run_chunk, mesh=self.mesh, in_specs=(by_seed,),
                                            out_specs=(by_seed, by_seed), check_vma=False),
                              compiler_options=self._options)
            sharded = jax.tree.map(lambda x: x.update(sharding=NamedSharding(self.mesh, by_seed)), example)
            return {self.mesh: program.lower(sharded)}
        description = None if self._description is None else (self._description, self.chunk)
        return {slot: lower_program("train_chunk", description, run_chunk, (example,), slot, self._options)
                for slot in missing}

    def compile(self, batch_size: int | None = None, lowered: dict | None = None) -> dict:
        """The chunk program for ``batch_size`` agents on each device (or the mesh): ``{slot: compiled}``.

        One-device programs come from :mod:`jax_reinforce.harness.compilation`
        where it has them, compiled in parallel threads when several devices
        need them; the split program through JAX's persistent cache alone
        (JAX's persistent cache skips XLA's work on a warm run).

        Args:
          batch_size: agents per call (default: what the agents still running need).
          lowered: :meth:`lower`'s result, if the caller lowered the programs already (``None``: lowered
            here); their own batch size is used, whatever the agents have done meanwhile.
        """
        import jax

        if lowered:
            size = jax.tree.leaves(next(iter(lowered.values())).args_info)[0].shape[0]
        else:
            size = self._batch_size(batch_size)
        compiled = self._compiled.setdefault(size, {})
        lowered = self.lower(size) if lowered is None else {s: p for s, p in lowered.items() if s not in compiled}
        compiled.update(compile_for_devices(lambda slot: lowered[slot].compile(), list(lowered)))
        return compiled

    def _batch_size(self, batch_size: int | None) -> int:
        """Agents per call: ``batch_size``, or what the agents still running need."""
        # Before init (a fresh run's program, compiled while init is), every agent is running.
        running = len(self.owned) if self.state is None else int(self.running()[self.owned].sum())
        return batch_size or self._call_size(running)

    def _put(self, host_tree, slot):
        """A batch of host arrays on ``slot``: one device, or the mesh (sharded by seed; collective)."""
        import jax

        if slot is not self.mesh:
            return jax.device_put(host_tree, slot)
        from jax.sharding import NamedSharding, PartitionSpec

        sharding = NamedSharding(self.mesh, PartitionSpec(SEED_AXIS))
        return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]),
                            host_tree)

    def _fetch(self, tree):
        """A call's outputs as host arrays (from every process's devices when split)."""
        import jax

        if self.mesh is None:
            return jax.device_get(tree)
        return gather_to_host(tree)

    def run_chunk(self) -> dict:
        """Runs up to ``chunk_iterations`` iterations of every agent still training.

        Returns:
          ``{metric: (num_seeds, rows)}`` for the rows this chunk ran (NaN or 0
          for agents that did not train in them); also appended to
          :attr:`history`.
        """
        import time

        import jax

        start = time.perf_counter()
        running = self.running()
        before = int(np.max(np.asarray(self.state.iteration)[running])) if running.any() else 0
        batches = self._batches() if running[self.owned].any() else []
        results = self._run_calls(batches)
        fillers = {name: np.nan if np.issubdtype(dtype, np.floating) else 0 for name, dtype in self._metric_dtypes.items()}
        # This process's seeds: the new state, and metrics of a full chunk's width (fillers where not run).
        owned_metrics = {name: np.full((len(self.owned), self.chunk), fillers[name], self._metric_dtypes[name])
                         for name in self._metric_names}
        if results:
            index = np.concatenate(batches)
            new_batch, metrics = jax.tree.map(lambda *parts: np.concatenate(parts), *results)
            # Write each seed back once (padding copies are identical to their original).
            seeds, first = np.unique(index, return_index=True)
            self.state = jax.tree.map(lambda full, part: _scatter(full, seeds, part[first]), self.state, new_batch)
            where = np.searchsorted(self.owned, seeds)
            for name in self._metric_names:
                owned_metrics[name][where] = np.asarray(metrics[name])[first]
        metrics_all = self._share_with_processes(owned_metrics) if len(self._blocks) > 1 else owned_metrics
        rows = int(np.max(np.asarray(self.state.iteration))) - before
        chunk_metrics = {}
        for name in self._metric_names:
            full = np.asarray(metrics_all[name][:, :rows], self._metric_dtypes[name])
            chunk_metrics[name] = full
            self.history[name] = np.concatenate([self.history[name], full], axis=1)
        if rows > 0:
            elapsed = time.perf_counter() - start
            finite = self.seconds[np.isfinite(self.seconds)]
            previous = float(finite[-1]) if finite.size else 0.0
            ends = previous + elapsed * np.arange(1, rows + 1) / rows
            self.seconds = np.concatenate([self.seconds, ends.astype(np.float32)])
        return chunk_metrics

    def _run_calls(self, batches) -> list:
        """Each batch's ``(state, metrics)`` as host arrays: call ``k`` on slot ``k % len(slots)``.

        One call at a time per slot and :attr:`threads` 1: dispatched from
        this thread without waiting, so every device is busy at once, then
        fetched. Otherwise from a pool of ``len(slots) * threads`` threads,
        each putting its batch on the device, calling and fetching (JAX's
        CPU client runs calls of different threads at once).
        """
        import jax

        programs = {size: self.compile(size) for size in {len(part) for part in batches}}  # in this thread

        def call(k, part):
            slot = self._slots[k % len(self._slots)]
            return programs[len(part)][slot](self._put(jax.tree.map(lambda x: np.asarray(x)[part], self.state), slot))

        if self.threads == 1 or len(batches) <= 1:
            return [self._fetch(r) for r in [call(k, part) for k, part in enumerate(batches)]]
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(self._lanes())
        try:
            futures = [pool.submit(lambda k=k, part=part: self._fetch(call(k, part))) for k, part in enumerate(batches)]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _share_with_processes(self, owned_metrics):
        """Every process's seeds (state and chunk metrics) to every process (``process_allgather``).

        Updates :attr:`state` with every seed and returns every seed's chunk metrics.
        """
        import jax
        from jax.experimental import multihost_utils

        block = max(len(b) for b in self._blocks)

        def padded(x):
            x = np.asarray(x)
            return np.concatenate([x, np.repeat(x[-1:], block - len(x), axis=0)]) if len(x) < block else x

        mine = (jax.tree.map(lambda x: padded(np.asarray(x)[self.owned]), self.state),
                {name: padded(v) for name, v in owned_metrics.items()})
        gathered = multihost_utils.process_allgather(mine, tiled=False)  # leaves (P, block, ...)

        def assemble(leaf):
            return np.concatenate([np.asarray(leaf)[r, :len(b)] for r, b in enumerate(self._blocks)])

        self.state = jax.tree.map(assemble, gathered[0])
        return {name: assemble(v) for name, v in gathered[1].items()}


def _scatter(full, seeds, values):
    out = np.array(full, copy=True)
    out[seeds] = values
    return out
