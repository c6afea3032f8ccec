"""The defaults search (``jax_reinforce.app.search``): the selection rule, a tiny search, and every table entry the setting its search chose."""

import json
from pathlib import Path

import pytest

from jax_reinforce.app.search import choose_setting, search_defaults
from jax_reinforce import Config
from jax_reinforce.core.env_defaults import DEFAULTS, defaults_for

ROWS = [
    {"seeds_solved": 10, "env_steps_to_solve_median": 5e5, "greedy_return_median": -90.0},
    {"seeds_solved": 12, "env_steps_to_solve_median": 9e5, "greedy_return_median": -95.0},
    {"seeds_solved": 12, "env_steps_to_solve_median": 7e5, "greedy_return_median": -99.0},
    {"seeds_solved": 0, "env_steps_to_solve_median": None, "greedy_return_median": -60.0},
]


def test_the_selection_rule():
    # With a threshold: most seeds solved, then fewest steps to solve; the greedy return only breaks ties.
    assert choose_setting(ROWS, -100.0) == 2
    # Without a threshold: the best median greedy return.
    assert choose_setting(ROWS, None) == 3
    # A threshold nobody reached: the greedy return decides.
    unsolved = [dict(r, seeds_solved=0, env_steps_to_solve_median=None) for r in ROWS]
    assert choose_setting(unsolved, -100.0) == 3
    # A missing or non-finite greedy return never wins.
    assert choose_setting([{"seeds_solved": 0, "greedy_return_median": float("nan")},
                           {"seeds_solved": 0, "greedy_return_median": -1e9}], None) == 1
    # Equal medians: the better lower quartile, then the first.
    tied = [{"seeds_solved": 0, "greedy_return_median": 1.0, "greedy_return_q25": q} for q in (0.5, 1.0, 1.0)]
    assert choose_setting(tied, None) == 1
    with pytest.raises(ValueError, match="no settings"):
        choose_setting([], None)


def test_search_defaults_trains_every_setting_and_chooses_one(tmp_path):
    grid = {"learning_rate": [0.01, 0.1], "hidden": [(4,), (8,)]}
    result = search_defaults("CartPole-v0", grid, {"iterations": 2, "num_envs": 4}, num_seeds=2,
                             eval_episodes=2, out=tmp_path)
    rows = result["rows"]
    assert [(r["hidden"], r["learning_rate"]) for r in rows] == [((4,), 0.01), ((4,), 0.1), ((8,), 0.01), ((8,), 0.1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["program-0", "program-1"]  # one program per width
    for row in rows:
        assert row["seeds"] == 2 and 0 <= row["seeds_solved"] <= 2
        assert row["greedy_return_q25"] <= row["greedy_return_median"] <= row["greedy_return_q75"]
        assert 0 < row["env_steps_median"] <= 2 * 4 * 200
    assert result["chosen"] == choose_setting(rows, 195.0)
    json.dumps(result)  # JSON-ready
    # The runs trained each setting on agents 0-1 of seed 0 with the base fields.
    saved = json.loads((tmp_path / "program-1" / "config.json").read_text())
    assert saved["hidden"] == [8] and saved["learning_rate"] == [0.01, 0.1] and saved["seed"] == 0
    assert saved["iterations"] == 2 and saved["num_envs"] == 4


SEARCH = Path(__file__).resolve().parents[2] / "docs" / "search"


def test_every_searched_entry_is_the_setting_its_search_chose():
    """ENV_DEFAULTS holds, for each environment searched, the grid fields of the chosen row (docs/search/<env>.json)."""
    searched = sorted(p.stem for p in SEARCH.glob("*.json") if p.name != "table.json")
    assert searched, "no search results in docs/search"
    for env in searched:
        result = json.loads((SEARCH / f"{env}.json").read_text())
        assert result["env"] == env and result["num_seeds"] == 16 and result["seed"] == 0
        rows = result["rows"]
        assert result["chosen"] == choose_setting(rows, result["threshold"]), env
        chosen = rows[result["chosen"]]
        defaults = defaults_for(env)
        for field in result["grid"]:
            want = tuple(chosen[field]) if isinstance(chosen[field], list) else chosen[field]
            assert defaults[field] == want, (env, field, defaults[field], want)
        # The search's base fields too (num_envs, the budget of iterations), but where a threshold
        # exists the default keeps 300 iterations: an agent stops once solved.
        for field, value in result["base"].items():
            want = tuple(value) if isinstance(value, list) else value
            if field == "iterations" and result["threshold"] is not None:
                want = DEFAULTS["iterations"]
            assert defaults[field] == want, (env, field, defaults[field], want)


def test_docs_environments_md_shows_the_measured_tables():
    """docs/environments.md's tables are those of docs/search/*.json (scripts/env_table.py), not typed by hand."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("env_table", SEARCH.parent.parent / "scripts" / "env_table.py")
    env_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(env_table)
    text = (SEARCH.parent / "environments.md").read_text()
    assert env_table.search_markdown() in text
    rows = json.loads((SEARCH / "table.json").read_text())
    assert env_table.markdown(list(rows.values())) in text
    for env, row in rows.items():
        # Measured with the defaults of today's table, on other agents than the search's.
        assert row["config"]["seed"] == 100 and row["seeds"] == 16
        assert Config.from_dict(row["config"]) == Config(env=env, seed=100, num_seeds=16), env
