"""Training over many devices and many processes: the seed axis sharded over a mesh.

One process, many devices. The agents (seeds) are laid out over a 2-D
:class:`jax.sharding.Mesh` with axes ``("seeds", "envs")``. Each device runs
the ordinary one-agent trainer, vmapped over *its own* agents
(``jax.vmap(run_iterations, axis_name="agent")`` inside ``jax.shard_map``),
so the loops' shared stop test (``lax.pmax`` over ``"agent"``) stays on the
device: with as many seeds as devices or more, the compiled chunk holds no
cross-device operation at all, and only the metrics (and, for checkpoints,
the state) are copied off the devices afterwards.

With fewer seeds than devices the environments of each agent are split as
well (``env_axis_name`` of :func:`jax_reinforce.training.make_run_iterations`):
every device of an ``"envs"`` group holds the agent's whole state and
``num_envs / env_shards`` of its environments, and the gradient, the
baseline's statistics, the metrics and the loops' stop tests are summed or
maxed over the group (all-reduces inside the loop, the price of the split).
:func:`mesh_shape` picks the layout.

The seed count is padded up to a multiple of the seed shards. Padding agents
are created finished (their iteration counter starts at
``config.iterations``), so they never update, never keep a loop running, and
are dropped by :meth:`ShardedTrainer.gather`. Agent ``i`` keeps its key
``fold_in(PRNGKey(seed), i)`` whatever the layout, so every layout trains the
same agents as the one-device run: on one device bitwise, on several to float
rounding (about 1e-6 after 5 iterations on the CPU: XLA compiles a program
partitioned over several devices with slightly different fusions, and a
split agent's sums are taken in another order).

:func:`make_sharded_trainer` gives the pure pieces (``init``, ``run_chunk``,
``gather``); :class:`ShardedRunner` drives them with the interface of
:class:`jax_reinforce.runner.SeedRunner`. :func:`jax_reinforce.train_run`
uses it only where ``SeedRunner`` cannot serve: fewer seeds than devices, so
that an agent's environments are split (not bitwise the one-device run). With
as many seeds as devices or more, ``SeedRunner`` deals them over the devices
of every process, bitwise the one-device run.

Many processes. :func:`initialize_distributed` joins ``num_processes``
processes (one per host, or several on one machine) through
``jax.distributed.initialize``; ``jax.devices()`` then lists every process's
devices and the mesh spans them all. Every process runs the same calls in the
same order (multi-controller JAX); each one holds the agents of its own
devices, built from host data it computes itself
(``jax.make_array_from_callback``), and :meth:`ShardedTrainer.gather`
collects every agent's arrays on every process (an all-gather, through gloo on
the CPU), after which process 0 writes the run directory.

Shapes: ``S`` = ``config.num_seeds``; ``S_pad`` = ``S`` rounded up to a
multiple of the seed shards; a sharded :class:`jax_reinforce.TrainState` has
a leading ``(S_pad,)`` axis on every leaf, a gathered one ``(S,)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax_reinforce.config import Config
from jax_reinforce.envs import EnvSpec, make_env
from jax_reinforce.runner import RunProgress
from jax_reinforce.training import TrainState, agent_keys, make_init_state, make_run_iterations

__all__ = [
    "SEED_AXIS",
    "ENV_AXIS",
    "AGENT_AXIS",
    "ShardedTrainer",
    "ShardedRunner",
    "select_devices",
    "initialize_distributed",
    "mesh_shape",
    "make_mesh",
    "make_sharded_trainer",
    "gather_to_host",
    "any_process",
    "join_job",
]

SEED_AXIS = "seeds"
ENV_AXIS = "envs"
# The vmapped axis of a device's own agents (not a mesh axis).
AGENT_AXIS = "agent"


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _devices_by_process() -> dict[int, list]:
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    return by_process


def select_devices(devices: int | str | None = None, num_seeds: int | None = None) -> list:
    """The devices to train on, from the ``--devices`` flag.

    Args:
      devices: ``"all"``; an integer (or its text) ``N``; or ``None``.
        In one process, ``N`` in ``[1, len(jax.devices())]`` picks the first
        ``N`` devices and ``None`` picks as many as ``num_seeds`` fills with
        at least two agents each (``SeedRunner``'s smallest batch), at least
        one: ``min(len(jax.devices()), max(1, num_seeds // 2))``, or one
        device when ``num_seeds`` is ``None``. With ``P`` processes every
        process must take part, so ``N`` must be a multiple of ``P``
        (``N / P`` devices of each process) and ``None`` means the first
        device of each process.
      num_seeds: the run's number of agents, for the default.

    Returns:
      A list of ``jax.Device``, ordered by process, then device id.

    Raises:
      ValueError: naming ``--devices``, the value and what is allowed.
    """
    by_process = _devices_by_process()
    processes = len(by_process)
    per_process = min(len(ds) for ds in by_process.values())
    total = sum(len(ds) for ds in by_process.values())
    if processes == 1:
        allowed = f"'all' or an integer in [1, {total}]"
    else:
        allowed = (f"'all' or a multiple of the {processes} processes in "
                   f"[{processes}, {processes * per_process}]")
    if devices is None and processes == 1 and num_seeds is not None:
        from jax_reinforce.runner import MIN_BATCH

        count = min(total, max(1, int(num_seeds) // MIN_BATCH))
    elif devices is None:
        count = processes
    elif isinstance(devices, str) and devices.strip().lower() == "all":
        return [d for ds in by_process.values() for d in ds]
    elif isinstance(devices, str) and devices.strip().isdigit():
        count = int(devices.strip())
    elif _is_int(devices):
        count = int(devices)
    else:
        raise ValueError(f"devices (--devices) must be {allowed}; got {str(devices)!r}")
    if count < processes or count % processes or count // processes > per_process:
        raise ValueError(f"devices (--devices) must be {allowed}; got {str(devices)!r}")
    return [d for ds in by_process.values() for d in ds[: count // processes]]


def _parse_coordinator(coordinator) -> tuple[str, int]:
    allowed = "HOST:PORT with PORT an integer in [1, 65535] (e.g. 127.0.0.1:12355)"
    host, sep, port = str(coordinator).rpartition(":") if isinstance(coordinator, str) else ("", "", "")
    if not sep or not host.strip("[]").strip() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"coordinator (--coordinator) must be {allowed}; got {coordinator!r}")
    return host, int(port)


def initialize_distributed(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    timeout_s: int = 300,
) -> bool:
    """Joins this process to a multi-process job (``jax.distributed.initialize``).

    Call it first, before any other JAX call (it must run before JAX's
    backends start). Every process gets the same ``coordinator`` (process
    0's ``HOST:PORT``, where process 0 listens) and ``num_processes``, and
    its own ``process_id``. On the CPU the processes exchange arrays through
    JAX's gloo collectives (``jax_cpu_collectives_implementation``), which
    this turns on if they are off.

    Args:
      coordinator: ``"HOST:PORT"`` of process 0, or ``None``.
      num_processes: ``P >= 1``, or ``None``.
      process_id: this process, in ``[0, P)``, or ``None``.
      timeout_s: seconds to wait for every process to join.

    Returns:
      ``True`` when a job was joined; ``False`` when all three arguments are
      ``None`` (a single-process run: nothing to do).

    Raises:
      ValueError: one line naming the flag (``--coordinator``,
        ``--num-processes``, ``--process-id``), the value and what is allowed.
    """
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if all(value is None for value in given.values()):
        return False
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ValueError(
            "--coordinator, --num-processes and --process-id go together; missing " + ", ".join(missing)
        )
    _parse_coordinator(coordinator)
    if not _is_int(num_processes) or num_processes < 1:
        raise ValueError(f"num_processes (--num-processes) must be an integer >= 1; got {num_processes!r}")
    if not _is_int(process_id) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id (--process-id) must be an integer in [0, {num_processes - 1}]; got {process_id!r}"
        )
    if jax.config.values.get("jax_cpu_collectives_implementation") in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(num_processes),
        process_id=int(process_id),
        initialization_timeout=int(timeout_s),
    )
    return True


def join_job(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """:func:`initialize_distributed` for the command line: whether a job was joined.

    Raises:
      ValueError: one line, for bad values and for a job that could not be
        joined (coordinator unreachable, timeout).
    """
    if coordinator is None and num_processes is None and process_id is None:
        return False  # one process: JAX's backends are not even started
    try:
        return initialize_distributed(coordinator, num_processes, process_id)
    except RuntimeError as error:
        raise ValueError(f"--coordinator {coordinator!r}: could not join the job of {num_processes} "
                         f"processes: {str(error).splitlines()[0][:200]}") from None


def any_process(flag: bool) -> bool:
    """``True`` on every process when ``flag`` is true on any (e.g. a Ctrl-C).

    Multi-process runs must take the same branches in the same order; a
    decision made from one process's local state (a signal) is shared first.
    Every process must call this at the same point. One process: ``flag``.
    """
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
    return bool(np.max(flags))


def mesh_shape(num_seeds: int, num_envs: int, num_devices: int) -> tuple[int, int]:
    """``(seed_shards, env_shards)`` with ``seed_shards * env_shards = num_devices``.

    - ``num_seeds >= num_devices``: ``(num_devices, 1)``: the seeds alone are
      sharded (padded to a multiple of ``num_devices``); nothing crosses
      devices inside the training loop.
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
        env_shards = max(usable)
        warnings.warn(
            f"{num_seeds} seeds of {num_envs} environments cannot fill {num_devices} devices "
            f"(num_envs has no suitable divisor): {num_devices // env_shards - num_seeds} device groups "
            "hold only padding agents; use fewer devices or a num_envs divisible by the device count",
            stacklevel=2,
        )
    return num_devices // env_shards, env_shards


def make_mesh(devices, num_seeds: int, num_envs: int) -> Mesh:
    """The ``("seeds", "envs")`` mesh of ``devices`` for this many seeds and environments.

    The devices of one ``"envs"`` group are consecutive in ``devices``
    (ordered by process), so a split agent stays within one process where
    it can.
    """
    seed_shards, env_shards = mesh_shape(num_seeds, num_envs, len(devices))
    return Mesh(np.asarray(devices, dtype=object).reshape(seed_shards, env_shards), (SEED_AXIS, ENV_AXIS))


def gather_to_host(tree, num_seeds: int | None = None):
    """Every leaf of ``tree`` as a NumPy array on this process, first ``num_seeds`` rows.

    Leaves held by devices of other processes are all-gathered
    (``multihost_utils.process_allgather``): in a multi-process run every
    process must call this, with the same tree, at the same point.

    Args:
      tree: a pytree of ``(S_pad, ...)`` arrays (sharded or not).
      num_seeds: keep rows ``[:num_seeds]`` (drop padding); ``None`` keeps all.

    Returns:
      The same pytree of ``(num_seeds, ...)`` NumPy arrays.
    """
    leaves, treedef = jax.tree.flatten(tree)
    local = [not isinstance(x, jax.Array) or x.is_fully_addressable for x in leaves]
    remote = [x for x, is_local in zip(leaves, local) if not is_local]
    if remote:
        from jax.experimental import multihost_utils

        gathered = iter(multihost_utils.process_allgather(remote, tiled=True))
    else:
        gathered = iter(())
    host = [np.asarray(jax.device_get(x) if is_local else next(gathered)) for x, is_local in zip(leaves, local)]
    if num_seeds is not None:
        host = [x[:num_seeds] for x in host]
    return jax.tree.unflatten(treedef, host)


class ShardedTrainer(NamedTuple):
    """The trainer of :func:`make_sharded_trainer`: pure functions and the layout.

    Attributes:
      config: the run's :class:`jax_reinforce.Config`.
      mesh: the ``("seeds", "envs")`` mesh.
      num_seeds: ``S``, the real agents.
      padded_seeds: ``S_pad``, a multiple of ``mesh.shape["seeds"]``.
      chunk_iterations: iterations per :attr:`run_chunk` call (at most).
      init: ``init(keys=None) -> TrainState``: fresh sharded ``(S_pad, ...)``
        state; ``keys``: ``(S, 2)`` agent keys, default
        ``agent_keys(config.seed, S)``.
      run_chunk: ``run_chunk(state) -> (state, metrics)``: up to
        ``chunk_iterations`` more iterations of every agent (jitted; the input
        state's buffers are donated). ``metrics``: ``{name: (S_pad, chunk)}``,
        sharded like the state; rows not run hold NaN or 0.
      put_state: ``put_state(host_state) -> TrainState``: a ``(S, ...)``
        NumPy state (e.g. from a checkpoint), the same on every process,
        padded and sharded.
      gather: ``gather(tree) -> tree``: :func:`gather_to_host` of a sharded
        state or metrics, the real ``S`` agents only (a collective: every
        process calls it).
      state_shapes: ``jax.ShapeDtypeStruct`` tree of a gathered ``(S, ...)``
        state (the template for :func:`jax_reinforce.checkpoint.load_train_state`).
    """

    config: Config
    mesh: Mesh
    num_seeds: int
    padded_seeds: int
    chunk_iterations: int
    init: Callable[..., TrainState]
    run_chunk: Callable[[TrainState], tuple[TrainState, dict]]
    put_state: Callable[[TrainState], TrainState]
    gather: Callable[[Any], Any]
    state_shapes: Any

    def describe(self) -> str:
        """One line for the log: devices, processes, the layout and the padding."""
        devices = list(self.mesh.devices.flat)
        platforms = sorted({d.platform for d in devices})
        processes = len({d.process_index for d in devices})
        seed_shards, env_shards = self.mesh.shape[SEED_AXIS], self.mesh.shape[ENV_AXIS]
        padding = self.padded_seeds - self.num_seeds
        return (
            f"{len(devices)} {'/'.join(platforms)} device{'s' * (len(devices) != 1)} in {processes} "
            f"process{'es' * (processes != 1)}: {seed_shards} seed shard{'s' * (seed_shards != 1)} x "
            f"{env_shards} environment shard{'s' * (env_shards != 1)}, "
            f"{self.padded_seeds // seed_shards} agent(s) per device"
            + (f" ({padding} of {self.padded_seeds} are padding)" if padding else "")
        )


def make_sharded_trainer(
    config: Config,
    env_spec: EnvSpec | None = None,
    devices=None,
    chunk_iterations: int = 8,
    compiler_options: dict | None = None,
    donate: bool = True,
) -> ShardedTrainer:
    """The chunked trainer of ``config`` with its agents sharded over ``devices``.

    Each device runs, on its ``S_pad / seed_shards`` agents (and its share of
    their environments)::

        jax.vmap(make_run_iterations(config, env_spec, "agent", env_axis), axis_name="agent")

    inside ``jax.shard_map`` over :func:`make_mesh`; ``env_axis`` is
    ``"envs"`` when environments are split, else ``None`` (and then the
    compiled chunk holds no collective). ``shard_map`` runs with
    ``check_vma=False``: JAX 0.10's replication checker fails an internal
    assertion on a collective over a vmap-only axis name (``"agent"``)
    inside ``shard_map``; the outputs are sharded over ``"seeds"`` and equal
    on every device of an ``"envs"`` group by construction (summed gradients).

    Args:
      config: the run's :class:`jax_reinforce.Config`.
      env_spec: its environment (default ``make_env(config.env)``).
      devices: a list of devices (:func:`select_devices`); ``None``: one device
        per process.
      chunk_iterations: iterations per :attr:`ShardedTrainer.run_chunk` call
        (results do not depend on it).
      compiler_options: for ``jax.jit``; ``None``:
        :func:`jax_reinforce.compilation.compiler_options` of the devices'
        platform (the trainer's own, as :class:`jax_reinforce.runner.SeedRunner`
        uses); ``{}``: XLA's defaults.
      donate: donate the state's buffers to ``run_chunk``.

    Returns:
      A :class:`ShardedTrainer`.
    """
    from jax_reinforce.compilation import compiler_options as default_options

    if not isinstance(config, Config):
        raise TypeError(f"config must be a jax_reinforce.Config; got {type(config).__name__}")
    if not _is_int(chunk_iterations) or chunk_iterations < 1:
        raise ValueError(f"chunk_iterations (--chunk-iterations) must be an integer >= 1; got {chunk_iterations!r}")
    env_spec = env_spec if env_spec is not None else make_env(config.env)
    devices = select_devices(None) if devices is None else list(devices)
    if not devices or len(set(devices)) != len(devices):
        raise ValueError(f"devices must be a non-empty list of distinct devices; got {devices!r}")
    if compiler_options is None:
        compiler_options = default_options(devices[0].platform)

    mesh = make_mesh(devices, config.num_seeds, config.num_envs)
    seed_shards, env_shards = mesh.shape[SEED_AXIS], mesh.shape[ENV_AXIS]
    num_seeds = config.num_seeds
    padded_seeds = math.ceil(num_seeds / seed_shards) * seed_shards
    by_seed = PartitionSpec(SEED_AXIS)
    sharding = NamedSharding(mesh, by_seed)

    init_state = make_init_state(config, env_spec)
    run_iterations = make_run_iterations(
        config, env_spec, axis_name=AGENT_AXIS, env_axis_name=ENV_AXIS if env_shards > 1 else None
    )

    def local_init(keys, start_iteration):
        """A device's agents: ``keys (s, 2)``, ``start_iteration (s,)`` -> state ``(s, ...)``."""
        state = jax.vmap(init_state)(keys)
        return state._replace(iteration=start_iteration)

    def local_chunk(state):
        """A device's agents (and environment share) for one chunk: ``(s, ...)`` -> ``(s, ...)``."""
        return jax.vmap(lambda s: run_iterations(s, chunk_iterations), axis_name=AGENT_AXIS)(state)

    shard = dict(mesh=mesh, check_vma=False)
    init_program = jax.jit(
        jax.shard_map(local_init, in_specs=(by_seed, by_seed), out_specs=by_seed, **shard),
        compiler_options=compiler_options,
    )
    run_chunk = jax.jit(
        jax.shard_map(local_chunk, in_specs=(by_seed,), out_specs=(by_seed, by_seed), **shard),
        donate_argnums=(0,) if donate else (),
        compiler_options=compiler_options,
    )

    def pad(rows: np.ndarray) -> np.ndarray:
        """``(S, ...)`` -> ``(S_pad, ...)``, the last row repeated."""
        extra = np.repeat(rows[-1:], padded_seeds - num_seeds, axis=0)
        return np.concatenate([rows, extra], axis=0)

    def to_global(rows: np.ndarray) -> jax.Array:
        """A ``(S_pad, ...)`` host array, every process's copy alike, as a sharded array."""
        return jax.make_array_from_callback(rows.shape, sharding, lambda index: rows[index])

    def start_iterations(host_iterations) -> np.ndarray:
        """Iteration counters ``(S_pad,)``: the agents' own, then finished padding."""
        counters = np.full((padded_seeds,), config.iterations, np.int32)
        counters[:num_seeds] = host_iterations
        return counters

    def init(keys=None) -> TrainState:
        keys = np.asarray(agent_keys(config.seed, num_seeds) if keys is None else keys)
        if keys.shape[:1] != (num_seeds,):
            raise ValueError(f"keys must hold one key per seed, shape ({num_seeds}, ...); got {keys.shape}")
        return init_program(to_global(pad(keys)), to_global(start_iterations(0)))

    def put_state(host_state: TrainState) -> TrainState:
        rows = jax.tree.map(lambda x: pad(np.asarray(x)), host_state)
        rows = rows._replace(iteration=start_iterations(np.asarray(host_state.iteration)))
        return jax.tree.map(to_global, rows)

    def gather(tree):
        return gather_to_host(tree, num_seeds)

    state_shapes = jax.eval_shape(lambda: jax.vmap(init_state)(agent_keys(config.seed, num_seeds)))
    return ShardedTrainer(
        config=config,
        mesh=mesh,
        num_seeds=num_seeds,
        padded_seeds=padded_seeds,
        chunk_iterations=chunk_iterations,
        init=init,
        run_chunk=run_chunk,
        put_state=put_state,
        gather=gather,
        state_shapes=state_shapes,
    )


class ShardedRunner(RunProgress):
    """:class:`jax_reinforce.runner.SeedRunner`'s interface over a :class:`ShardedTrainer`.

    A drop-in for the chunked driving loop of ``scripts/train.py``: the agents
    live sharded on the devices, and after every chunk their state is
    gathered to the host (:attr:`state`, NumPy, ``(S, ...)``) with the
    chunk's metrics appended to :attr:`history`, on every process alike, so
    every process takes the same decisions. Every method is collective: all
    processes call them in the same order. Finished agents are not moved out
    of the batch (as ``SeedRunner`` does): they stay frozen in their lanes.

    Attributes:
      trainer: the :class:`ShardedTrainer`.
      state: the gathered :class:`jax_reinforce.TrainState`, NumPy ``(S, ...)``.
      history: ``{metric: (S, iterations_run)}`` per-seed metrics.
    """

    def __init__(self, config: Config, env_spec: EnvSpec | None, chunk_iterations: int,
                 compiler_options: dict | None = None, devices=None):
        from jax_reinforce.training import METRIC_DTYPES

        self.config = config
        self.trainer = make_sharded_trainer(config, env_spec, devices, chunk_iterations, compiler_options)
        self._metric_dtypes = {name: np.dtype(dtype) for name, dtype in METRIC_DTYPES.items()}
        self.history = {name: np.zeros((config.num_seeds, 0), dtype) for name, dtype in self._metric_dtypes.items()}
        self.state = None
        self._device_state = None
        self._compiled = None

    def describe(self) -> str:
        """:meth:`ShardedTrainer.describe`."""
        return self.trainer.describe()

    def init(self, keys=None):
        """Fresh agents from ``(S,)`` keys (default ``agent_keys(config.seed, S)``)."""
        self._device_state = self.trainer.init(keys)
        self.state = self.trainer.gather(self._device_state)
        return self.state

    def restore(self, state, history):
        """Continues from a saved ``(S, ...)`` state and metric history (the same on every process)."""
        self._device_state = self.trainer.put_state(state)
        self.state = self.trainer.gather(self._device_state)
        self.history = {name: np.asarray(history[name]) for name in self._metric_dtypes}

    def compile(self, batch_size: int | None = None):
        """Compiles the chunk (``batch_size`` is ignored: the layout is fixed)."""
        del batch_size
        if self._compiled is None:
            self._compiled = self.trainer.run_chunk.lower(self._device_state).compile()
        return self._compiled

    def run_chunk(self) -> dict:
        """Runs up to ``chunk_iterations`` iterations of every agent still training.

        Returns:
          ``{metric: (S, rows)}`` for the rows this chunk ran (NaN or 0 for
          agents that did not train in them); also appended to :attr:`history`.
        """
        before = int(np.max(np.asarray(self.state.iteration)))
        self._device_state, metrics = self.compile()(self._device_state)
        self.state, metrics = self.trainer.gather((self._device_state, metrics))
        rows = int(np.max(np.asarray(self.state.iteration))) - before
        chunk_metrics = {
            name: np.asarray(metrics[name][:, :rows], dtype) for name, dtype in self._metric_dtypes.items()
        }
        for name, values in chunk_metrics.items():
            self.history[name] = np.concatenate([self.history[name], values], axis=1)
        return chunk_metrics
