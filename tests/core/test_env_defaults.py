"""Per-environment defaults: one table, used by Config and the command line; the selection rule."""

import dataclasses
import json
from pathlib import Path

import pytest

from jax_reinforce import Config
from jax_reinforce.core.config import UNSET
from jax_reinforce.core.env_defaults import DEFAULTS, ENV_DEFAULTS, defaults_for

FIELDS = [f.name for f in dataclasses.fields(Config)]


def test_the_table_holds_config_fields_and_every_entry_is_a_valid_config():
    # Every field but the environment and what belongs to it (its physics, threshold) and the network.
    assert sorted(DEFAULTS) == sorted(set(FIELDS) - {"env", "env_params", "solve_threshold", "network"})
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

    from jax_reinforce.app.cli import config_from_args

    path = Path(__file__).resolve().parents[2] / "scripts" / "train.py"
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
