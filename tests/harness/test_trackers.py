"""The experiment trackers, end to end: TensorBoard event files read back with TensorBoard's own reader,
W&B offline runs read back from their transaction log, resume without duplicated steps, the files cleared,
the missing-extra message, and no tracker library imported unless asked for."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jax_reinforce.harness.trackers import (TRACKER_STATE, TrackerError, Trackers, check_trackers, clear_tracker_files,
                                    open_trackers)

ROOT = Path(__file__).resolve().parents[2]
TRACKER_MODULES = ("tensorboardX", "tensorboard", "wandb")


def row(step: int, setting: int = 0) -> dict:
    """Made-up metrics of one iteration, distinct per step and setting."""
    return {"return_median": 10.0 * step + setting, "return_q25": 5.0 * step, "return_q75": 20.0 * step + 0.5,
            "seeds_solved": step // 2, "loss_median": -0.25 * step, "grad_norm_median": 1.5, "entropy_median": 0.6}


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in ``directory``'s event files as TensorBoard shows it: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def wandb_records(run_dir: Path, timeout_s: float = 30.0) -> list:
    """The records of a finished W&B offline run's ``run-<id>.wandb`` file, once it holds the exit record.

    ``run.finish()`` returns when W&B's service has taken the exit record;
    the service writes the file out a moment later (also after the process
    has ended), so this waits for it.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = _read_records(run_dir)
        except Exception:  # a record half written
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def _read_records(run_dir: Path) -> list:
    """LevelDB's log format: 32 KiB blocks of records with a 7-byte header (crc32, length, type), after
    W&B's 7-byte file header; each record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    [path] = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            pos += block - pos % block
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def wandb_history(run_dir: Path) -> list[dict]:
    """The offline run's history rows, each with its ``_step``, in order (W&B's own keys left out)."""
    rows = []
    for record in wandb_records(run_dir):
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            rows.append({k: v for k, v in items.items() if not k.startswith("_") or k == "_step"})
    return rows


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """W&B with no network: offline, its user-level files in the test's directory, no crash reports."""
    for name, value in {"WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true",
                        "WANDB_CACHE_DIR": tmp_path / "wandb-cache", "WANDB_CONFIG_DIR": tmp_path / "wandb-config",
                        "WANDB_DATA_DIR": tmp_path / "wandb-data"}.items():
        monkeypatch.setenv(name, str(value))
    return {"project": "jax-reinforce-tests", "group": "trackers", "name": "offline", "mode": "offline"}


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def test_importing_and_opening_no_tracker_imports_no_tracker_library(tmp_path):
    code = ("import sys, jax_reinforce.harness.trackers as t\n"
            f"trackers = t.open_trackers({str(tmp_path)!r}, tensorboard=False, wandb=None, config_dict={{}})\n"
            "trackers.log(0, {'x': 1.0}); trackers.flush(); trackers.close()\n"
            f"print([m for m in {TRACKER_MODULES!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert list(tmp_path.iterdir()) == []  # and writes nothing


def test_tensorboard_scalars_read_back_with_tensorboards_reader(tmp_path):
    with open_trackers(tmp_path, tensorboard=True, config_dict={"lr": 0.1, "env": "CartPole-v1"}) as trackers:
        for step in range(4):
            trackers.log(step, {**row(step), "env_steps": 1000 * (step + 1), "env_steps_per_s": 2.5e6})
        trackers.flush()
        trackers.log(4, row(4))  # written by close
    got = scalars(tmp_path / "tensorboard")
    assert set(got) == {*row(0), "env_steps", "env_steps_per_s"}
    assert got["return_median"] == [(s, 10.0 * s) for s in range(5)]
    assert got["seeds_solved"] == [(s, float(s // 2)) for s in range(5)]
    assert got["loss_median"] == [(s, pytest.approx(-0.25 * s)) for s in range(5)]
    assert got["env_steps"] == [(s, 1000.0 * (s + 1)) for s in range(4)]
    assert json.loads((tmp_path / TRACKER_STATE).read_text()) == {"last_step": {"tensorboard": 4}}


def test_tensorboard_sweep_writes_every_setting_in_one_file_under_its_own_names(tmp_path):
    trackers = open_trackers(tmp_path, tensorboard=True, settings=["lr=0.1", "lr=0.3", "lr=1"])
    for setting in range(3):  # setting-major, as metrics.csv is: the steps are still written in order
        for step in range(3):
            trackers.log(step, row(step, setting), setting=setting)
    for step in range(3):
        trackers.log(step, {"env_steps_per_s": 1e6 * (step + 1)})
    trackers.close()
    assert len(list((tmp_path / "tensorboard").iterdir())) == 1
    got = scalars(tmp_path / "tensorboard")
    assert set(got) == {"env_steps_per_s", *(f"setting_{g}/{name}" for g in range(3) for name in row(0))}
    assert got["env_steps_per_s"] == [(s, 1e6 * (s + 1)) for s in range(3)]
    for setting in range(3):
        assert got[f"setting_{setting}/return_median"] == [(s, 10.0 * s + setting) for s in range(3)]


def test_tensorboard_checksums_are_tfrecords_own():
    import numpy as np
    from tensorboardX.record_writer import masked_crc32c as reference

    from jax_reinforce.harness.trackers import crc32c_tables, masked_crc32c

    tables, data = crc32c_tables(8), np.random.default_rng(0).integers(0, 256, 100, np.uint8).tobytes()
    for n in (0, 1, 3, 4, 7, 8, 9, 16, 17, 100):
        assert masked_crc32c(tables, data[:n]) == reference(data[:n])


def test_tensorboard_resume_writes_no_step_twice_and_drops_a_killed_process_orphans(tmp_path):
    trackers = open_trackers(tmp_path, tensorboard=True, settings=["a", "b"])
    for step in range(6):
        for setting in range(2):
            trackers.log(step, row(step, setting), setting=setting)
        trackers.log(step, {"env_steps_per_s": 1.0})
    trackers.close()
    # A process killed after writing steps 4 and 5 but before recording them: the state says 3.
    state = json.loads((tmp_path / TRACKER_STATE).read_text())
    (tmp_path / TRACKER_STATE).write_text(json.dumps({**state, "last_step": {"tensorboard": 3}}))
    with pytest.raises(TrackerError, match="already holds tracker files"):
        open_trackers(tmp_path, tensorboard=True)
    resumed = open_trackers(tmp_path, tensorboard=True, settings=["a", "b"], resume=True)
    for step in range(9):  # the whole restored history again, then new steps; resumed values marked + 0.5
        for setting in range(2):
            resumed.log(step, {**row(step, setting), "return_median": 10.0 * step + setting + 0.5}, setting=setting)
        resumed.log(step, {"env_steps_per_s": 2.0})
    resumed.close()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    got = scalars(tmp_path / "tensorboard")
    assert got["env_steps_per_s"] == [(s, 1.0 if s <= 3 else 2.0) for s in range(9)]
    for setting in range(2):
        assert got[f"setting_{setting}/return_median"] == [(s, 10.0 * s + setting + (0.5 if s > 3 else 0.0))
                                                           for s in range(9)]
    assert json.loads((tmp_path / TRACKER_STATE).read_text())["last_step"] == {"tensorboard": 8}


def test_tensorboard_steps_recorded_by_a_flush_are_in_the_file_when_the_process_dies_right_after(tmp_path):
    # Issue 26.4: the flush recorded last_step while the events still sat in tensorboardX's queue.
    code = ("import os\nfrom jax_reinforce.harness.trackers import open_trackers\n"
            f"trackers = open_trackers({str(tmp_path)!r}, tensorboard=True)\n"
            "for step in range(20):\n"
            "    trackers.log(step, {'return_median': 10.0 * step, 'loss_median': -1.0})\n"
            "trackers.flush()\n"
            "os._exit(0)\n")  # killed right after the flush: no close, no exit hook
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    assert json.loads((tmp_path / TRACKER_STATE).read_text())["last_step"] == {"tensorboard": 19}
    assert scalars(tmp_path / "tensorboard")["return_median"] == [(s, 10.0 * s) for s in range(20)]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc/self/fd (Linux)")
def test_tensorboard_open_files_and_threads_do_not_grow_with_the_settings(tmp_path):
    # Issue 26.14: one event writer, a file and a thread, per setting ran out of files in large sweeps.
    def held(num_settings: int) -> tuple[int, int]:
        """The open files and threads the trackers of ``num_settings`` settings hold after their flushes."""
        before = len(os.listdir("/proc/self/fd")), threading.active_count()
        trackers = open_trackers(tmp_path / str(num_settings), tensorboard=True,
                                 settings=[f"lr={g}" for g in range(num_settings)])
        for step in range(2):
            for setting in range(num_settings):
                trackers.log(step, row(step, setting), setting=setting)
            trackers.flush()
        during = len(os.listdir("/proc/self/fd")), threading.active_count()
        trackers.close()
        return during[0] - before[0], during[1] - before[1]

    for n in (1, 300):
        (tmp_path / str(n)).mkdir()
    (files_one, threads_one), (files_many, threads_many) = held(1), held(300)
    assert files_many <= files_one + 2 and threads_many <= threads_one + 2  # before: about 900 files and 600 threads more
    assert scalars(tmp_path / "300" / "tensorboard")["setting_299/return_median"] == [(0, 299.0), (1, 309.0)]


def test_wandb_offline_run_files_history_and_config(tmp_path, wandb_offline):
    trackers = open_trackers(tmp_path, wandb=wandb_offline, config_dict={"lr": 0.1, "num_seeds": 4},
                             settings=["lr=0.1", "lr=0.3"])
    for setting in range(2):
        for step in range(3):
            trackers.log(step, row(step, setting), setting=setting)
    for step in range(3):
        trackers.log(step, {"env_steps": 100 * step})
    [line] = trackers.describe()
    trackers.close()
    run_id = json.loads((tmp_path / TRACKER_STATE).read_text())["wandb_run_id"]
    assert trackers.wandb_run_id == run_id and run_id in line and "wandb sync" in line
    [run] = offline_runs(tmp_path)
    assert f"-{run_id}" in run.name and (run / f"run-{run_id}.wandb").is_file()
    history = wandb_history(run)
    assert [h["_step"] for h in history] == [0, 1, 2]
    assert history[2]["setting_1/return_median"] == 21.0 and history[2]["setting_0/seeds_solved"] == 1
    assert history[1]["env_steps"] == 100 and set(history[0]) == {
        "_step", "env_steps", *(f"setting_{g}/{name}" for g in range(2) for name in row(0))}
    records = wandb_records(run)
    [start] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (start.run_id, start.project, start.run_group, start.display_name) == (
        run_id, "jax-reinforce-tests", "trackers", "offline")
    config = {item.key: json.loads(item.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for item in r.config.update}
    assert config["lr"] == 0.1 and config["settings"] == {"setting_0": "lr=0.1", "setting_1": "lr=0.3"}
    summary = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for r in records
               if r.WhichOneof("record_type") == "summary" for item in r.summary.update}
    assert summary["setting_0/return_median"] == 20.0
    [exit_record] = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 0


def test_wandb_resume_continues_the_same_run_id_without_duplicated_steps(tmp_path, wandb_offline):
    first = open_trackers(tmp_path, wandb=wandb_offline, tensorboard=True)
    for step in range(3):
        first.log(step, row(step))
    first.close()
    run_id = first.wandb_run_id
    with pytest.raises(RuntimeError):  # an exception inside marks the resumed run failed
        with open_trackers(tmp_path, wandb=wandb_offline, tensorboard=True, resume=True) as resumed:
            assert resumed.wandb_run_id == run_id
            for step in range(5):  # steps 0-2 again (the restored history), then 3 and 4
                resumed.log(step, row(step))
            resumed.flush()
            raise RuntimeError("training failed")
    again = open_trackers(tmp_path, wandb=wandb_offline, resume=True)
    for step in range(6):
        again.log(step, row(step))
    again.close()
    runs = offline_runs(tmp_path)
    assert len(runs) == 3 and all(f"-{run_id}" in run.name for run in runs)  # -1 after one of the same second
    assert {r.run.run_id for run in runs for r in wandb_records(run) if r.WhichOneof("record_type") == "run"} == {
        run_id}
    assert [[h["_step"] for h in wandb_history(run)] for run in runs] == [[0, 1, 2], [3, 4], [5]]
    exits = [[r.exit.exit_code for r in wandb_records(run) if r.WhichOneof("record_type") == "exit"] for run in runs]
    assert exits == [[0], [1], [0]]
    assert scalars(tmp_path / "tensorboard")["return_median"] == [(s, 10.0 * s) for s in range(5)]
    assert json.loads((tmp_path / TRACKER_STATE).read_text()) == {
        "last_step": {"tensorboard": 4, "wandb": 5}, "wandb_run_id": run_id}


def test_wandb_steps_of_a_process_killed_after_a_flush_are_sent_again_on_resume(tmp_path, wandb_offline):
    # Issue 26 (trackers lose nothing): after a kill, W&B's offline file held only its header, yet
    # trackers.json recorded the steps, so a resume never sent them again.
    code = ("import os\nfrom jax_reinforce.harness.trackers import open_trackers\n"
            f"trackers = open_trackers({str(tmp_path)!r}, wandb={wandb_offline!r})\n"
            "for step in range(3):\n"
            "    trackers.log(step, {'return_median': float(step)})\n"
            "trackers.flush()\n"
            "os._exit(0)\n")  # killed right after the flush: no finish
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # its own W&B service, as a new process has
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    assert "wandb" not in json.loads((tmp_path / TRACKER_STATE).read_text())["last_step"]
    with open_trackers(tmp_path, wandb=wandb_offline, resume=True) as resumed:
        for step in range(5):
            resumed.log(step, {"return_median": float(step)})
    killed, finished = offline_runs(tmp_path)
    steps = [r.history.step.num for r in _read_records(killed) if r.WhichOneof("record_type") == "history"]
    assert sorted({*steps, *(h["_step"] for h in wandb_history(finished))}) == [0, 1, 2, 3, 4]
    assert json.loads((tmp_path / TRACKER_STATE).read_text())["last_step"] == {"wandb": 4}


def test_a_tracker_first_opened_on_resume_receives_the_whole_history(tmp_path, wandb_offline):
    with open_trackers(tmp_path, tensorboard=True) as trackers:
        for step in range(3):
            trackers.log(step, row(step))
    with open_trackers(tmp_path, tensorboard=True, wandb=wandb_offline, resume=True) as trackers:
        for step in range(4):
            trackers.log(step, row(step))
    [run] = offline_runs(tmp_path)
    assert [h["_step"] for h in wandb_history(run)] == [0, 1, 2, 3]
    assert [s for s, _ in scalars(tmp_path / "tensorboard")["return_median"]] == [0, 1, 2, 3]


def test_clear_tracker_files_removes_only_the_trackers(tmp_path, wandb_offline):
    with open_trackers(tmp_path, tensorboard=True, wandb=wandb_offline) as trackers:
        trackers.log(0, row(0))
    (tmp_path / "metrics.csv").write_text("iteration\n0\n")
    (tmp_path / f".{TRACKER_STATE}.abc123.tmp").write_text("{")  # a killed write's leftover
    removed = clear_tracker_files(tmp_path)
    assert {p.name for p in removed} == {"tensorboard", "wandb", TRACKER_STATE, f".{TRACKER_STATE}.abc123.tmp"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
    assert clear_tracker_files(tmp_path) == []
    with open_trackers(tmp_path, tensorboard=True) as trackers:  # a new run may start there now
        trackers.log(0, row(0))


@pytest.mark.parametrize("tracker, module, flag", [("tensorboard", "tensorboardX", "--tensorboard"),
                                                   ("wandb", "wandb", "--wandb")])
def test_a_missing_extra_is_one_line_naming_the_pip_install(tmp_path, monkeypatch, tracker, module, flag):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    asked = {"tensorboard": tracker == "tensorboard", "wandb": {"mode": "offline"} if tracker == "wandb" else None}
    for call in (lambda: check_trackers(tensorboard=tracker == "tensorboard", wandb=tracker == "wandb"),
                 lambda: open_trackers(tmp_path, **asked)):
        with pytest.raises(TrackerError) as raised:
            call()
        message = str(raised.value)
        assert isinstance(raised.value, ValueError) and "\n" not in message
        assert message.startswith(f"{flag} needs the {tracker} extra") and f'pip install -e ".[{tracker}]"' in message
    assert list(tmp_path.iterdir()) == []


def test_no_tracker_or_another_process_gets_an_empty_trackers(tmp_path):
    for trackers in (Trackers(), open_trackers(tmp_path, tensorboard=True, wandb={"mode": "offline"},
                                               main_process=False)):
        assert not trackers and trackers.names == () and trackers.describe() == []
        trackers.log(0, {"x": 1.0})
        trackers.close()
    assert list(tmp_path.iterdir()) == []


def test_log_refuses_bad_steps_settings_and_values(tmp_path):
    import numpy as np

    trackers = open_trackers(tmp_path, tensorboard=True, settings=["a", "b"])
    for step, values, setting in [(-1, {"x": 1.0}, None), (1.5, {"x": 1.0}, None), (True, {"x": 1.0}, None),
                                  (0, {"x": 1.0}, 2), (0, {"x": 1.0}, -1), (0, {"x": "high"}, None),
                                  (0, {"": 1.0}, None), (0, {"x": [1.0]}, None)]:
        with pytest.raises(ValueError):
            trackers.log(step, values, setting)
    trackers.log(0, {"x": np.float32(0.5), "n": np.int64(3), "skipped": None}, setting=np.int64(1).item())
    trackers.close()
    with pytest.raises(RuntimeError):
        trackers.log(1, {"x": 1.0})
    assert scalars(tmp_path / "tensorboard") == {"setting_1/x": [(0, 0.5)], "setting_1/n": [(0, 3.0)]}
    with pytest.raises(ValueError, match="setting must be None"):  # a single run's trackers take no setting
        Trackers(tmp_path, backends=[object()], num_settings=None).log(0, {"x": 1.0}, setting=0)


def test_a_tracker_state_changed_by_hand_is_one_line_on_resume(tmp_path):
    for text in ("{", "[]", '{"last_step": {"tensorboard": "3"}}', '{"last_step": {}, "wandb_run_id": 7}'):
        (tmp_path / TRACKER_STATE).write_text(text)
        with pytest.raises(TrackerError, match="changed by hand") as raised:
            open_trackers(tmp_path, tensorboard=True, resume=True)
        assert "\n" not in str(raised.value)
