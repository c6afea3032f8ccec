"""A run directory changes atomically (issue 26): what a resume reads is committed in one rename.

A crash is simulated in-process, at a chosen moment, by an exception nothing catches (as after ``kill -9``,
nothing of the run runs after it); the resume then must continue the run as it was, not with defaults.
"""

import json

import numpy as np
import pytest

import jax_reinforce as jr
import jax_reinforce.app.run as run_module
from jax_reinforce.harness.checkpoint import CHECKPOINT_NAME

QUIET = {"compile_cache": False, "log": lambda line: None}
CONFIG = jr.Config(hidden=(8,), num_envs=8, num_seeds=2, iterations=4, stop_when_solved=False)


class Crash(Exception):
    """The process dies here."""


def test_a_crash_between_the_checkpoint_and_run_json_resumes_with_the_runs_own_flags(tmp_path, monkeypatch):
    """Issue 26, item 2: run.json missing, the resume took the defaults (100 evaluation episodes, no checkpoints)."""
    out = tmp_path / "run"
    write_json = run_module.write_json

    def dies_writing_run_json(path, obj):
        if path.name == "run.json":
            raise Crash
        write_json(path, obj)

    monkeypatch.setattr(run_module, "write_json", dies_writing_run_json)
    with pytest.raises(Crash):
        jr.train_run(CONFIG, out, eval_episodes=2, checkpoint_every=3, **QUIET)
    monkeypatch.undo()
    assert (out / CHECKPOINT_NAME).is_file() and not (out / "run.json").exists()
    result = jr.train_run(None, out, resume=True, **QUIET)
    assert result.status == "finished" and result.summary["evaluation_episodes"] == 2
    assert json.loads((out / "run.json").read_text())["checkpoint_every"] == 3


def _drop_run_flags(out):
    """The checkpoint as an older version wrote it: no ``run`` entry."""
    with np.load(out / CHECKPOINT_NAME) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "run"}
    with open(out / CHECKPOINT_NAME, "wb") as f:
        np.savez(f, **arrays)


def test_a_crash_after_a_resume_grew_the_iterations_keeps_them(tmp_path):
    """The resumed run's config (iterations grown) is committed with the state before it trains on."""
    out = tmp_path / "run"
    jr.train_run(CONFIG, out, eval_episodes=0, **QUIET)

    def dies_after_a_chunk(report):
        raise Crash

    with pytest.raises(Crash):
        jr.train_run(CONFIG.replace(iterations=6), out, resume=True, typed_fields={"iterations"},
                     progress=dies_after_a_chunk, **QUIET)
    result = jr.train_run(None, out, resume=True, **QUIET)
    assert result.config.iterations == 6 and result.summary["iterations_run"] == 6
    # A checkpoint of an older version, without the run's flags, and no run.json: refused, not guessed.
    _drop_run_flags(out)
    (out / "run.json").unlink()
    with pytest.raises(jr.RunError) as error:
        jr.train_run(None, out, resume=True, **QUIET)
    assert str(error.value) == (f"--resume: {str(out)!r} holds a checkpoint of an older version, without the run's "
                                f"own flags, and no run.json, which then holds them (killed between the two writes?): "
                                f"its devices and evaluation size are unknown; start a new run")


@pytest.mark.parametrize("out", [b"x", 3, ["x"]], ids=["bytes", "int", "list"])
def test_an_out_that_is_not_a_path_is_a_run_error(out, tmp_path, monkeypatch):
    """Issue 26, item 20: train_run(out=b"x") raised TypeError."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(jr.RunError, match=r"^--out must be a directory path, a str or a path; got "):
        jr.train_run(CONFIG, out, **QUIET)
    assert list(tmp_path.iterdir()) == []
