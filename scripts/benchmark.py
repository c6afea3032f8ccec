#!/usr/bin/env python
"""Benchmarks: training throughput, time to solve, and the peers, side by side.

    python scripts/benchmark.py                 # the full table (several minutes on 2 cores)
    python scripts/benchmark.py --quick         # tiny sizes, few processes: a smoke test for CI, not a measurement

Measured in one run, so that the ratios compare like with like on a noisy
machine:

1. Training throughput of ``make_train`` as research code calls it: for
   16x256, 64x64, 1x1024 and 256x16 seeds x environments, 60 iterations of
   CartPole-v1 from fresh agents with ``stop_when_solved=False``, on one
   device, timed after compiling (compile time apart): the plain idiom
   ``jax.jit(jax.vmap(make_train(config)))(keys)`` under XLA's default
   options; the same with the trainer's compiler options (the library's best
   on one device); and the command line's runner with the seeds dealt over
   every core: its default (one device, calls from one thread per core),
   and one device per core. Then one agent unbatched (``jax.jit(make_train(config))``) and
   a nested vmap over learning rates and seeds. Real environment steps only;
   every timing waits for the results; the figure is the median of
   ``--repeats`` runs.
2. Time to solve CartPole-v1, the whole process of ``scripts/train.py`` for
   1, 4 (the defaults) and 256 seeds, with a cold and with a warm persistent
   compilation cache, split into import / compile / train / eval from its
   ``summary.json``.
3. The peers: gymnasium's NumPy ``CartPoleVectorEnv`` (256 environments, a
   NumPy policy forward, rollout only, no learning), one gymnasium
   environment stepped from Python, and the corrected NumPy seed program
   (``jax_reinforce.numpy_reference``) solving CartPole-v0 against
   ``scripts/train.py --env CartPole-v0 --hidden 8``: one agent, and 256
   agents at once compared per agent.
4. A sweep (issue 13): ``--lr 0.03,0.1,0.3 --entropy-coef 0,0.01 --num-seeds
   16`` (96 agents in one program) against the 6 runs of 16 seeds one per
   setting, whole process, each from an empty cache.

Prints a table and writes everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_and_spread(values):
    """``{"median", "min", "max", "runs"}`` of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": list(values)}


# --------------------------------------------------------------------------- throughput


def _timed_runs(call, repeats):
    """``call() -> env_steps`` (blocking) timed ``repeats`` times: env-steps/s and seconds, median and range."""
    rates, seconds, steps = [], [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        steps = call()
        dt = time.perf_counter() - t
        rates.append(steps / dt)
        seconds.append(dt)
    return {"env_steps": steps, "seconds": median_and_spread(seconds), "env_steps_per_s": median_and_spread(rates)}


def make_train_throughput(num_seeds: int, num_envs: int, iterations: int, repeats: int, variant: str = "plain",
                          num_rates: int = 0):
    """Env-steps/s of ``make_train`` called as research code calls it (the issue's protocol).

    ``iterations`` REINFORCE iterations of CartPole-v1 (4-8-2 net,
    ``stop_when_solved=False``) from fresh agents, on one device, timed after
    compiling (compile time apart), ``jax.block_until_ready`` around each call.

    Variants:
      ``plain``: ``jax.jit(jax.vmap(make_train(config)))(keys)``, XLA's default options;
      ``options``: the same with the trainer's CPU compiler options (the library's best on one device);
      ``single``: ``jax.jit(make_train(config))(key)``, one agent, no vmap (``num_seeds`` must be 1);
      ``rates``: ``num_rates`` learning rates x seeds, ``jax.vmap`` nested over both, default options;
      ``physics``: ``plain`` with the physics traced, each agent its own ``EnvParams`` (CartPole's defaults)
      through ``train(key, None, None, env_params)``: the cost of a traced ``env_params``.
    """
    import jax
    import jax.numpy as jnp

    from jax_reinforce import Config, agent_keys, compiler_options, make_env, make_train

    config = Config(env="CartPole-v1", hidden=(8,), num_envs=num_envs, num_seeds=num_seeds, iterations=iterations,
                    stop_when_solved=False)
    keys = jnp.asarray(agent_keys(config.seed, num_seeds))
    train = make_train(config)
    if variant == "single":
        program, args = jax.jit(train), (keys[0],)
    elif variant == "physics":
        spec = make_env(config.env)
        physics = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_seeds,)), spec.params)
        program, args = jax.jit(jax.vmap(train, in_axes=(0, None, None, 0))), (keys, None, None, physics)
    elif variant == "rates":
        rates = jnp.geomspace(0.01, 0.1, num_rates)
        program, args = jax.jit(jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0))), (keys, rates)
    else:
        options = compiler_options() if variant == "options" else None
        program, args = jax.jit(jax.vmap(train), compiler_options=options), (keys,)
    t = time.perf_counter()
    compiled = program.lower(*args).compile()
    compile_s = time.perf_counter() - t

    def call():
        _, metrics = compiled(*args)
        return int(jax.block_until_ready(metrics)["env_steps"].sum())

    return {"variant": variant, "num_seeds": num_seeds, "num_envs": num_envs, "num_rates": num_rates,
            "iterations": iterations, "compile_s": compile_s, **_timed_runs(call, repeats)}


