"""Per-environment defaults: one table, used by Config and the command line; the selection rule."""

import dataclasses
import json
from pathlib import Path

import pytest

from jax_reinforce import Config
from jax_reinforce.config import UNSET
from jax_reinforce.env_defaults import DEFAULTS, ENV_DEFAULTS, choose_setting, defaults_for, search_defaults

FIELDS = [f.name for f in dataclasses.fields(Config)]


def test_the_table_holds_config_fields_and_every_entry_is_a_valid_config():
    assert sorted(DEFAULTS) == sorted(set(FIELDS) - {"env"})
    for env, setting in ENV_DEFAULTS.items():
        assert set(setting) <= set(DEFAULTS), (env, setting)
        config = Config(env=env)
        assert config.given_fields == {"env"}
        for field, value in defaults_for(env).items():
            assert getattr(config, field) == value, (env, field)
    assert all(f.default is UNSET for f in dataclasses.fields(Config) if f.name != "env")


def test_an_unset_field_takes_the_environments_default_and_a_given_one_wins(monkeypatch):
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": 0.02, "hidden": (16,), "baseline": "value"})
    config = Config(env="Acrobot-v1")
    assert (config.learning_rate, config.hidden, config.baseline) == (0.02, (16,), "value")
    assert config.num_envs == DEFAULTS["num_envs"]  # not in the entry: the common default
    given = Config(env="Acrobot-v1", learning_rate=0.5, baseline="normalize")
    assert (given.learning_rate, given.hidden, given.baseline) == (0.5, (16,), "normalize")
    assert given.given_fields == {"env", "learning_rate", "baseline"}
    # The same value given explicitly counts as given.
    assert Config(env="Acrobot-v1", learning_rate=0.02).given_fields == {"env", "learning_rate"}
    # A sweep of a field with a per-environment default.
    assert Config(env="Acrobot-v1", learning_rate=(0.01, 0.03)).learning_rate == (0.01, 0.03)


def test_replace_keeps_unset_fields_following_the_environment(monkeypatch):
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": 0.02, "hidden": (16,)})
    cartpole = Config(num_envs=8)
    acrobot = cartpole.replace(env="Acrobot-v1")
    assert acrobot == Config(env="Acrobot-v1", num_envs=8)
    assert (acrobot.learning_rate, acrobot.hidden, acrobot.num_envs) == (0.02, (16,), 8)
    assert acrobot.given_fields == {"env", "num_envs"}
    back = acrobot.replace(env="CartPole-v1", learning_rate=0.3)
    assert (back.learning_rate, back.hidden) == (0.3, DEFAULTS["hidden"])
    # dataclasses.replace passes every field: all count as given (documented in Config.replace).
    assert dataclasses.replace(cartpole, env="Acrobot-v1").hidden == DEFAULTS["hidden"]


def test_the_stored_config_holds_resolved_values_and_reads_back_as_given(monkeypatch):
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": 0.02})
    config = Config(env="Acrobot-v1")
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["learning_rate"] == 0.02 and UNSET not in stored.values()
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": 0.07})  # the table changes later
    loaded = Config.from_dict(stored)
    assert loaded.learning_rate == 0.02 and loaded.given_fields == set(FIELDS)
    assert loaded == config


def test_a_bad_table_entry_is_refused_like_a_bad_argument(monkeypatch):
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": -1.0})
    with pytest.raises(ValueError, match=r"^learning_rate \(--lr\) must be a finite number > 0; got -1.0$"):
        Config(env="Acrobot-v1")
    assert Config(env="Acrobot-v1", learning_rate=0.1).learning_rate == 0.1  # a given value replaces it


def test_the_command_line_takes_the_environments_defaults(monkeypatch):
    import importlib.util
    from pathlib import Path

    from jax_reinforce.cli import config_from_args

    path = Path(__file__).resolve().parent.parent / "scripts" / "train.py"
    spec = importlib.util.spec_from_file_location("train_script_defaults", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    build_parser = script.build_parser
    monkeypatch.setitem(ENV_DEFAULTS, "Acrobot-v1", {"learning_rate": 0.02, "hidden": (16,)})
    config = config_from_args(build_parser().parse_args(["--env", "Acrobot-v1", "--num-envs", "4"]))
    assert config == Config(env="Acrobot-v1", num_envs=4)
    assert (config.learning_rate, config.hidden) == (0.02, (16,))
    assert config.given_fields == {"env", "num_envs"}
    help_text = " ".join(build_parser().format_help().split())
    assert "learning rate (a comma-separated list sweeps it) (default: the environment's; CartPole-v1: 0.1)" in help_text


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


SEARCH = Path(__file__).resolve().parent.parent / "docs" / "search"


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
