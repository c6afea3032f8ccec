"""scripts/train.py and scripts/evaluate.py: bad input refused in one line, runs end to end.

Every bad input is tried next to an existing run, with ``--overwrite`` (or
``--resume``) pointing at it: a check made after the old run's files were
touched would show up as a changed file. The many bad flag values, damaged
checkpoints and evaluate.py's bad inputs go through the script's ``main`` in
this process (its exit code and what it wrote to file descriptors 1 and 2),
each in milliseconds; the other refusals run the script as a process, exit
code and all.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jax_reinforce import Config
from jax_reinforce.core.config import FLAGS
from scripts_in_process import load_script, run_script_main

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
EVALUATE = ROOT / "scripts" / "evaluate.py"
# test_failures.py's tiny run too (its programs compiled once for the suite).
TINY = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--iterations", "3", "--quiet"]


@pytest.fixture(scope="module")
def script_env():
    """The environment of every subprocess: CPU only, the suite's compilation cache (``tests/conftest.py``)."""
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def run(script, args, env, cwd=None, timeout=120):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
    )


def snapshot(directory: Path) -> dict:
    """Every file's bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def assert_refused(result, *fragments, prog="train.py"):
    """Exit code 2, exactly one line on stderr naming what is wrong, no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def scripts():
    """scripts/train.py and scripts/evaluate.py imported as modules (not as ``__main__``: no signal handlers,
    no collector pause), by path."""
    return {TRAIN: load_script(TRAIN), EVALUATE: load_script(EVALUATE)}


@pytest.fixture
def run_main(scripts, capfd, monkeypatch):
    """``run_main(script, args)``: the script's ``main(args)`` here, as a finished process (scripts_in_process)."""
    return lambda script, args: run_script_main(scripts[script], args, capfd, monkeypatch)


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory, script_env):
    """A finished tiny run, with its files' bytes and times."""
    out = tmp_path_factory.mktemp("existing") / "run"
    result = run(TRAIN, [*TINY, "--eval-episodes", "2", "--out", out], script_env)
    assert result.returncode == 0, result.stderr
    return out, snapshot(out)


# ------------------------------------------------------------------ train.py: bad flag values