def runner_throughput(num_seeds: int, num_envs: int, iterations: int, repeats: int, num_devices: int,
                      threads: int | None = None):
    """Env-steps/s of the command line's runner (:class:`Runner`) under the same protocol.

    The seeds dealt over ``num_devices`` devices, ``threads`` calls at once on
    each (``None``: ``default_threads``, one per core shared by the devices),
    in calls of ``default_max_batch`` agents, ``iterations`` in one chunk;
    compiling apart.
    """
    import jax

    from jax_reinforce import Config, agent_keys, compiler_options, make_env
    from jax_reinforce.harness.runner import Runner, default_max_batch, default_threads

    config = Config(env="CartPole-v1", hidden=(8,), num_envs=num_envs, num_seeds=num_seeds, iterations=iterations,
                    stop_when_solved=False)
    devices = jax.devices()[:num_devices]
    threads = default_threads(devices) if threads is None else threads
    runner = Runner(config, make_env(config.env), iterations, compiler_options(), devices=devices,
                    max_batch=default_max_batch(num_envs, devices, threads), threads=threads)
    fresh = runner.init(agent_keys(config.seed, num_seeds))
    t = time.perf_counter()
    runner.compile()
    compile_s = time.perf_counter() - t

    def call():
        runner.restore(fresh, {name: values[:, :0] for name, values in runner.history.items()})
        return int(runner.run_chunk()["env_steps"].sum())  # run_chunk returns host arrays: it has waited

    return {"variant": "runner", "num_seeds": num_seeds, "num_envs": num_envs, "num_devices": num_devices,
            "threads": threads, "iterations": iterations, "compile_s": compile_s, **_timed_runs(call, repeats)}


# --------------------------------------------------------------------------- peers


