"""Bounds before work: checkpoints read within what their config needs, numbers float32/int32 and memory hold.

Issue 14, items 4 (non-finite checkpoints), 5 (bounds) and 6 (bounded
checkpoint loading). Memory cases test the bounded loader and the size
estimates directly, with the memory budget fixed, never by filling the
machine.
"""

import io
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest

import jax_reinforce.core.config as config_module
import jax_reinforce.harness.memory as memory_module
from jax_reinforce import Config, agent_keys, make_env
from jax_reinforce.harness.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, load_checkpoint_arrays
from jax_reinforce.harness.checkpoint import load_train_state, save_checkpoint
from jax_reinforce.core.config import FLOAT32_MAX, FLOAT32_TINY
from jax_reinforce.harness.memory import training_memory_bytes
from scripts_in_process import load_script, run_script_main
from jax_reinforce.harness.evaluation import check_evaluation_size, evaluate_gymnax, evaluate_policies
from jax_reinforce.harness.evaluation import evaluation_memory_bytes
from jax_reinforce.core.training import METRIC_DTYPES, make_init_state

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Config(env="CartPole-v1", hidden=(8,), num_envs=4, num_seeds=2, iterations=3, stop_when_solved=False)
GIB = 2**30
BOMB = 200 * 2**20  # bytes of zeros in a crafted member: deflated, about 200 KB on disk


@pytest.fixture
def budget(monkeypatch):
    """The memory budget fixed at 16 GiB, whatever this machine has."""
    monkeypatch.setattr(memory_module, "memory_budget_bytes", lambda: 16 * GIB)
    return 16 * GIB


def _fresh_state(config=CONFIG):
    """A seed-batched TrainState at iteration 0 (no training: nothing to compile but the init)."""
    return jax.device_get(jax.jit(jax.vmap(make_init_state(config)))(agent_keys(config.seed, config.num_seeds)))


def _empty_history(config=CONFIG):
    return {name: np.zeros((config.num_seeds, 0), dtype) for name, dtype in METRIC_DTYPES.items()}


@pytest.fixture
def run_dir(tmp_path):
    state = _fresh_state()
    save_checkpoint(tmp_path, state.params, CONFIG, state, _empty_history())
    return tmp_path


def _entries(run_dir):
    with np.load(run_dir / CHECKPOINT_NAME) as archive:
        return {name: archive[name] for name in archive.files}


