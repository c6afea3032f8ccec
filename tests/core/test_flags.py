"""The command line's config flags come from one table, jax_reinforce.core.config.FLAGS."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from jax_reinforce import Config
from jax_reinforce.core.config import FLAGS

ROOT = Path(__file__).resolve().parents[2]


def test_one_flag_per_config_field_in_order():
    assert [f.field for f in FLAGS] == [f.name for f in dataclasses.fields(Config)]
    assert FLAGS[[f.field for f in FLAGS].index("learning_rate")].flag == "--lr"
    assert all(f.allowed and f.help for f in FLAGS)
    # Continuous hyper-parameters only: nothing that changes a shape or the program.
    assert {f.field for f in FLAGS if f.sweepable} == {"learning_rate", "gamma", "entropy_coef", "max_grad_norm"}


def test_from_flags_parses_every_field_like_the_command_line():
    texts = {"env": "CartPole-v0", "hidden": "16,8", "num_envs": "4", "num_seeds": "3", "iterations": "7",
             "learning_rate": "0.05", "optimizer": "sgd", "gamma": "0.9", "entropy_coef": "0.01",
             "max_grad_norm": "none", "baseline": "mean", "grad": "manual", "seed": "5", "rollout_steps": "50",
             "stop_when_solved": "false"}
    config = Config.from_flags(texts)
    assert config == Config(env="CartPole-v0", hidden=(16, 8), num_envs=4, num_seeds=3, iterations=7,
                            learning_rate=0.05, optimizer="sgd", gamma=0.9, entropy_coef=0.01, max_grad_norm=None,
                            baseline="mean", grad="manual", seed=5, rollout_steps=50, stop_when_solved=False)


@pytest.mark.parametrize(("field", "text", "message"), [
    ("num_envs", "eight", r"num_envs \(--num-envs\) must be an integer in \[1, 2147483647\]; got 'eight'"),
    ("learning_rate", "fast", r"learning_rate \(--lr\) must be a finite number > 0; got 'fast'"),
    ("hidden", "8,x", r"hidden \(--hidden\) must be comma-separated layer widths"),
    ("stop_when_solved", "maybe", r"stop_when_solved \(--stop-when-solved\) must be True or False"),
    ("nonsense", "1", r"unknown config field 'nonsense'"),
])
def test_from_flags_refuses_bad_text_in_one_message(field, text, message):
    with pytest.raises(ValueError, match=message):
        Config.from_flags({field: text})


def test_train_help_lists_every_config_flag():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in FLAGS:
        assert flag.flag in out.stdout, flag.flag


def test_scripts_stay_thin():
    for script in ("train.py", "evaluate.py"):
        lines = (ROOT / "scripts" / script).read_text().splitlines()
        assert len(lines) <= 150, (script, len(lines))


def test_docs_cli_md_holds_the_generated_flags_table():
    """docs/cli.md's table of flags is generated from Config's fields (jax_reinforce.app.cli.flags_table)."""
    from jax_reinforce.app.cli import flags_table

    text = (ROOT / "docs" / "cli.md").read_text()
    start, end = "<!-- flags-table:start -->\n", "<!-- flags-table:end -->"
    assert start in text and end in text, "docs/cli.md lacks the flags-table markers"
    table = text[text.index(start) + len(start):text.index(end)].strip("\n") + "\n"
    assert table == flags_table(), ("docs/cli.md's flags table is stale: replace it with the output of "
                                    "python -c 'from jax_reinforce.app.cli import flags_table; print(flags_table())'")


def test_numpy_scalars_are_numbers_wherever_python_numbers_are(tmp_path):
    """``Config(learning_rate=np.float32(0.1))`` and ``train_run(eval_episodes=np.int64(2))`` (issue 26, item 18)."""
    import json

    import numpy as np

    from jax_reinforce import train_run
    from jax_reinforce.app.run import RunError

    config = Config(learning_rate=np.float32(0.1), gamma=(np.float64(0.9), 0.99), num_seeds=np.int64(3),
                    hidden=[np.int32(8)], seed=np.uint32(7), stop_when_solved=np.bool_(False),
                    env_params={"gravity": np.float32(9.5)}, solve_threshold=np.int16(400))
    assert config == Config(learning_rate=float(np.float32(0.1)), gamma=(0.9, 0.99), num_seeds=3, hidden=(8,),
                            seed=7, stop_when_solved=False, env_params={"gravity": 9.5}, solve_threshold=400)
    assert type(config.learning_rate) is float and type(config.num_seeds) is int
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # stored exactly
    with pytest.raises(ValueError, match=r"^learning_rate \(--lr\) must be a finite number > 0; got -0.5$"):
        Config(learning_rate=np.float32(-0.5))
    # The run's own counts: refused for the bad --devices, not for being NumPy integers.
    with pytest.raises(RunError, match=r"^devices \(--devices\)"):
        train_run(Config(hidden=(8,), num_seeds=2, iterations=1), tmp_path / "run", devices="many",
                  chunk_iterations=np.int64(1), checkpoint_every=np.int32(0), eval_episodes=np.int64(2))