def gymnasium_vector_rollout(num_envs: int, steps: int, repeats: int, hidden=(8,)):
    """Env-steps/s of gymnasium's NumPy CartPoleVectorEnv with a NumPy MLP policy (no learning)."""
    import warnings

    import gymnasium as gym
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = (4, *hidden, 2)
    layers = [(rng.normal(size=(a, b)).astype(np.float32) * 0.5, np.zeros(b, np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    rates = []
    for r in range(repeats):
        obs, _ = env.reset(seed=r)
        t = time.perf_counter()
        for _ in range(steps):
            h = obs
            for i, (w, b) in enumerate(layers):
                h = h @ w + b
                if i < len(layers) - 1:
                    h = np.maximum(h, 0)
            p1 = 1.0 / (1.0 + np.exp(h[:, 0] - h[:, 1]))
            actions = (rng.random(num_envs) < p1).astype(np.int64)
            obs, _, _, _, _ = env.step(actions)
        rates.append(num_envs * steps / (time.perf_counter() - t))
    env.close()
    return {"num_envs": num_envs, "steps": steps, "env_steps_per_s": median_and_spread(rates)}


def gymnasium_single_env(steps: int, repeats: int):
    """Env-steps/s of one gymnasium CartPole stepped from Python with random actions."""
    import gymnasium as gym
    import numpy as np

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    rates = []
    for r in range(repeats):
        env.reset(seed=r)
        t = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
            if terminated or truncated:
                env.reset()
        rates.append(steps / (time.perf_counter() - t))
    env.close()
    return {"steps": steps, "env_steps_per_s": median_and_spread(rates)}


def numpy_reference_solve(seeds, max_episodes: int):
    """The corrected NumPy seed program solving CartPole-v0, per seed."""
    from jax_reinforce.numpy_reference import train

    runs = []
    for seed in seeds:
        t = time.perf_counter()
        result = train(seed=seed, max_episodes=max_episodes, quiet=True)
        runs.append({"seed": seed, "solved": result.solved, "episodes_to_solve": result.episodes_to_solve,
                     "env_steps": result.env_steps, "train_s": result.seconds, "wall_s": time.perf_counter() - t})
    walls = [r["wall_s"] for r in runs if r["solved"]]
    return {"runs": runs, "solved": sum(r["solved"] for r in runs),
            "wall_s": median_and_spread(walls) if walls else None}


# --------------------------------------------------------------------------- whole process


def train_process(args_list, cache_dir: str, repeats: int):
    """Runs ``scripts/train.py`` ``repeats`` times; whole-process wall time and its summary."""
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, XDG_CACHE_HOME=cache_dir)
            cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--out", f"{out}/run", "--quiet", *args_list]
            t = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            summary = json.loads(Path(out, "run", "summary.json").read_text())
        runs.append({"wall_s": wall, "seeds_solved": summary["seeds_solved"], "num_seeds": summary["num_seeds"],
                     "seconds": summary["seconds"], "env_steps": summary["env_steps"]})
    return {"args": args_list, "runs": runs, "wall_s": median_and_spread([r["wall_s"] for r in runs]),
            "all_solved": all(r["seeds_solved"] == r["num_seeds"] for r in runs)}


def time_to_solve(args_list, repeats: int, fill_by_last_cold: bool = False):
    """Cold (an empty compilation cache each run) and warm (a filled one) whole-process times.

    ``fill_by_last_cold`` (``--quick``): the warm runs use the cache the last
    cold run filled, instead of a further run filling a fresh one (the same
    cache, one process fewer).
    """
    cold = []
    if fill_by_last_cold:
        with tempfile.TemporaryDirectory() as cache:
            for i in range(repeats):
                with tempfile.TemporaryDirectory() as fresh:
                    cold.append(train_process(args_list, cache if i == repeats - 1 else fresh, 1)["runs"][0])
            warm = train_process(args_list, cache, repeats)["runs"]
    else:
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(train_process(args_list, cache, 1)["runs"][0])
        with tempfile.TemporaryDirectory() as cache:
            train_process(args_list, cache, 1)  # fills the cache
            warm = train_process(args_list, cache, repeats)["runs"]
    summarise = lambda runs: {  # noqa: E731
        "wall_s": median_and_spread([r["wall_s"] for r in runs]),
        "split_median_s": {k: statistics.median(r["seconds"][k] for r in runs) for k in runs[0]["seconds"]},
        "all_solved": all(r["seeds_solved"] == r["num_seeds"] for r in runs),
        "runs": runs,
    }
    return {"args": args_list, "cold": summarise(cold), "warm": summarise(warm)}


def speedups(numpy_s: float, solve: dict, agents: int = 1) -> dict:
    """How many times faster than the NumPy program's ``numpy_s`` a :func:`time_to_solve` result is, per agent.

    Whole process cold and warm, and the warm runs' training phase alone;
    ``agents``: the agents the run trained at once.
    """
    return {"whole_process_cold": numpy_s * agents / solve["cold"]["wall_s"]["median"],
            "whole_process_warm": numpy_s * agents / solve["warm"]["wall_s"]["median"],
            "training_alone_warm": numpy_s * agents / solve["warm"]["split_median_s"]["train"]}


def sweep_vs_separate(base_args, values: dict, repeats: int):
    """Whole-process time of one sweep against one run per setting, each from an empty cache.

    ``values``: ``{flag: [values]}``. The sweep is one ``train.py`` with the
    lists; the separate runs are one ``train.py`` per setting, in sequence,
    sharing one cache (the first compiles; the others reuse its programs,
    the hyper-parameters being arguments). Repeated ``repeats`` times,
    alternating the two.
    """
    import itertools

    flags = list(values)
    settings = list(itertools.product(*(values[f] for f in flags)))
    sweep_args = base_args + [x for f in flags for x in (f, ",".join(map(str, values[f])))]
    sweep, separate = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            sweep.append(train_process(sweep_args, cache, 1)["runs"][0])
        with tempfile.TemporaryDirectory() as cache:
            runs = [train_process(base_args + [x for f, v in zip(flags, setting) for x in (f, str(v))], cache, 1)["runs"][0]
                    for setting in settings]
        separate.append({"wall_s": sum(r["wall_s"] for r in runs),
                         "seconds": {k: sum(r["seconds"][k] for r in runs) for k in runs[0]["seconds"]},
                         "seeds_solved": sum(r["seeds_solved"] for r in runs), "runs": runs})
    summarise = lambda rows: {  # noqa: E731
        "wall_s": median_and_spread([r["wall_s"] for r in rows]),
        "split_median_s": {k: statistics.median(r["seconds"][k] for r in rows) for k in rows[0]["seconds"]},
        "seeds_solved": [r["seeds_solved"] for r in rows], "runs": rows}
    return {"base_args": base_args, "values": values, "settings": len(settings),
            "sweep": summarise(sweep), "separate": summarise(separate)}


# --------------------------------------------------------------------------- main


def throughput_report(results, sizes_arg, quick, repeats, skip, cores):
    """Section 1: training throughput of make_train and the runner beside gymnasium's, printed and stored."""
    import jax

    # The protocol: make_train, 60 iterations from fresh agents, one device, same run.
    iterations = 2 if quick else 60
    sizes = [(1, 16)] if quick else [(16, 256), (64, 64), (1, 1024), (256, 16)]  # --quick: each variant once
    if sizes_arg:
        sizes = [tuple(int(x) for x in size.split("x")) for size in sizes_arg.split(",")]
    devices = min(len(jax.devices()), cores)
    results["throughput"] = []

    def show(row):
        rate = row["env_steps_per_s"]
        label = {"plain": "jax.jit(jax.vmap(make_train(c)))", "options": "  + the trainer's compiler options",
                 "single": "jax.jit(make_train(c)), one agent", "rates": f"  nested vmap, {row.get('num_rates')} lrs x seeds",
                 "physics": "  + traced env_params (CartPole's own)",
                 "runner": f"  train.py's runner, {row.get('num_devices')} dev x {row.get('threads')} threads"}[row["variant"]]
        print(f"throughput {label:<38} seeds {row['num_seeds']:>4} x envs {row['num_envs']:>5}: "
              f"{rate['median'] / 1e6:6.2f}M env-steps/s (min {rate['min'] / 1e6:.2f}, max {rate['max'] / 1e6:.2f}); "
              f"compile {row['compile_s']:.2f}s", flush=True)

    for seeds, envs in sizes:
        for variant in ("plain", "options"):
            row = make_train_throughput(seeds, envs, iterations, repeats, variant)
            results["throughput"].append(row)
            show(row)
        if quick and (seeds, envs) != sizes[-1]:
            continue  # --quick: the runner at the last size only
        # The command line's default on a CPU (one device, a thread per core), then one device per core.
        for layout in [(1, None)] + ([] if quick or devices == 1 else [(devices, 1)]):
            row = runner_throughput(seeds, envs, iterations, repeats, *layout)
            results["throughput"].append(row)
            show(row)
    extra = [] if "extra" in skip else [("single", 1, 8 if quick else 1024, 0),
                                        ("rates", 2, 8 if quick else 64, 2 if quick else 4),
                                        *(("physics", s, e, 0) for s, e in sizes)]
    for variant, seeds, envs, rates in extra:
        row = make_train_throughput(seeds, envs, iterations, repeats, variant, num_rates=rates)
        results["throughput"].append(row)
        show(row)

    results["gymnasium_vector"] = gymnasium_vector_rollout(16 if quick else 256, 20 if quick else 2000, repeats)
    results["gymnasium_single"] = gymnasium_single_env(200 if quick else 20000, repeats)
    gym_rate = results["gymnasium_vector"]["env_steps_per_s"]["median"]
    for row in results["throughput"]:
        row["ratio_vs_gymnasium_vector"] = row["env_steps_per_s"]["median"] / gym_rate
    by_size = {}
    for row in results["throughput"]:
        by_size.setdefault((row["num_seeds"], row["num_envs"]), {})[row["variant"]] = row["env_steps_per_s"]["median"]
    results["ratio_plain_vs_options"] = {f"{s}x{e}": v["plain"] / v["options"] for (s, e), v in by_size.items()
                                         if "plain" in v and "options" in v}
    best = max(results["throughput"], key=lambda r: r["env_steps_per_s"]["median"])
    results["best_throughput"] = best
    results["ratio_best_vs_gymnasium_vector"] = best["env_steps_per_s"]["median"] / gym_rate
    print(f"gymnasium CartPoleVectorEnv x{results['gymnasium_vector']['num_envs']} (rollout only): "
          f"{results['gymnasium_vector']['env_steps_per_s']['median'] / 1e6:.2f}M env-steps/s; one env from Python: "
          f"{results['gymnasium_single']['env_steps_per_s']['median'] / 1e3:.0f}k/s", flush=True)
    for row in results["throughput"]:
        print(f"  {row['variant']:<8} {row['num_seeds']:>4} x {row['num_envs']:>5}: "
              f"{row['ratio_vs_gymnasium_vector']:.1f}x gymnasium's vector rollout", flush=True)
    for size, ratio in results["ratio_plain_vs_options"].items():
        print(f"  plain idiom / the trainer's options, {size}: {ratio:.2f}", flush=True)
    results["ratio_physics_vs_plain"] = {f"{s}x{e}": v["physics"] / v["plain"] for (s, e), v in by_size.items()
                                         if "physics" in v and "plain" in v}
    for size, ratio in results["ratio_physics_vs_plain"].items():
        print(f"  traced env_params / the plain idiom, {size}: {ratio:.2f}", flush=True)


def numpy_report(results, base, quick, repeats):
    """Section 3: the corrected NumPy seed program against train.py on CartPole-v0, printed and stored."""
    v0_args = base + ["--env", "CartPole-v0", "--hidden", "8", "--num-seeds", "1"]
    results["jax_cartpole_v0"] = time_to_solve(v0_args, repeats, fill_by_last_cold=quick)
    # The trainer's use: many agents at once; compared per agent with the NumPy program.
    many = 4 if quick else 256
    results["jax_cartpole_v0_many"] = time_to_solve(base + ["--env", "CartPole-v0", "--hidden", "8",
                                                            "--num-seeds", str(many)], repeats,
                                                   fill_by_last_cold=quick)
    ref_seeds = [0] if quick else [0, 1, 2, 3, 4]
    results["numpy_reference"] = numpy_reference_solve(ref_seeds, 30 if quick else 3000)
    if results["numpy_reference"]["wall_s"] is not None:
        numpy_s = results["numpy_reference"]["wall_s"]["median"]
        v0 = results["jax_cartpole_v0"]
        ratios = speedups(numpy_s, v0)
        results["ratio_numpy_reference_vs_jax_cartpole_v0"] = ratios
        print(f"CartPole-v0: NumPy seed program {numpy_s:.2f}s of training (median of "
              f"{results['numpy_reference']['solved']} solved seeds) vs scripts/train.py --env CartPole-v0 --hidden 8 "
              f"--num-seeds 1: whole process {v0['cold']['wall_s']['median']:.2f}s cold "
              f"({ratios['whole_process_cold']:.2f}x), {v0['warm']['wall_s']['median']:.2f}s warm "
              f"({ratios['whole_process_warm']:.2f}x); its training phase alone "
              f"{v0['warm']['split_median_s']['train']:.3f}s ({ratios['training_alone_warm']:.1f}x)", flush=True)
        v0_many = results["jax_cartpole_v0_many"]
        per_agent = speedups(numpy_s, v0_many, agents=many)
        results["ratio_numpy_reference_vs_jax_cartpole_v0_many_per_agent"] = per_agent
        print(f"CartPole-v0, {many} agents at once (--num-seeds {many}): {v0_many['cold']['wall_s']['median']:.2f}s cold, "
              f"{v0_many['warm']['wall_s']['median']:.2f}s warm, training phase "
              f"{v0_many['warm']['split_median_s']['train']:.2f}s (all solved: {v0_many['warm']['all_solved']}); "
              f"per agent against the NumPy program: {per_agent['whole_process_cold']:.0f}x cold, "
              f"{per_agent['whole_process_warm']:.0f}x warm, {per_agent['training_alone_warm']:.0f}x training phase",
              flush=True)
    else:
        print("CartPole-v0: the NumPy seed program did not solve within its episode budget", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes for CI: a smoke test, not a measurement")
    p.add_argument("--repeats", type=int, default=None, help="runs per figure (default 3, 1 with --quick)")
    p.add_argument("--out", default="benchmark.json", help="JSON output path")
    p.add_argument("--sizes", default=None, help="only these seeds x envs for the throughput table, e.g. 16x256,64x64")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out: extra, solve, numpy, sweep")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if skip - {"extra", "solve", "numpy", "sweep"}:
        p.error(f"--skip takes extra, solve, numpy, sweep; got {args.skip!r}")
    if args.repeats is not None and args.repeats < 1:
        p.error(f"--repeats must be an integer >= 1; got {args.repeats}")
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)

    from jax_reinforce.harness.compilation import use_cpu_cores

    cores = use_cpu_cores()  # as scripts/train.py: one CPU device per core (its default uses the first alone)
    import jax

    results = {"machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                           "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]},
               "quick": quick, "repeats": repeats}

    throughput_report(results, args.sizes, quick, repeats, skip, cores)

    # --quick: no evaluation, one device (one compile per program).
    base = ["--iterations", "3", "--num-envs", "8", "--eval-episodes", "0", "--devices", "1"] if quick else []
    results["time_to_solve"] = {}
    for seeds in [] if "solve" in skip else ([1] if quick else [1, 4, 256]):  # 4: the defaults
        r = time_to_solve(base + ["--num-seeds", str(seeds)], repeats, fill_by_last_cold=quick)
        results["time_to_solve"][str(seeds)] = r
        for kind in ("cold", "warm"):
            s = r[kind]["split_median_s"]
            print(f"time to solve CartPole-v1, {seeds:>3} seed(s), {kind} cache: {r[kind]['wall_s']['median']:.2f}s whole process "
                  f"(import {s['import']:.2f}, compile {s['compile']:.2f}, train {s['train']:.2f}, eval {s['eval']:.2f}); "
                  f"all solved: {r[kind]['all_solved']}", flush=True)

    if "numpy" not in skip:
        numpy_report(results, base, quick, repeats)

    # Issue 13: a 6-setting sweep of 16 seeds in one program against 6 runs of 16 seeds.
    if "sweep" not in skip:
        sweep_report(results, base, quick, repeats)

    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def sweep_report(results, base, quick, repeats):
    """The sweep against one run per setting (:func:`sweep_vs_separate`), printed and stored in ``results``."""
    sweep_base = base + ["--num-seeds", "2" if quick else "16"]
    sweep_values = {"--lr": [0.05, 0.1]} if quick else {"--lr": [0.03, 0.1, 0.3], "--entropy-coef": [0, 0.01]}
    r = sweep_vs_separate(sweep_base, sweep_values, repeats)
    results["sweep_vs_separate"] = r
    for kind in ("sweep", "separate"):
        s = r[kind]["split_median_s"]
        print(f"{r['settings']} settings x {sweep_base[-1]} seeds, {kind:<8}: {r[kind]['wall_s']['median']:.2f}s whole "
              f"process (compile {s['compile']:.2f}, train {s['train']:.2f}, eval {s['eval']:.2f}); seeds solved "
              f"{r[kind]['seeds_solved']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
