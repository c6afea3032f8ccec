"""Worker of tests/harness/test_distributed.py, run in a fresh process (not a test module).

    python tests/_distributed_worker.py devices OUT_DIR
        (under XLA_FLAGS=--xla_force_host_platform_device_count=4) trains each
        case of DEVICE_CASES on the 4 devices; writes OUT_DIR/<case>.npz and
        prints one JSON line per case (layout and collective counts of the
        compiled chunk). The reference, the seeds vmapped on one device
        (:func:`reference`), is trained by the test, once for all its tests.

    python tests/_distributed_worker.py process OUT_DIR PROCESS_ID NUM_PROCESSES PORT
        joins a job of NUM_PROCESSES processes (2 CPU devices each) at
        127.0.0.1:PORT, trains each case of PROCESS_CASES on all devices,
        gathers every seed; process 0 alone writes OUT_DIR/<case>.npz. Every
        process prints one JSON line per case with the seeds its devices held.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BASE = dict(env="CartPole-v1", hidden=(8,), num_envs=8, iterations=5)
# name: (num_seeds, stop_when_solved, chunk_iterations)
DEVICE_CASES = {
    "seeds8": (8, False, 3),  # seeds dealt over 4 devices, 2 agents per call
    "seeds5_stop": (5, True, 3),  # seeds dealt over 4 devices, calls of 2 (padding copies)
    "seeds3": (3, False, 2),  # 2 seed shards x 2 environment shards, padded to 4
}
PROCESS_CASES = {
    "seeds4_stop": (4, True, 3),  # 2 seeds per process, nothing crosses processes in the loop
    "seeds1_stop": (1, True, 5),  # environments split across both processes (gloo in the loop)
}
COLLECTIVES = ("all-reduce", "all-gather", "collective-permute", "all-to-all", "reduce-scatter")


def config_of(num_seeds, stop):
    from jax_reinforce import Config

    return Config(num_seeds=num_seeds, stop_when_solved=stop, **BASE)


def train_chunked(config, chunk, devices):
    """Trains ``config`` to the end with a Runner, as scripts/train.py drives one.

    Returns the runner: its ``(S, ...)`` state and ``{name: (S, iterations_run)}`` history.
    """
    from jax_reinforce.harness.runner import Runner

    runner = Runner(config, None, chunk, devices=devices)
    runner.init()
    runner.compile()
    while runner.running().any():
        runner.run_chunk()
    return runner


def save_case(path, state, history):
    import numpy as np

    from jax_reinforce.harness.checkpoint import flatten_tree

    arrays = flatten_tree(state, "state")
    arrays.update({f"metrics/{name}": value for name, value in history.items()})
    np.savez(path, **arrays)


def collective_counts(runner):
    """How many of each cross-device operation the compiled chunk programs hold (all sizes, all devices)."""
    texts = [program.as_text() for programs in runner._compiled.values() for program in programs.values()]
    return {op: sum(t.count(f" {op}(") + t.count(f" {op}-start(") for t in texts) for op in COLLECTIVES}


def layout(runner):
    """The runner's layout, for the JSON lines: environment shards and the mesh (when split)."""
    return {"env_shards": runner.env_shards, "mesh": None if runner.mesh is None else dict(runner.mesh.shape),
            "describe": runner.describe()}


def reference(num_seeds, stop):
    """One device, ``jax.jit(jax.vmap(run_iterations))``: the run every layout must equal."""
    import jax

    from jax_reinforce.harness.compilation import compiler_options
    from jax_reinforce.core.training import agent_keys, make_init_state, make_run_iterations

    config = config_of(num_seeds, stop)
    options = compiler_options()
    init = jax.jit(jax.vmap(make_init_state(config)), compiler_options=options)
    run = jax.jit(
        jax.vmap(make_run_iterations(config, axis_name="agent"), in_axes=(0, None), axis_name="agent"),
        static_argnums=1,
        compiler_options=options,
    )
    state, metrics = run(init(agent_keys(config.seed, num_seeds)), config.iterations)
    return jax.device_get(state), jax.device_get(metrics)


def run_devices(out_dir: Path):
    import jax

    from jax_reinforce.harness.devices import select_devices

    assert len(jax.devices()) == 4, jax.devices()
    for name, (num_seeds, stop, chunk) in DEVICE_CASES.items():
        runner = train_chunked(config_of(num_seeds, stop), chunk, select_devices("all"))
        counts = collective_counts(runner)
        save_case(out_dir / f"{name}.npz", runner.state, runner.history)
        print(json.dumps({"case": name, "collectives": counts, **layout(runner)}), flush=True)


def run_process(out_dir: Path, process_id: int, num_processes: int, port: int):
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    from jax_reinforce.harness.devices import initialize_distributed, select_devices

    initialize_distributed(f"127.0.0.1:{port}", num_processes, process_id, timeout_s=60)
    assert jax.process_count() == num_processes and len(jax.devices()) == 2 * num_processes
    try:
        select_devices(3)
        refused = None
    except ValueError as error:
        refused = str(error)
    print(json.dumps({
        "case": "select_devices",
        "default": [d.process_index for d in select_devices(None)],  # one device per process
        "two": [d.process_index for d in select_devices(2)],
        "all": [d.process_index for d in select_devices("all")],
        "three": refused,
    }), flush=True)
    for name, (num_seeds, stop, chunk) in PROCESS_CASES.items():
        runner = train_chunked(config_of(num_seeds, stop), chunk, select_devices("all"))
        if jax.process_index() == 0:
            save_case(out_dir / f"{name}.npz", runner.state, runner.history)
        print(json.dumps({
            "case": name,
            "process": jax.process_index(),
            "owned_seeds": runner.owned.tolist(),  # the seeds this process trains
            "local_devices": len(jax.local_devices()),
            **layout(runner),
        }), flush=True)


def main(argv):
    mode, out_dir = argv[0], Path(argv[1])
    if mode == "devices":
        run_devices(out_dir)
    elif mode == "process":
        run_process(out_dir, int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