def _npy_header(shape, dtype=np.float32) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _write_with_bomb(run_dir, name, header: bytes, zeros: int):
    """Rewrites the checkpoint with entry ``name`` replaced by ``header`` and ``zeros`` zero bytes, deflated."""
    entries = _entries(run_dir)
    with zipfile.ZipFile(run_dir / CHECKPOINT_NAME, "w", zipfile.ZIP_DEFLATED) as z:
        for entry, value in entries.items():
            if entry != name:
                with z.open(entry + ".npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=False)
        with z.open(name + ".npy", "w") as f:
            f.write(header)
            chunk = bytes(2**20)
            for start in range(0, zeros, len(chunk)):
                f.write(chunk[: min(len(chunk), zeros - start)])


def _set_declared(path, member: str, size: int, crc: int | None = None):
    """Patches the zip directory's uncompressed size (and CRC) of ``member``: a lying archive."""
    data = bytearray(path.read_bytes())
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into("<L", data, at + 24, size)
            if crc is not None:
                struct.pack_into("<L", data, at + 16, crc)
            path.write_bytes(bytes(data))
            return
        at += 4
    raise AssertionError(f"no member {member} in {path}")


def _load_measured(run_dir, monkeypatch, loader=load_checkpoint):
    """Loads, recording the members opened and the peak of Python's and NumPy's allocations."""
    opened = []
    real_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as error:
            loader(run_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return str(error.value), opened, peak


# ---------------------------------------------------------------- A. checkpoint loading is bounded


def test_a_huge_member_is_refused_from_the_zip_directory_without_reading_it(run_dir, monkeypatch):
    # 200 MB of zeros, honestly declared, under a name the config implies: (2, 4, 8) float32, 256 bytes.
    header = _npy_header((BOMB // 4,))
    _write_with_bomb(run_dir, "params/0/w", header, BOMB)
    assert (run_dir / CHECKPOINT_NAME).stat().st_size < 2 * 2**20
    for loader in (load_checkpoint, load_checkpoint_arrays):  # evaluate.py's loader, and --resume's first
        message, opened, peak = _load_measured(run_dir, monkeypatch, loader)
        assert message == (
            f"checkpoint {run_dir / CHECKPOINT_NAME} entry 'params/0/w' declares {len(header) + BOMB} bytes "
            f"uncompressed, more than the {10012 + 256} bytes its config's (2, 4, 8) float32 array and a .npy "
            f"header take; refused unread")
        assert "params/0/w.npy" not in opened  # not a byte of it decompressed
        assert peak < BOMB // 20, peak


def test_a_member_that_decompresses_to_more_than_it_declares_is_refused_while_reading(run_dir, monkeypatch):
    # The directory says 256 bytes of data (and their CRC); the stream holds 200 MB.
    header = _npy_header((2, 4, 8))
    _write_with_bomb(run_dir, "params/0/w", header, BOMB)
    declared = len(header) + 256
    _set_declared(run_dir / CHECKPOINT_NAME, "params/0/w.npy", declared, zlib.crc32(header + bytes(256)))
    message, opened, peak = _load_measured(run_dir, monkeypatch)
    assert message == (f"checkpoint {run_dir / CHECKPOINT_NAME} entry 'params/0/w' decompresses to more than the "
                       f"{declared} bytes it declares")
    assert peak < BOMB // 20, peak


def test_small_entries_and_the_history_are_bounded_before_they_are_read(run_dir, monkeypatch):
    path = run_dir / CHECKPOINT_NAME
    # A config declared at 100 MB is refused unread (the config itself is a few hundred bytes).
    _set_declared(path, "config.npy", 100_000_000)
    message, opened, _ = _load_measured(run_dir, monkeypatch)
    assert "entry 'config' declares 100000000 bytes uncompressed" in message and "refused unread" in message
    assert opened == ["format.npy", "format_version.npy"]
    # A history wider than the iterations run (none here) is refused unread.
    state = _fresh_state()
    save_checkpoint(run_dir, state.params, CONFIG, state, _empty_history())
    _set_declared(path, "history/loss.npy", 10**9)
    message, opened, _ = _load_measured(run_dir, monkeypatch, lambda d: load_train_state(d, state))
    assert "entry 'history/loss' declares 1000000000 bytes" in message
    assert "2 seeds x 0 iterations run" in message and "history/loss.npy" not in opened


def test_an_archive_of_unknown_names_or_compression_is_refused_from_its_directory(run_dir):
    entries = _entries(run_dir)
    with zipfile.ZipFile(run_dir / CHECKPOINT_NAME, "w", zipfile.ZIP_BZIP2) as z:
        for entry, value in entries.items():
            with z.open(entry + ".npy", "w") as f:
                np.lib.format.write_array(f, value, allow_pickle=False)
    with pytest.raises(CheckpointError, match="compression method 12; a checkpoint's entries are stored or deflated"):
        load_checkpoint(run_dir)
    np.savez(run_dir / CHECKPOINT_NAME, **entries, **{"extra/bomb": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"entries a checkpoint does not have: \['extra/bomb'\]; refused unread"):
        load_checkpoint(run_dir)


def test_a_deflated_checkpoint_loads_like_a_stored_one(run_dir):
    before = load_checkpoint(run_dir)[0]
    entries = _entries(run_dir)
    np.savez_compressed(run_dir / CHECKPOINT_NAME, **entries)
    after = load_checkpoint(run_dir)[0]
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(a, b)
        assert a.flags.writeable and b.flags.writeable


# ---------------------------------------------------------------- B. non-finite checkpoints refused


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused_for_evaluation(tmp_path, bad):
    state = _fresh_state()
    params = jax.tree.map(np.array, state.params)
    params[1]["b"][1, 0] = bad
    save_checkpoint(tmp_path, params, CONFIG)  # parameters only: nothing marks a seed diverged
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path)
    assert str(error.value) == (
        f"checkpoint {tmp_path / CHECKPOINT_NAME} holds non-finite values in 'params/1/b' of seeds [1], which it "
        f"does not mark diverged (it has no training state that marks a seed diverged); refused")


def test_non_finite_optimizer_state_is_refused_unless_the_seed_is_marked_diverged(tmp_path):
    state = _fresh_state()
    clip, (adam, *rest) = state.opt_state  # chain(clip_by_global_norm, adam)
    nu = np.array(adam.nu[0]["w"])
    nu[0, 0, 0] = np.inf
    bad_adam = adam._replace(nu=[{**adam.nu[0], "w": nu}, adam.nu[1]])
    bad = state._replace(opt_state=(clip, (bad_adam, *rest)))
    save_checkpoint(tmp_path, bad.params, CONFIG, bad, _empty_history())
    for load in (load_checkpoint, lambda d: load_train_state(d, state)):
        with pytest.raises(CheckpointError, match=(
                r"non-finite values in 'state/opt_state/1/0/nu/0/w' of seeds \[0\], which it does not "
                r"mark diverged \(state/failed_at is -1 for them\); refused")):
            load(tmp_path)
    # Seed 0 marked diverged (at iteration 0, so both have run one): its last state is what it is, and it loads.
    marked = bad._replace(iteration=np.array([1, 1], np.int32), failed_at=np.array([0, -1], np.int32))
    one_row = {name: np.zeros((CONFIG.num_seeds, 1), dtype) for name, dtype in METRIC_DTYPES.items()}
    save_checkpoint(tmp_path, marked.params, CONFIG, marked, one_row)
    load_checkpoint(tmp_path)
    load_train_state(tmp_path, state)


# ---------------------------------------------------------------- C. bounds before work: floats


@pytest.mark.parametrize("field, value, span", [
    ("learning_rate", 1e-50, "in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("learning_rate", 1e-40, "in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("learning_rate", 1e39, "in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("entropy_coef", 1e39, "0 or in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("entropy_coef", 1e-50, "0 or in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("max_grad_norm", 1e39, "in [1.1754944e-38, 3.4028235e+38] (smaller numbers compute as 0, larger as inf)"),
    ("gamma", 1e-45, "0 or in [1.1754944e-38, 1] (smaller numbers compute as 0)"),
])
def test_floats_that_float32_turns_into_0_or_inf_are_refused(field, value, span):
    allowed = config_module.ALLOWED[field]
    flag = config_module.flag_of(field)
    with pytest.raises(ValueError) as error:
        Config.from_flags({field: repr(value)})
    assert str(error.value) == f"{field} ({flag}) must be {allowed} that float32 holds, {span}; got {value!r}"
    with np.errstate(over="ignore"):  # what it would have run with
        assert np.float32(value) in (0, np.inf) or abs(np.float32(value)) < FLOAT32_TINY


def test_the_edges_of_float32_are_accepted():
    Config(learning_rate=FLOAT32_TINY, entropy_coef=FLOAT32_MAX, max_grad_norm=FLOAT32_MAX, gamma=FLOAT32_TINY)
    Config(learning_rate=FLOAT32_MAX, entropy_coef=0.0, gamma=0.0)
    assert np.float32(FLOAT32_TINY) > 0 and np.isfinite(np.float32(FLOAT32_MAX))
    with pytest.raises(ValueError, match="finite number > 0; got 1000"):
        Config(learning_rate=10**400)  # an int beyond every float: a ValueError, not an OverflowError


# ---------------------------------------------------------------- C. bounds before work: int32 and memory


def test_a_network_whose_layer_overflows_int32_is_refused_at_once():
    with pytest.raises(ValueError) as error:
        Config.from_flags({"hidden": "100000,100000", "num_seeds": "1"})
    assert str(error.value) == (
        "hidden (--hidden) must be layer widths whose weight matrices hold at most 2147483647 numbers each "
        "(an int32 array size; with 4 observations and 2 actions here, a 100000 x 100000 layer holds "
        "10000000000); got (100000, 100000)")


def test_environments_times_window_must_fit_int32():
    with pytest.raises(ValueError) as error:
        Config.from_flags({"num_envs": str(2**31 - 1)})
    assert str(error.value) == (
        "num_envs x rollout window (--num-envs x --rollout-steps, default the episode limit) must be at most "
        "2147483647 (one iteration's environment steps are counted in int32); got 2147483647 x 500 = "
        "1073741823500")


def test_a_run_too_big_for_memory_is_refused_saying_what_fits(budget):
    per_seed = training_memory_bytes(Config(num_seeds=1))
    huge = Config.from_flags({"num_seeds": str(10**9)})  # a Config does not depend on the machine
    with pytest.raises(ValueError) as error:
        memory_module.check_training_memory(huge)
    assert str(error.value) == (
        f"training 1000000000 seeds x 32 environments x a 500-step window, hidden (8,) would need about "
        f"{memory_module.format_bytes(10**9 * per_seed)} of memory; this machine has 16 GiB: at most "
        f"{budget // per_seed} seeds of this shape fit (--num-seeds)")
    memory_module.check_training_memory(Config(num_seeds=budget // per_seed))  # what it says fits, fits
    with pytest.raises(ValueError, match=r"would need about [0-9.]+ GiB of memory; this machine has 16 GiB: not even "
                                         r"one seed of this shape fits: use fewer --num-envs"):
        memory_module.check_training_memory(Config(hidden=(30000, 30000), num_seeds=1))


def test_the_memory_estimate_is_the_documented_formula():
    config = Config(env="CartPole-v0", hidden=(16, 8), num_envs=10, num_seeds=3, rollout_steps=20)
    d, a, t, n = 4, 2, 20, 10
    p = (d + 1) * 16 + (16 + 1) * 8 + (8 + 1) * a
    assert training_memory_bytes(config) == 3 * 4 * (8 * p + t * n * (d + 6) + 3 * 20 * n * (16 + 8 + a))
    # Without --rollout-steps the window is the episode limit, 200 for v0.
    assert training_memory_bytes(config.replace(rollout_steps=None)) > training_memory_bytes(config)


def test_cartpole_sizes_known_without_jax_agree_with_the_environment():
    for name in ("CartPole-v0", "CartPole-v1"):
        spec = make_env(name)
        assert config_module._CARTPOLE_SIZES == (spec.obs_dim, spec.n_actions)


@pytest.mark.parametrize("flags, fragment", [
    (["--hidden", "100000,100000", "--num-seeds", "1"], "a 100000 x 100000 layer holds 10000000000"),
    (["--num-envs", str(2**31 - 1)], "counted in int32"),
    (["--num-seeds", str(10**9)], "would need about"),
    (["--lr", "1e-50"], "that float32 holds"),
])
def test_train_py_refuses_them_in_one_line_before_making_the_run_directory(tmp_path, flags, fragment, capfd,
                                                                             monkeypatch):
    out = tmp_path / "run"
    result = run_script_main(load_script(ROOT / "scripts" / "train.py"), [*flags, "--out", out], capfd, monkeypatch)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: ") and fragment in lines[0], lines
    assert not out.exists()


# ---------------------------------------------------------------- C. evaluation: every seed, bounded episodes


@pytest.fixture(scope="module")
def two_policies():
    config = Config(hidden=(2,), num_seeds=2)
    keys = agent_keys(0, 2)
    return jax.device_get(jax.vmap(make_init_state(config))(keys).params), make_env("CartPole-v1")


def test_evaluation_works_for_every_seed_and_keeps_the_keys_of_the_others(two_policies):
    params, spec = two_policies
    top = evaluate_policies(params, spec, 3, seed=2**32 - 1)  # seed + 1 wraps to 0: PRNGKey(0)
    np.testing.assert_array_equal(top["gymnax"], evaluate_gymnax(params, spec, 3, jax.random.PRNGKey(0)))
    assert top["gymnasium"].shape == (2, 3)
    # The seeds below it keep their keys, PRNGKey(seed + 1).
    below = evaluate_policies(params, spec, 3, seed=2**32 - 2)
    np.testing.assert_array_equal(below["gymnax"], evaluate_gymnax(params, spec, 3, jax.random.PRNGKey(2**32 - 1)))
    with pytest.raises(ValueError, match=r"seed \(--seed\) must be an integer in \[0, 2\*\*32\); got 4294967296"):
        evaluate_policies(params, spec, 3, seed=2**32)


def test_a_billion_evaluation_episodes_are_refused_with_a_memory_estimate(budget, two_policies):
    config = Config()
    need = evaluation_memory_bytes(config, 10**9)
    with pytest.raises(ValueError) as error:
        check_evaluation_size(config, 10**9)
    fit = budget // evaluation_memory_bytes(config, 1)
    assert str(error.value) == (
        f"episodes (--episodes) 1000000000 for 4 seeds of up to 500 steps would need about "
        f"{memory_module.format_bytes(need)} of memory to evaluate; this machine has 16 GiB: at most {fit} episodes "
        f"per seed fit")
    check_evaluation_size(config, fit)
    check_evaluation_size(config, 100)
    with pytest.raises(ValueError, match=r"^eval_episodes \(--eval-episodes\) 1000000000 for 4 seeds"):
        check_evaluation_size(config, 10**9, "--eval-episodes")  # train.py's flag
    for bad in (0, 2**31, 1.5):
        with pytest.raises(ValueError, match=r"episodes \(--episodes\) must be an integer in \[1, 2147483647\]"):
            check_evaluation_size(config, bad)
    # The library refuses it too, before any work.
    params, spec = two_policies
    with pytest.raises(ValueError, match=r"episodes \(--episodes\) 1000000000 for 2 seeds"):
        evaluate_policies(params, spec, 10**9, seed=0)


def test_the_memory_bound_counts_another_networks_own_parameters_and_activations():
    from jax_reinforce.core.config import env_sizes
    from jax_reinforce.harness.memory import network_size

    config = Config(env="Breakout-MinAtar", network="cnn", hidden=(64, 64))
    from jax_reinforce import make_init_state

    params = jax.vmap(make_init_state(config))(agent_keys(0, 1)).params
    count = sum(int(np.prod(x.shape[1:])) for x in jax.tree.leaves(params))
    obs_dim, n_actions, _ = env_sizes(config)
    assert network_size(config, obs_dim, n_actions) == (count, 10 * 10 * 16 + 64 + 64)
    mlp = Config(env="Breakout-MinAtar", hidden=(64, 64))
    assert training_memory_bytes(config) > training_memory_bytes(mlp)  # 107k parameters and 1.7k activations


# ---------------------------------------------------------------- D. a sweep's bounds count its agents (issue 26)

SWEEP = Config(hidden=(8,), num_seeds=2, learning_rate=tuple(0.01 * k for k in range(1, 9)))  # 8 settings, 16 agents


def test_a_sweeps_evaluation_bound_counts_its_agents_and_names_the_flag_typed(budget, monkeypatch):
    per_agent = evaluation_memory_bytes(SWEEP, 1) // SWEEP.num_agents
    episodes = budget // (per_agent * SWEEP.num_agents) + 1  # two seeds' worth fits, sixteen agents' does not
    assert 2 * episodes * per_agent <= budget
    for flag, name in (("--episodes", "episodes"), ("--eval-episodes", "eval_episodes")):
        with pytest.raises(ValueError) as error:
            check_evaluation_size(SWEEP, episodes, flag)
        assert str(error.value) == (
            f"{name} ({flag}) {episodes} for 16 agents (8 settings x 2 seeds) of up to 500 steps would need about "
            f"{memory_module.format_bytes(16 * episodes * per_agent)} of memory to evaluate; this machine has 16 GiB: "
            f"at most {episodes - 1} episodes per agent fit")
    check_evaluation_size(SWEEP, episodes - 1)  # what it says fits, fits
    monkeypatch.setattr(memory_module, "memory_budget_bytes", lambda: per_agent * 15)
    with pytest.raises(ValueError, match=r": not even one episode per agent fits; evaluate fewer settings or seeds$"):
        check_evaluation_size(SWEEP, 1)


def test_train_run_refuses_a_sweeps_evaluation_before_any_work(budget, tmp_path):
    from jax_reinforce import train_run

    episodes = budget // evaluation_memory_bytes(SWEEP, 1) + 1
    with pytest.raises(ValueError, match=r"^eval_episodes \(--eval-episodes\) \d+ for 16 agents \(8 settings x 2 "):
        train_run(SWEEP, tmp_path / "run", eval_episodes=episodes)
    assert not (tmp_path / "run").exists()


def test_evaluate_py_refuses_a_sweeps_evaluation_in_one_line(budget, monkeypatch, capsys, tmp_path):
    import jax_reinforce.harness.checkpoint as checkpoint_module

    params = [{"w": np.zeros((16, 4, 8), np.float32), "b": np.zeros((16, 8), np.float32)},
              {"w": np.zeros((16, 8, 2), np.float32), "b": np.zeros((16, 2), np.float32)}]
    monkeypatch.setattr(checkpoint_module, "load_checkpoint", lambda run_dir: (params, SWEEP))
    script = load_script(ROOT / "scripts" / "evaluate.py")
    episodes = budget // evaluation_memory_bytes(SWEEP, 1) + 1
    assert script.main([str(tmp_path), "--episodes", str(episodes)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"evaluate.py: error: episodes (--episodes) {episodes} for 16 agents (8 "
                                        f"settings x 2 seeds)") and err.count("\n") == 1, err


def test_a_grid_of_too_many_settings_is_refused_as_such(budget, monkeypatch):
    grid = Config(learning_rate=tuple(10.0 ** -k for k in range(1, 11)), gamma=tuple(k / 100 for k in range(100)),
                  entropy_coef=tuple(k / 100 for k in range(100)), max_grad_norm=tuple(range(1, 1001)))
    assert grid.num_settings == 10**8
    per_agent = training_memory_bytes(Config(num_seeds=1))
    with pytest.raises(ValueError) as error:
        memory_module.check_training_memory(grid)
    settings = budget // per_agent // grid.num_seeds
    assert str(error.value).endswith(
        f"this machine has 16 GiB: the 100000000 settings (10 values of --lr x 100 values of --gamma x 100 values of "
        f"--entropy-coef x 1000 values of --max-grad-norm) are the problem: at most {settings} settings of 4 seeds "
        f"fit; sweep fewer values"), str(error.value)
    with pytest.raises(ValueError, match=r"are the problem: at most 3 agents fit in all, fewer than --num-seeds 4; "
                                         r"sweep fewer values$"):
        monkeypatch.setattr(memory_module, "memory_budget_bytes", lambda: per_agent * 3)
        memory_module.check_training_memory(grid)


@pytest.mark.parametrize("env_name", ["CartPole-v1", "Acrobot-v1"])
def test_a_sweeps_settings_evaluated_together_in_gymnasium_equal_each_evaluated_alone(env_name, monkeypatch):
    """Several settings share one vector environment (0.17 s per setting alone made 40,000 settings hours), and
    each agent still meets the starts its seed meets in a run of its setting alone: bit for bit. The evaluation
    says as it goes how far it got (a 40,000-setting sweep's printed nothing for 6 minutes: issue 26, item 20)."""
    import jax_reinforce.harness.evaluation as evaluation_module
    from jax_reinforce.harness.evaluation import evaluate_gymnasium

    spec = make_env(env_name)
    rng = np.random.default_rng(1)
    settings, seeds, episodes = (5, 3, 4) if env_name.startswith("CartPole") else (3, 2, 2)
    agents = settings * seeds
    params = [{"w": rng.normal(size=(agents, spec.obs_dim, 4)), "b": rng.normal(size=(agents, 4))},
              {"w": rng.normal(size=(agents, 4, spec.n_actions)), "b": np.zeros((agents, spec.n_actions))}]
    alone = np.concatenate([evaluate_gymnasium([{k: v[g * seeds:(g + 1) * seeds] for k, v in layer.items()}
                                                for layer in params], env_name, episodes, seed=7)
                            for g in range(settings)])
    together = evaluate_gymnasium(params, env_name, episodes, seed=7, period=seeds)
    np.testing.assert_array_equal(together, alone)
    if env_name.startswith("CartPole"):
        monkeypatch.setattr(evaluation_module, "SETTINGS_ENVIRONMENTS", 2 * seeds * episodes)  # 2, 2 and 1 settings
        monkeypatch.setattr(evaluation_module, "PROGRESS_EVERY_S", 0.0)
        params32 = [{k: v.astype(np.float32) for k, v in layer.items()} for layer in params]
        said = []
        results = evaluate_policies(params32, spec, episodes, 7, num_seeds=seeds, progress=said.append)
        assert said[0] == "greedy evaluation of 15 agents (5 settings x 3 seeds) x 4 episodes each, in gymnax, then gymnasium"
        assert [line.split(", about ")[0] for line in said[1:]] == [
            "greedy evaluation in gymnasium: 2/5 settings", "greedy evaluation in gymnasium: 4/5 settings"]
        assert all(line.endswith(" left") for line in said[1:]), said
        np.testing.assert_array_equal(results["gymnasium"], np.concatenate([evaluate_gymnasium(
            [{k: v[g * seeds:(g + 1) * seeds] for k, v in layer.items()} for layer in params32], env_name, episodes,
            seed=7) for g in range(settings)]))
