#!/usr/bin/env python
"""Chooses an environment's defaults by measurement (jax_reinforce.app.search.search_defaults).

    python scripts/search_defaults.py --env Acrobot-v1 --base '{"iterations": 200}'
    python scripts/search_defaults.py --env Pendulum-v1 --grid '{"learning_rate": [0.003, 0.01], "baseline": ["value"]}'

Trains each setting of the grid on agents 0-15 of root seed 0, prints one
row per setting and the chosen one (jax_reinforce.app.search.SELECTION_RULE), and writes
them as JSON (--json, default docs/search/<env>.json). The chosen setting's
figures for docs/environments.md come from other seeds: scripts/env_table.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The grid searched unless --grid says otherwise: learning rates in one program, per baseline and width.
GRID = {"learning_rate": [0.003, 0.01, 0.03, 0.1], "baseline": ["normalize", "value"], "hidden": [[16], [64, 64]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="search_defaults.py", description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True)
    p.add_argument("--grid", type=json.loads, default=GRID, help=f"JSON {{field: [values]}} (default {json.dumps(GRID)})")
    p.add_argument("--base", type=json.loads, default={}, help="JSON {field: value} for every setting")
    p.add_argument("--num-seeds", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=16)
    p.add_argument("--json", default=None, help="where to write the result (default docs/search/<env>.json)")
    args = p.parse_args(argv)
    from jax_reinforce.app.cli import start_jax
    from jax_reinforce.app.search import search_defaults

    start_jax()
    grid = {k: [tuple(v) if isinstance(v, list) else v for v in values] for k, values in args.grid.items()}
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in args.base.items()}
    result = search_defaults(args.env, grid, base, num_seeds=args.num_seeds, seed=args.seed,
                             eval_episodes=args.eval_episodes, log=lambda line: print(line, flush=True))
    for i, row in enumerate(result["rows"]):
        print(("* " if i == result["chosen"] else "  ") + json.dumps(row))
    path = Path(args.json or Path(__file__).resolve().parent.parent / "docs" / "search" / f"{args.env}.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"chosen: {json.dumps(result['rows'][result['chosen']])}\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