# (flags, fragments of the message, the same mistake made through Config or None)
BAD_VALUES = [
    # Numbers: out of range, NaN, infinite, not numbers at all.
    (["--lr", "nan"], ["--lr", "got nan", "finite number > 0"], {"learning_rate": float("nan")}),
    (["--lr", "inf"], ["--lr", "got inf"], {"learning_rate": float("inf")}),
    (["--lr", "1e400"], ["--lr", "got inf"], {"learning_rate": float("inf")}),
    (["--lr", "-0.1"], ["--lr", "got -0.1", "> 0"], {"learning_rate": -0.1}),
    (["--lr", "0"], ["--lr", "got 0.0"], {"learning_rate": 0.0}),
    (["--lr", "fast"], ["--lr", "got 'fast'"], {"learning_rate": "fast"}),
    (["--gamma", "1.5"], ["--gamma", "1.5", "[0, 1]"], {"gamma": 1.5}),
    (["--gamma", "-0.01"], ["--gamma", "-0.01"], {"gamma": -0.01}),
    (["--gamma", "NaN"], ["--gamma", "got nan"], {"gamma": float("nan")}),
    (["--entropy-coef", "-1"], ["--entropy-coef", "-1.0", ">= 0"], {"entropy_coef": -1.0}),
    (["--max-grad-norm", "0"], ["--max-grad-norm", "0.0", "> 0"], {"max_grad_norm": 0.0}),
    (["--max-grad-norm", "nan"], ["--max-grad-norm", "got nan", "None"], {"max_grad_norm": float("nan")}),
    (["--max-grad-norm", "big"], ["--max-grad-norm", "'big'"], {"max_grad_norm": "big"}),
    (["--num-envs", "0"], ["--num-envs", "got 0", "[1, 2147483647]"], {"num_envs": 0}),
    (["--num-envs", "1.5"], ["--num-envs", "'1.5'"], {"num_envs": "1.5"}),
    (["--num-envs", ""], ["--num-envs", "''"], {"num_envs": ""}),
    (["--num-envs", "2147483648"], ["--num-envs", "2147483648", "2147483647"], {"num_envs": 2**31}),
    (["--num-seeds", "-3"], ["--num-seeds", "-3"], {"num_seeds": -3}),
    (["--iterations", "0"], ["--iterations", "got 0"], {"iterations": 0}),
    (["--iterations", "1e3"], ["--iterations", "'1e3'"], {"iterations": "1e3"}),
    (["--seed", "-1"], ["--seed", "got -1", "[0, 2**32)"], {"seed": -1}),
    (["--seed", "4294967296"], ["--seed", "4294967296"], {"seed": 2**32}),
    (["--rollout-steps", "0"], ["--rollout-steps", "got 0"], {"rollout_steps": 0}),
    (["--checkpoint-every", "-1"], ["--checkpoint-every", "'-1'", ">= 0"], None),
    (["--chunk-iterations", "0"], ["--chunk-iterations", "'0'", ">= 1"], None),
    (["--eval-episodes", "many"], ["--eval-episodes", "'many'"], None),
    # Lists: empty or malformed layer widths.
    (["--hidden", "8,x"], ["--hidden", "'8,x'", "comma-separated"], None),
    (["--hidden", "0"], ["--hidden", "got (0,)"], {"hidden": (0,)}),
    (["--hidden", ""], ["--hidden", "''"], None),
    (["--hidden", "8,,8"], ["--hidden", "'8,,8'"], None),
    (["--hidden", "8,-8"], ["--hidden", "got (8, -8)"], {"hidden": (8, -8)}),
    (["--hidden", "8;8"], ["--hidden", "'8;8'"], None),
    (["--hidden", "3000000000"], ["--hidden", "3000000000", "2147483647"], {"hidden": (3000000000,)}),
    # Names: unknown environments, optimizers, gradients, baselines.
    (["--env", "CartPole-v9"], ["--env", "'CartPole-v9'", "not a gymnax environment", "Acrobot-v1"], {"env": "CartPole-v9"}),
    (["--env", "MNISTBandit-bsuite"], ["--env", "'MNISTBandit-bsuite'", "downloads the MNIST data set"],
     {"env": "MNISTBandit-bsuite"}),
    (["--env", ""], ["--env", "''"], {"env": ""}),
    (["--optimizer", "adamw"], ["--optimizer", "'adamw'", "adam, sgd, rmsprop"], {"optimizer": "adamw"}),
    (["--grad", "numeric"], ["--grad", "'numeric'", "autodiff, manual"], {"grad": "numeric"}),
    (["--baseline", "median"], ["--baseline", "'median'", "none, mean, normalize"], {"baseline": "median"}),
    # Flags: unknown, abbreviated, missing their value, stray words.
    (["--learning-rate", "0.1"], ["'--learning-rate 0.1'", "--help"], None),
    (["--iter", "5"], ["'--iter 5'", "did you mean --iterations?"], None),
    (["--lr"], ["--lr", "expected one argument"], None),
    (["fast"], ["'fast'", "--help"], None),
]


@pytest.mark.parametrize("bad, fragments, library", BAD_VALUES, ids=[" ".join(b) or "empty" for b, _, _ in BAD_VALUES])
def test_bad_values_are_refused_before_touching_the_run(bad, fragments, library, existing_run, run_main):
    out, before = existing_run
    # --overwrite would delete the old run: checks must all come first.
    result = run_main(TRAIN, [*TINY, "--out", out, "--overwrite", *bad])
    assert_refused(result, *fragments)
    assert snapshot(out) == before
    if library is not None:  # the library says the same, through Config
        with pytest.raises(ValueError) as error:
            Config(**library)
        assert result.stderr.strip() == f"train.py: error: {error.value}"


