#!/usr/bin/env python
"""docs/environments.md's measurements: each environment trained on its defaults, as a user would.

    python scripts/env_table.py --envs Acrobot-v1,Pendulum-v1     # appends to docs/search/table.json
    python scripts/env_table.py --markdown                         # prints the table from the JSON

For each environment: ``python scripts/train.py --env ENV --num-seeds 16
--seed 100 --quiet`` in a fresh process with an empty compilation cache
(root seed 100: other agents than the seed-0 ones the defaults were chosen
on), timed whole; its summary.json gives the greedy returns (per seed, the
mean of its evaluation episodes; median and quartiles over the 16 seeds, in
gymnax and, where it has the environment, gymnasium), the seeds solved and
the environment steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jax_reinforce.core.env_defaults import DEFAULTS  # noqa: E402  (no JAX: a table of settings)
TABLE = ROOT / "docs" / "search" / "table.json"
# The returns gymnax's README gives for its trained PPO/ES agents.
REFERENCE = {"Pendulum-v1": -130, "CartPole-v1": 500, "MountainCar-v0": -118, "MountainCarContinuous-v0": 92,
             "Acrobot-v1": -80, "Catch-bsuite": 1, "FourRooms-misc": 1, "MetaMaze-misc": 32, "PointRobot-misc": 10,
             "BernoulliBandit-misc": 90, "GaussianBandit-misc": 0}


def quartiles(values):
    import numpy as np

    q25, med, q75 = np.percentile(np.asarray(values, float), [25, 50, 75])
    return [float(q25), float(med), float(q75)]


def measure(env: str, num_seeds: int, seed: int, extra: list[str]) -> dict:
    command = ["scripts/train.py", "--env", env, "--num-seeds", str(num_seeds), "--seed", str(seed), *extra]
    with tempfile.TemporaryDirectory() as tmp:
        run_env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(Path(tmp) / "cache"),
                   "XDG_CACHE_HOME": str(Path(tmp) / "xdg")}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *command, "--quiet", "--out", str(Path(tmp) / "run")], cwd=ROOT,
                              env=run_env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 3):
            raise RuntimeError(f"{env}: exit {proc.returncode}: {proc.stderr[-2000:]}")
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        config = json.loads((Path(tmp) / "run" / "config.json").read_text())
    evaluation = summary["evaluation"]
    return {
        "env": env, "command": "python " + " ".join(command), "config": config, "wall_s": wall,
        "exit_code": proc.returncode, "seeds": num_seeds, "seeds_solved": summary["seeds_solved"],
        "solve_threshold": summary["solve_threshold"], "iterations_run": summary["iterations_run"],
        "env_steps": summary["env_steps"], "confirmation_env_steps": summary["confirmation_env_steps"],
        "greedy_gymnax": quartiles(evaluation["gymnax_mean"]),
        "greedy_gymnasium": quartiles(evaluation["gymnasium_mean"]) if "gymnasium_mean" in evaluation else None,
        "evaluation_episodes": summary["evaluation_episodes"], "reference": REFERENCE.get(env),
        "seconds": summary["seconds"],
    }


# The table's order: gymnax's classic control, MinAtar, bsuite, misc.
ORDER = ("CartPole-v1", "CartPole-v0", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0",
         "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar",
         "Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite", "DiscountingChain-bsuite",
         "SimpleBandit-bsuite", "BernoulliBandit-misc", "GaussianBandit-misc", "FourRooms-misc", "MetaMaze-misc",
         "PointRobot-misc", "Reacher-misc", "Swimmer-misc", "FrozenLake-misc", "Pong-misc")


def steps_text(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def markdown(rows: list[dict]) -> str:
    def q(v):
        return "" if v is None else f"{v[1]:.4g} ({v[0]:.4g} to {v[2]:.4g})"

    def defaults(config):
        envs = "" if config["num_envs"] == DEFAULTS["num_envs"] else f", {config['num_envs']} envs"
        return (f"{','.join(map(str, config['hidden']))}, lr {config['learning_rate']:g}, {config['baseline']}, "
                f"{config['iterations']} its{envs}")

    rows = sorted(rows, key=lambda r: ORDER.index(r["env"]) if r["env"] in ORDER else len(ORDER))
    lines = [f"| `--env` | defaults: hidden, lr, baseline, iterations (environments if not {DEFAULTS['num_envs']}) | greedy return, gymnax: median (IQR) | gymnasium "
             "| reference | solved | env steps per seed | wall time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        solved = f"{r['seeds_solved']}/{r['seeds']}" if r["solve_threshold"] is not None else "no threshold"
        lines.append(f"| {r['env']} | {defaults(r['config'])} | {q(r['greedy_gymnax'])} | {q(r['greedy_gymnasium'])} | "
                     f"{'' if r['reference'] is None else r['reference']} | {solved} | "
                     f"{steps_text(r['env_steps'] / r['seeds'])} | {r['wall_s']:.0f} s |")
    return "\n".join(lines)


def search_markdown(search_dir: Path = TABLE.parent) -> str:
    """One table per environment searched (docs/search/<env>.json): every setting, the chosen one in bold."""
    parts = []
    for path in sorted(search_dir.glob("*.json")):
        if path == TABLE:
            continue
        result = json.loads(path.read_text())
        grid = list(result["grid"])
        base = ", ".join(f"{k} {v}" for k, v in result["base"].items())
        parts.append(f"### {result['env']}\n\nGrid: " + ", ".join(f"{k} {v}" for k, v in result["grid"].items())
                     + f"; {base}; threshold {result['threshold']}.\n")
        parts.append("| " + " | ".join(grid) + " | solved | env steps to solve (median) | env steps (median) "
                     "| greedy return: median (IQR) |")
        parts.append("|" + " --- |" * (len(grid) + 4))
        for i, row in enumerate(result["rows"]):
            cells = [str(row[k]) for k in grid] + [
                f"{row['seeds_solved']}/{row['seeds']}",
                "" if row["env_steps_to_solve_median"] is None else steps_text(row["env_steps_to_solve_median"]),
                steps_text(row["env_steps_median"]),
                f"{row['greedy_return_median']:.4g} ({row['greedy_return_q25']:.4g} to {row['greedy_return_q75']:.4g})"]
            if i == result["chosen"]:
                cells = [f"**{c}**" if c else c for c in cells]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="env_table.py", description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="", help="comma-separated environments to measure")
    p.add_argument("--num-seeds", type=int, default=16)
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--extra", default="", help="more train.py flags, space-separated")
    p.add_argument("--markdown", action="store_true", help="print the table of docs/search/table.json")
    p.add_argument("--search-markdown", action="store_true", help="print every search's settings (docs/search/*.json)")
    args = p.parse_args(argv)
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    for env in filter(None, args.envs.split(",")):
        row = measure(env, args.num_seeds, args.seed, args.extra.split())
        table[env] = row
        TABLE.write_text(json.dumps(table, indent=1) + "\n")
        print(json.dumps({k: row[k] for k in ("env", "wall_s", "seeds_solved", "greedy_gymnax", "greedy_gymnasium",
                                              "env_steps")}), flush=True)
    if args.markdown:
        print(markdown(list(table.values())))
    if args.search_markdown:
        print(search_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