@pytest.mark.parametrize(
    "bad, fragments",
    [
        (["--num-seeds", "3"], ["--num-seeds 3", "differs from the run's 2"]),
        (["--hidden", "16"], ["--hidden (16,)", "differs"]),
        (["--no-stop-when-solved"], ["--stop-when-solved False", "differs"]),
        (["--iterations", "2"], ["--iterations", "at least the run's 3", "got 2"]),
        (["--lr", "nan"], ["--lr", "got nan"]),
        (["--overwrite"], ["--resume and --overwrite"]),
    ],
)
def test_resume_refuses_flags_that_contradict_the_run(bad, fragments, existing_run, run_main):
    out, before = existing_run
    assert_refused(run_main(TRAIN, ["--resume", "--out", out, "--quiet", *bad]), *fragments)
    assert snapshot(out) == before


# ------------------------------------------------------------------ train.py: output directories


def test_an_existing_run_needs_resume_or_overwrite(existing_run, script_env):
    out, before = existing_run
    assert_refused(run(TRAIN, [*TINY, "--out", out], script_env), f"--out '{out}'", "--resume", "--overwrite")
    assert snapshot(out) == before


def test_output_directories_that_cannot_be_created_or_written(tmp_path, script_env):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    cases = [
        ([a_file], ["--out", "must be a directory"]),
        ([a_file / "run"], ["--out", "cannot be created or written"]),
        (["/proc/jax-reinforce-test/run"], ["--out", "cannot be created or written"]),
        ([""], ["--out", "''"]),
    ]
    for out, fragments in cases:
        assert_refused(run(TRAIN, [*TINY, "--out", *out], script_env), *fragments)
    assert a_file.read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_resume_of_a_run_that_does_not_exist(tmp_path, script_env):
    assert_refused(run(TRAIN, ["--resume", "--out", tmp_path / "nothing"], script_env), "--resume", "does not exist")
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty").mkdir()
    assert_refused(run(TRAIN, ["--resume", "--out", tmp_path / "empty"], script_env), "--resume", "no run to resume")
    assert list((tmp_path / "empty").iterdir()) == []
    assert_refused(run(TRAIN, ["--resume"], script_env, cwd=tmp_path), "--resume needs --out")


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_resume_of_a_damaged_or_planted_checkpoint_is_refused(existing_run, tmp_path, run_main):
    out, _ = existing_run
    truncated = _copy_run(out, tmp_path / "truncated")
    data = (truncated / "checkpoint.npz").read_bytes()
    (truncated / "checkpoint.npz").write_bytes(data[: len(data) // 2])

    planted = _copy_run(out, tmp_path / "planted")
    with np.load(planted / "checkpoint.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["state/key"] = np.array([_Plant(tmp_path / "pwned")], dtype=object)
    with open(planted / "checkpoint.npz", "wb") as f:
        np.savez(f, **arrays)

    mismatched = _copy_run(out, tmp_path / "mismatched")  # a state that does not fit its config
    arrays.pop("state/key")
    arrays["state/key"] = np.zeros((2, 3), np.uint32)
    with open(mismatched / "checkpoint.npz", "wb") as f:
        np.savez(f, **arrays)

    for run_dir, fragments in (
        (truncated, ["not a .npz"]),
        (planted, ["pickled", "refused"]),
        (mismatched, ["--resume", "state/key", "(2, 3)", "expected (2, 2)"]),
    ):
        before = snapshot(run_dir)
        assert_refused(run_main(TRAIN, ["--resume", "--out", run_dir, "--quiet"]), *fragments)
        assert snapshot(run_dir) == before
        if run_dir is not mismatched:  # evaluation reads the params only, which still fit
            assert_refused(run_main(EVALUATE, [run_dir, "--episodes", "2"]), *fragments, prog="evaluate.py")
    assert not (tmp_path / "pwned").exists()


class _Plant:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ------------------------------------------------------------------ train.py: a default run, in-process


def test_default_run_directory_and_every_file_written_atomically(tmp_path, monkeypatch, capsys):
    """No --out: a fresh runs/<env>-<timestamp>; each of its files arrived by an atomic rename."""
    train = load_script(TRAIN)
    renamed = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renamed.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "replace", recording_replace)
    code = train.main([*TINY, "--iterations", "2", "--eval-episodes", "1", "--no-compile-cache"])
    assert code == 0, capsys.readouterr().err
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("CartPole-v1-"), runs
    files = sorted(p.name for p in runs[0].iterdir())
    assert files == sorted(train.RUN_FILES)
    assert set(files) <= set(renamed)
    assert capsys.readouterr().out.rstrip().endswith(f"run directory: {Path('runs') / runs[0].name}")


# ------------------------------------------------------------------ evaluate.py


def test_evaluate_end_to_end_with_a_gif(existing_run, tmp_path, script_env):
    out, before = existing_run
    gif = tmp_path / "best.gif"
    result = run(EVALUATE, [out, "--episodes", "2", "--gif", gif], script_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "CartPole-v1, 2 seeds" in lines[0] and "2 episodes per seed" in lines[0]
    assert lines[1].split() == ["seed", "gymnax", "gymnasium"]
    rows = [line.split() for line in lines[2:4]]
    assert [row[0] for row in rows] == ["0", "1"]
    # The same run, episodes and (default) seed as train.py's own evaluation: the same numbers.
    import json

    summary = json.loads((out / "summary.json").read_text())
    for i, row in enumerate(rows):
        assert row[1] == f"{summary['evaluation']['gymnax_mean'][i]:.1f}"
        assert row[2] == f"{summary['evaluation']['gymnasium_mean'][i]:.1f}"
    assert any(line.startswith("gif: ") for line in lines)

    from PIL import Image

    with Image.open(gif) as image:
        assert image.format == "GIF" and image.size == (600, 400)
        assert image.n_frames > 1
    assert snapshot(out) == before  # evaluating changes nothing in the run


def test_evaluate_refuses_bad_input_in_one_line(existing_run, tmp_path, run_main):
    out, before = existing_run
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "dir.gif").mkdir()
    cases = [
        ([tmp_path / "missing"], ["RUN_DIR", "missing"]),
        ([a_file], ["RUN_DIR", "a-file"]),
        ([tmp_path / "empty"], ["no checkpoint"]),
        ([], ["RUN_DIR"]),
        ([out, "--episodes", "0"], ["--episodes", "'0'", ">= 1"]),
        ([out, "--episodes", "-4"], ["--episodes", "'-4'"]),
        ([out, "--episodes", "nan"], ["--episodes", "'nan'"]),
        ([out, "--episodes", "2.5"], ["--episodes", "'2.5'"]),
        ([out, "--seed", "-1"], ["--seed", "'-1'"]),
        ([out, "--fps", "0"], ["--fps", "'0'"]),
        ([out, "--gif", tmp_path / "x.png"], ["--gif", "x.png", ".gif"]),
        ([out, "--gif", tmp_path / "dir.gif"], ["--gif", "directory"]),
        ([out, "--gif", tmp_path / "no" / "x.gif"], ["--gif", "does not exist"]),
        ([out, "--gif", a_file / "x.gif"], ["--gif", "does not exist"]),
        ([out, "--gif", "/proc/jax-reinforce-test.gif"], ["--gif", "cannot be written"]),
        ([out, "--episode", "3"], ["'--episode 3'", "did you mean --episodes?"]),
    ]
    for args, fragments in cases:
        assert_refused(run_main(EVALUATE, args), *fragments, prog="evaluate.py")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "dir.gif", "empty"]


# ------------------------------------------------------------------ integers and negative numbers in every flag (issue 26)


def _integer_flags(parser) -> list[str]:
    """The flags whose type is :func:`jax_reinforce.app.cli.int_flag`'s parser."""
    return [a.option_strings[0] for a in parser._actions if getattr(a.type, "__qualname__", "") == "int_flag.<locals>.parse"]


@pytest.mark.parametrize("text", ["²", "١٢", "1_0", "0x10", "٣"])
def test_every_integer_flag_takes_ascii_digits_and_refuses_the_rest_in_one_line(text, monkeypatch):
    """``'²'.isdigit()`` is true and ``int('²')`` fails; ``int('١٢')`` is 12: each flag says what it allows."""
    from jax_reinforce.app.cli import UsageError, _jax_settings_problem
    from jax_reinforce.harness.devices import _parse_coordinator, select_devices

    for parser, before in ((load_script(TRAIN).build_parser(), []), (load_script(EVALUATE).build_parser(), ["d"])):
        flags = _integer_flags(parser)
        assert len(flags) >= 3, flags
        for flag in flags:
            with pytest.raises(UsageError, match=rf"^{flag} must be an integer .*; got {text!r}$"):
                parser.parse_args([*before, flag, text])
    for field in ("num_envs", "num_seeds", "iterations", "seed", "rollout_steps", "hidden", "value_hidden"):
        with pytest.raises(ValueError, match=rf"^{field} \("):
            Config.from_flags({field: text})
    with pytest.raises(ValueError, match=r"^devices \(--devices\) must be 'all' or an integer in \[1, \d+\]; got "):
        select_devices(text)
    with pytest.raises(ValueError, match=r"^coordinator \(--coordinator\) must be HOST:PORT"):
        _parse_coordinator(f"127.0.0.1:{text}")
    monkeypatch.setenv("XLA_FLAGS", f"--xla_force_host_platform_device_count={text}")
    assert _jax_settings_problem().startswith("XLA_FLAGS's --xla_force_host_platform_device_count=")


def test_a_value_starting_with_a_minus_and_a_number_is_a_value_for_every_flag():
    """``--lr -0,0.1`` was argparse's "expected one argument": now the flag's own check answers."""
    from jax_reinforce.app.cli import UsageError, config_from_args

    parser = load_script(TRAIN).build_parser()
    valued = [f.flag for f in FLAGS if not isinstance(getattr(Config(), f.field), bool)]  # not --stop-when-solved
    for flag in valued + _integer_flags(parser):
        for text in ("-1", "-0,0.1", "-1e-3", "-.5", "-inf"):
            try:
                parser.parse_args([flag, text])
            except UsageError as error:  # the flag's own check of its value: an integer flag's
                assert str(error).startswith(f"{flag} must be an integer"), (flag, text, str(error))
    with pytest.raises(ValueError) as error:
        config_from_args(parser.parse_args(["--lr", "-0,0.1"]))
    assert str(error.value) == "learning_rate (--lr) must be a finite number > 0; got -0.0"
    with pytest.raises(ValueError, match=r"^seed \(--seed\) must be an integer in \[0, 2\*\*32\); got -1$"):
        config_from_args(parser.parse_args(["--seed", "-1"]))


def test_evaluate_names_a_sweeps_best_agent_by_its_setting_and_seed(tmp_path, monkeypatch, capsys):
    """The GIF of a sweep's best agent said "seed 5" for agent 5, setting 2's seed 1 (issue 26, item 20)."""
    import jax_reinforce.harness.checkpoint as checkpoint_module
    import jax_reinforce.harness.evaluation as evaluation_module

    sweep = Config(hidden=(8,), num_seeds=2, learning_rate=(0.01, 0.02, 0.03, 0.04))
    params = [{"w": np.zeros((8, 4, 8), np.float32), "b": np.zeros((8, 8), np.float32)},
              {"w": np.zeros((8, 8, 2), np.float32), "b": np.zeros((8, 2), np.float32)}]
    returns = np.zeros((8, 1))
    returns[5] = 9.0
    monkeypatch.setattr(checkpoint_module, "load_checkpoint", lambda run_dir: (params, sweep))
    monkeypatch.setattr(evaluation_module, "evaluate_policies", lambda *args, **kwargs: {"gymnasium": returns,
                                                                                         "gymnax": returns})
    gif = tmp_path / "best.gif"
    assert load_script(EVALUATE).main([str(tmp_path), "--episodes", "1", "--gif", str(gif)]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gif: ")]
    assert line.startswith(f"gif: {gif} (setting 2 seed 1, one episode, return "), line
