"""The on-disk cache of exported programs: a hit skips tracing, computes bit for bit the same, holds no pickle.

Anything that changes the compiled program is a miss; the values passed at run time are not; a damaged entry
is a miss; a directory other users can write is refused.
"""

import ast
import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_reinforce
from jax_reinforce.harness import compilation as program_cache
from jax_reinforce.harness.compilation import cache_key, compile_program, lower_program
from _fast_jit import fast_compile_options

OPTIONS = fast_compile_options()
X = jax.ShapeDtypeStruct((7,), jnp.float32)


class Scaled(NamedTuple):
    y: jax.Array
    total: jax.Array


@pytest.fixture
def cache(tmp_path):
    directory = tmp_path / "programs"
    assert program_cache.enable_program_cache(directory) == str(directory)
    yield directory
    program_cache.disable_program_cache()


def _counting(scale):
    """``fn(x) -> Scaled`` and the list its calls are appended to."""
    calls = []

    def fn(x):
        calls.append(1)
        return Scaled(y=jnp.sin(x) * scale, total=jnp.sum(x))

    return fn, calls


def _fresh(fn):
    """A new function object calling ``fn``: JAX's in-memory trace cache (keyed by the function) cannot answer for it."""
    return lambda *args: fn(*args)


def _equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return (jax.tree.structure(a) == jax.tree.structure(b)
            and all(np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
                    for x, y in zip(la, lb)))


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jaxexport"))


def test_a_hit_skips_tracing_and_computes_bitwise_what_the_miss_did(cache):
    fn, calls = _counting(2.0)
    x = np.linspace(0.0, 1.0, 7, dtype=np.float32)
    first = compile_program("demo", ("scale", 2.0), _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 1 and len(_entries(cache)) == 1
    second = compile_program("demo", ("scale", 2.0), _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 1, "the hit traced the Python function again"
    assert isinstance(second, jax.stages.Compiled)
    out = second(x)  # host NumPy arguments are accepted
    assert isinstance(out, Scaled)
    assert _equal(first(x), out)
    assert _equal(out, jax.jit(fn, compiler_options=OPTIONS)(x))
    np.testing.assert_allclose(out.y, np.sin(x) * 2.0, rtol=1e-6)


@pytest.mark.parametrize("cached", [True, False])
def test_lower_program_gives_the_result_shapes_uncompiled_and_compiles_to_the_same_program(tmp_path, cached):
    """``lower_program`` is ``compile_program`` less its last step: the result's shapes without compiling; a hit
    traces nothing; ``.compile()`` computes bitwise what ``compile_program`` does, with the cache on or off."""
    if cached:
        program_cache.enable_program_cache(tmp_path / "programs")
    try:
        fn, calls = _counting(3.0)
        x = np.linspace(-1.0, 1.0, 7, dtype=np.float32)
        lowered = lower_program("demo", ("scale", 3.0), _fresh(fn), (X,), compiler_options=OPTIONS)
        assert isinstance(lowered, jax.stages.Lowered) and len(calls) == 1
        assert lowered.out_info == Scaled(y=jax.ShapeDtypeStruct((7,), jnp.float32),
                                          total=jax.ShapeDtypeStruct((), jnp.float32))
        again = lower_program("demo", ("scale", 3.0), _fresh(fn), (X,), compiler_options=OPTIONS)
        assert len(calls) == (1 if cached else 2), "a hit must trace nothing; with the cache off every call traces"
        compiled = compile_program("demo", ("scale", 3.0), _fresh(fn), (X,), compiler_options=OPTIONS)
        assert _equal(lowered.compile()(x), compiled(x)) and _equal(again.compile()(x), compiled(x))
        assert _equal(compiled(x), jax.jit(fn, compiler_options=OPTIONS)(x))
    finally:
        program_cache.disable_program_cache()


def test_a_tiny_train_chunk_hit_is_bitwise_the_plain_jit_program(tmp_path):
    """TrainState and optax's NamedTuples in and out, and ``batch_any``'s ``custom_vmap`` under ``vmap``."""
    from jax_reinforce.core.training import make_init_state, make_run_iterations

    config = jax_reinforce.Config(num_envs=4, num_seeds=2, iterations=2)
    state = jax.device_get(jax.jit(jax.vmap(make_init_state(config)))(jax_reinforce.agent_keys(0, 2)))
    specs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    run = jax.vmap(make_run_iterations(config), in_axes=(0, None))
    calls = []

    def chunk(s):
        calls.append(1)
        return run(s, 2)

    description = (config.to_dict(), 2)
    plain = compile_program("chunk", description, _fresh(chunk), (specs,), compiler_options=OPTIONS)(state)
    assert len(calls) == 1
    program_cache.enable_program_cache(tmp_path)
    try:
        miss = compile_program("chunk", description, _fresh(chunk), (specs,), compiler_options=OPTIONS)(state)
        hit = compile_program("chunk", description, _fresh(chunk), (specs,), compiler_options=OPTIONS)(state)
    finally:
        program_cache.disable_program_cache()
    assert len(calls) == 2, "the hit traced the chunk again"
    assert type(hit[0]) is type(state) and int(hit[0].iteration[0]) == 2
    assert _equal(plain, miss) and _equal(miss, hit)


def test_xla_flags_are_part_of_the_key_and_a_change_is_a_miss(cache, monkeypatch):
    fn, calls = _counting(3.0)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    before = cache_key("demo", "d")
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert cache_key("demo", "d") != before
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2 and len(_entries(cache)) == 2
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2, "the same flags again must be a hit"


def test_description_jax_config_and_options_are_part_of_the_key(cache):
    key = cache_key("demo", ("scale", 1.0))
    assert key.startswith("demo-") and len(key) == len("demo-") + 32
    assert cache_key("demo", ("scale", 1.0)) == key
    assert cache_key("demo", ("scale", 2.0)) != key
    assert cache_key("other", ("scale", 1.0)) != key
    with jax.numpy_rank_promotion("raise"):
        assert cache_key("demo", ("scale", 1.0)) != key
    with jax.default_matmul_precision("highest"):
        assert cache_key("demo", ("scale", 1.0)) != key
    assert cache_key("demo", ("scale", 1.0)) == key

    fn, calls = _counting(1.0)
    compile_program("demo", ("scale", 1.0), _fresh(fn), (X,), compiler_options=OPTIONS)
    compile_program("demo", ("scale", 1.5), _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2 and len(_entries(cache)) == 2
    compile_program("demo", ("scale", 1.5), _fresh(fn), (X,), compiler_options=None)  # other options: another entry
    compile_program("demo", ("scale", 1.5), _fresh(fn), (jax.ShapeDtypeStruct((3,), jnp.float32),), compiler_options=None)
    assert len(calls) == 4 and len(_entries(cache)) == 4


def _flip(data: bytes) -> bytes:
    """``data`` with the byte at its middle inverted: it still parses, but is not the program written."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "flipped", "types", "types_truncated",
                                    "types_list", "types_other_digest"])
def test_a_damaged_entry_is_exported_again_and_replaced(cache, damage):
    fn, calls = _counting(1.5)
    x = np.ones(7, np.float32)
    expected = compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)(x)
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    index = entry.with_name(entry.name.replace(".jaxexport", ".types.json"))
    if damage.startswith("types"):
        text = index.read_text()
        index.write_text({"types": "{not json", "types_truncated": text[: len(text) // 2],
                          "types_list": json.dumps(json.loads(text)["types"]),  # the old format: no digest
                          "types_other_digest": json.dumps({**json.loads(text), "sha256": "0" * 64})}[damage])
    else:
        entry.write_bytes({"empty": b"", "garbage": b"\x80\x05not a program" * 9, "truncated": good[:200],
                           "flipped": _flip(good)}[damage])
    again = compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2, "the damaged entry must be exported again"
    assert _equal(again(x), expected)
    replaced = jax.export.deserialize(bytearray(entry.read_bytes()))  # raises if the damage were still there
    assert replaced.in_avals == jax.export.deserialize(bytearray(good)).in_avals
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2, "the replaced entry must be a hit"


def test_the_cache_holds_only_jax_export_artefacts_and_json_and_the_module_no_pickle(cache):
    fn, _ = _counting(1.0)
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    files = sorted(p.name for p in cache.iterdir())
    (entry,) = _entries(cache)
    stem = entry.name[: -len(".jaxexport")]
    assert files == [f"{stem}.jaxexport", f"{stem}.types.json"]
    exported = jax.export.deserialize(bytearray(entry.read_bytes()))
    assert exported.platforms == (jax.default_backend(),) and exported.in_avals[0].shape == (7,)
    assert json.loads((cache / f"{stem}.types.json").read_text()) == {
        "key": stem, "sha256": hashlib.sha256(entry.read_bytes()).hexdigest(), "types": [f"{__name__}:Scaled"]}

    tree = ast.parse(Path(program_cache.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    forbidden = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "serialize_executable",
                 "jax.experimental.serialize_executable"}
    assert not imported & forbidden, imported & forbidden


def test_off_compiles_and_writes_nothing(tmp_path):
    program_cache.disable_program_cache()
    assert program_cache.program_cache_dir() is None
    fn, calls = _counting(1.0)
    x = np.ones(7, np.float32)
    first = compile_program("demo", "off", _fresh(fn), (X,), compiler_options=OPTIONS)
    second = compile_program("demo", "off", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2
    assert _equal(first(x), second(x))
    np.testing.assert_allclose(first(x).y, np.sin(1.0), rtol=1e-6)
    assert not list(tmp_path.iterdir())


@dataclasses.dataclass
class _Unregistered:
    a: jax.Array


jax.tree_util.register_dataclass(_Unregistered, data_fields=["a"], meta_fields=[])


def test_a_pytree_jax_export_cannot_serialize_is_compiled_but_not_stored(cache):
    calls = []

    def fn(x):
        calls.append(1)
        return _Unregistered(a=x + 1)

    x = np.zeros(7, np.float32)
    for _ in range(2):
        out = compile_program("demo", "dataclass", _fresh(fn), (X,), compiler_options=OPTIONS)(x)
        np.testing.assert_array_equal(out.a, x + 1)
    assert len(calls) == 2 and not _entries(cache)


_FRESH_PROCESS = textwrap.dedent('''
    import sys
    from typing import NamedTuple
    import jax, jax.numpy as jnp, numpy as np
    from jax_reinforce.harness import compilation as program_cache

    class Out(NamedTuple):  # a result type that is not among the arguments
        doubled: jax.Array

    calls = []

    def fn(x):
        calls.append(1)
        return Out(doubled=x * 2)

    program_cache.enable_program_cache(sys.argv[1])
    program = program_cache.compile_program("fresh", "d", fn, (jax.ShapeDtypeStruct((3,), jnp.int32),))
    out = program(np.arange(3, dtype=np.int32))
    assert type(out) is Out and out.doubled.tolist() == [0, 2, 4], out
    print("traced" if calls else "loaded")
''')


def test_a_fresh_process_loads_the_program_with_its_result_types(tmp_path):
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH_PROCESS)
    runs = [subprocess.run([sys.executable, str(script), str(tmp_path / "programs")], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[2], timeout=120) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert [run.stdout.strip() for run in runs] == ["traced", "loaded"]


# --- Each setting that changes the compiled program is a miss; the values passed at run time are not. ---

@contextlib.contextmanager
def _jax_config(name, value):
    before = getattr(jax.config, name)
    jax.config.update(name, value)
    try:
        yield
    finally:
        jax.config.update(name, before)


def _changed(setting, monkeypatch):
    """``(context, description, compiler_options, arg_spec)`` with ``setting`` changed from the baseline."""
    nothing = contextlib.nullcontext()
    if setting == "XLA_FLAGS":
        monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
        return nothing, "d", OPTIONS, X
    if setting in ("jax_threefry_partitionable", "jax_enable_x64", "jax_softmax_custom_jvp"):
        return _jax_config(setting, not getattr(jax.config, setting)), "d", OPTIONS, X
    if setting == "jax_default_prng_impl":
        return _jax_config(setting, "rbg"), "d", OPTIONS, X
    if setting == "jax_default_matmul_precision":
        return _jax_config(setting, "highest"), "d", OPTIONS, X
    if setting == "compiler options":
        return nothing, "d", {**OPTIONS, "xla_cpu_enable_fast_math": True}, X
    if setting == "description":  # the config's static parts, as the caller describes them
        return nothing, ("config", {"hidden": (16,)}), OPTIONS, X
    assert setting == "argument shapes"
    return nothing, "d", OPTIONS, jax.ShapeDtypeStruct((8,), jnp.float32)


@pytest.mark.parametrize("setting", ["XLA_FLAGS", "jax_threefry_partitionable", "jax_default_prng_impl",
                                     "jax_enable_x64", "jax_default_matmul_precision", "jax_softmax_custom_jvp",
                                     "compiler options", "description", "argument shapes"])
def test_each_setting_that_changes_the_program_is_a_miss(cache, monkeypatch, setting):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    fn, calls = _counting(2.0)
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 1
    with monkeypatch.context() as patch:
        context, description, options, spec = _changed(setting, patch)
        with context:
            compile_program("demo", description, _fresh(fn), (spec,), compiler_options=options)
    assert len(calls) == 2, f"{setting} changed, yet the program compiled for the old setting was used"
    assert len(_entries(cache)) == 2
    compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)
    assert len(calls) == 2, "back to the first setting: its entry must be a hit"


def test_a_program_cached_under_each_threefry_setting_draws_that_settings_numbers(cache):
    """The issue's case: a program traced with ``jax_threefry_partitionable`` flipped must not serve the default."""
    def draw(key):
        return jax.random.uniform(key, (3, 5))

    key = np.asarray(jax.random.key_data(jax.random.PRNGKey(7)))
    spec = jax.ShapeDtypeStruct(key.shape, key.dtype)
    flipped = not jax.config.jax_threefry_partitionable
    with _jax_config("jax_threefry_partitionable", flipped):
        other = np.asarray(compile_program("draw", "d", _fresh(draw), (spec,), compiler_options=OPTIONS)(key))
        assert np.array_equal(other, jax.jit(draw)(key))
    cached = np.asarray(compile_program("draw", "d", _fresh(draw), (spec,), compiler_options=OPTIONS)(key))
    assert np.array_equal(cached, jax.jit(draw)(key)) and not np.array_equal(cached, other)
    assert len(_entries(cache)) == 2


def test_values_passed_at_run_time_are_not_part_of_the_key(cache):
    """A sweep's hyper-parameter passed as an argument reuses the one program."""
    calls = []

    def fn(x, learning_rate):
        calls.append(1)
        return x * learning_rate

    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    x = np.arange(7, dtype=np.float32)
    for rate in (0.1, 0.5, 2.0):
        program = compile_program("sweep", "d", _fresh(fn), (X, scalar), compiler_options=OPTIONS)
        np.testing.assert_allclose(program(x, np.float32(rate)), x * np.float32(rate))
    assert len(calls) == 1 and len(_entries(cache)) == 1


# --- A cache directory other users can write is refused. ---

def test_a_group_or_world_writable_cache_directory_is_refused(tmp_path):
    for mode in (0o770, 0o702, 0o777):
        directory = tmp_path / f"mode-{mode:o}"
        directory.mkdir()
        directory.chmod(mode)
        with pytest.raises(program_cache.CacheDirError, match=rf"^cache directory {directory} is writable by other "
                                                              rf"users \(mode {mode:o}; chmod go-w {directory}\)$"):
            program_cache.enable_program_cache(directory)
        assert program_cache.program_cache_dir() is None


def test_a_cache_directory_under_a_parent_others_can_write_is_refused_but_a_sticky_one_is_fine(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(program_cache.CacheDirError, match=rf"'s parent {shared} is writable by other users"):
        program_cache.check_cache_dir(shared / "mine")
    shared.chmod(0o1777)  # like /tmp: others cannot rename what is ours
    made = program_cache.check_cache_dir(shared / "mine" / "programs")
    assert made == str(shared / "mine" / "programs")
    for directory in (shared / "mine", shared / "mine" / "programs"):
        assert directory.stat().st_mode & 0o777 == 0o700, "the directories made must be private whatever the umask"


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a directory away needs root")
def test_a_cache_directory_owned_by_another_user_is_refused(tmp_path):
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    os.chown(directory, 12345, -1)
    with pytest.raises(program_cache.CacheDirError, match="is owned by another user"):
        program_cache.enable_program_cache(directory)


def test_enable_xla_cache_keeps_every_program_checked_and_reads_it_back(tmp_path):
    """JAX's compilation cache alone: the entry of even a tiny program is written with its digest, and a second
    compilation of the same program reads it back (JAX's own counter of cache hits says so)."""
    from jax._src import monitoring

    hits = []
    monitoring.register_event_listener(lambda event, **kw: hits.append(event)
                                       if event == "/jax/compilation_cache/cache_hits" else None)
    program_cache.enable_xla_cache(str(tmp_path))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path)

    def program():
        return jax.jit(lambda x: jnp.tanh(x) * 3.25 + 0.5)  # a new function each time: no in-memory hit

    x = np.arange(5.0, dtype=np.float32)  # a host array: no program of its own
    first = program()(x)
    entries = list(tmp_path.glob("*-cache"))
    assert len(entries) == 1 and hits == []
    data = entries[0].read_bytes()
    key = entries[0].name[: -len("-cache")]
    assert hashlib.sha256(key.encode() + b"\0" + data[:-32]).digest() == data[-32:]  # CheckedEntries' format
    np.testing.assert_array_equal(program()(x), first)
    assert hits == ["/jax/compilation_cache/cache_hits"]


def test_enable_compile_cache_falls_back_to_no_cache_with_one_line_when_refused(tmp_path):
    from jax_reinforce.harness.compilation import enable_compile_cache

    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o775)
    jax_dir = jax.config.jax_compilation_cache_dir
    said = []
    assert enable_compile_cache(str(directory), warn=said.append) is None
    assert said == [f"compiled programs are not cached: cache directory {directory} is writable by other users "
                    f"(mode 775; chmod go-w {directory})"]
    assert program_cache.program_cache_dir() is None and jax.config.jax_compilation_cache_dir == jax_dir
    with pytest.warns(RuntimeWarning, match="compiled programs are not cached"):
        assert enable_compile_cache(str(directory)) is None
    (tmp_path / "file").write_text("")
    said.clear()
    assert enable_compile_cache(str(tmp_path / "file" / "cache"), warn=said.append) is None
    assert len(said) == 1 and "cannot be used" in said[0], said


_JAX_CACHE_PROCESS = textwrap.dedent('''
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax_reinforce.harness import compilation as program_cache
    from jax_reinforce.harness.compilation import enable_compile_cache

    assert enable_compile_cache(sys.argv[1]) == sys.argv[1]
    calls = []

    def fn(x):
        calls.append(1)
        return jnp.cumsum(jnp.sin(x) * 3.0)

    program = program_cache.compile_program("demo", "d", fn, (jax.ShapeDtypeStruct((5,), jnp.float32),))
    print("traced" if calls else "loaded", program(np.arange(5, dtype=np.float32)).tolist())
''')


def _run_cached(script, cache_dir, *args):
    """Runs ``script`` with this checkout's package (not an installed one): ``(first word, the rest), stderr``."""
    result = subprocess.run([sys.executable, str(script), str(cache_dir), *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split(" ", 1), result.stderr


ROOT = Path(__file__).resolve().parents[2]


def test_corrupted_entries_of_both_caches_are_a_silent_miss_rewritten_in_a_fresh_process(tmp_path):
    """JAX's persistent cache (``xla/``) and the exported programs (``programs/``) damaged: the same results, no
    warning, and each entry written again (issue 26, item 12: JAX left a truncated entry and warned every run)."""
    script = tmp_path / "run.py"
    script.write_text(_JAX_CACHE_PROCESS)
    cache_dir = tmp_path / "cache"
    (first, values), _ = _run_cached(script, cache_dir)
    assert first == "traced"
    (second, again), _ = _run_cached(script, cache_dir)
    assert (second, again) == ("loaded", values)
    xla_entries = sorted((cache_dir / "xla").glob("*-cache"))
    assert xla_entries, "JAX's persistent cache wrote nothing"
    for number, entry in enumerate(xla_entries):
        data = entry.read_bytes()
        entry.write_bytes([b"garbage" * 20, data[: len(data) // 2], _flip(data), b""][number % 4])
    (damaged, after), stderr = _run_cached(script, cache_dir)
    assert (damaged, after) == ("loaded", values)
    assert "Error reading persistent compilation cache entry" not in stderr and "Warning" not in stderr, stderr
    checked = program_cache.CheckedEntries(cache_dir / "xla")
    assert all(checked.get(entry.name[: -len("-cache")]) for entry in xla_entries)  # each written again, whole
    for entry in _entries(cache_dir / "programs"):
        entry.write_bytes(_flip(entry.read_bytes()))
    (retraced, last), _ = _run_cached(script, cache_dir)
    assert (retraced, last) == ("traced", values)


_TWO_PROGRAMS = textwrap.dedent('''
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax_reinforce.harness.compilation import compile_program, disable_program_cache, enable_compile_cache

    assert enable_compile_cache(sys.argv[1]) == sys.argv[1]
    disable_program_cache()  # JAX's cache alone
    spec = (jax.ShapeDtypeStruct((3,), jnp.float32),)


    def two(x):
        return x + 1, x * 2


    def three(x):
        return x - 1, x * 3, x.sum()


    x = np.ones(3, np.float32)
    print("ran", [np.asarray(a).tolist() for a in (*compile_program("two", None, two, spec)(x),
                                                   *compile_program("three", None, three, spec)(x))])
''')


def test_another_programs_entry_under_a_programs_key_in_jaxs_cache_is_a_miss_rewritten(tmp_path):
    """A valid entry of another program copied under a program's key: JAX raised ``AssertionError: (2, 3)`` on
    every run (issue 26, item 11); now it is a miss, compiled and written again, without a warning."""
    script = tmp_path / "run.py"
    script.write_text(_TWO_PROGRAMS)
    cache_dir = tmp_path / "cache"
    (_, values), _ = _run_cached(script, cache_dir)
    (two,) = (cache_dir / "xla").glob("jit_two-*-cache")
    (three,) = (cache_dir / "xla").glob("jit_three-*-cache")
    three.write_bytes(two.read_bytes())
    (_, again), stderr = _run_cached(script, cache_dir)
    assert again == values and "Traceback" not in stderr and "Warning" not in stderr, stderr
    assert program_cache.CheckedEntries(cache_dir / "xla").get(three.name[: -len("-cache")])  # written again, whole


def test_a_full_disk_leaves_no_entry_and_no_error_in_jaxs_cache(tmp_path, monkeypatch):
    """JAX wrote its entries in place, so a full disk left a truncated one; here an entry is written whole or not
    at all, and one that cannot be written is simply missing."""
    import errno

    entries = program_cache.CheckedEntries(tmp_path)
    entries.put("k", b"value")
    assert entries.get("k") == b"value" and entries.get("other") is None

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(program_cache, "atomic_write_bytes", full)
    entries.put("new", b"value")
    assert entries.get("new") is None and sorted(p.name for p in tmp_path.iterdir()) == ["k-cache"]
    (tmp_path / "k-cache").write_bytes((tmp_path / "k-cache").read_bytes()[:-1])  # truncated by hand
    assert entries.get("k") is None and not (tmp_path / "k-cache").exists()


def test_another_programs_entry_copied_under_a_programs_key_is_exported_again(cache):
    """The program cache's own entries name their key: one copied from another program is never loaded."""
    x = np.ones(7, np.float32)
    first, first_calls = _counting(1.5)
    second, second_calls = _counting(2.5)
    compile_program("demo", "one", _fresh(first), (X,), compiler_options=OPTIONS)
    expected = compile_program("demo", "two", _fresh(second), (X,), compiler_options=OPTIONS)(x)
    one, two = (cache_key("demo", (d, program_cache._describe_specs((X,)), sorted(OPTIONS.items()),
                                   jax.devices()[0].platform, jax.devices()[0].device_kind)) for d in ("one", "two"))
    for suffix in (".jaxexport", ".types.json"):
        (cache / (two + suffix)).write_bytes((cache / (one + suffix)).read_bytes())
    again = compile_program("demo", "two", _fresh(second), (X,), compiler_options=OPTIONS)
    assert len(second_calls) == 2 and _equal(again(x), expected)
    assert json.loads((cache / (two + ".types.json")).read_text())["key"] == two


def test_the_key_digests_the_users_own_code(tmp_path, monkeypatch, cache):
    """Your environment's, network's and metrics' source is part of a program's key; code without a source
    (typed into a REPL) is not digested, and such a program is compiled but not cached."""
    import importlib

    from jax_reinforce.harness.compilation import code_digest

    module = tmp_path / "users_own_code.py"
    module.write_text("def step(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    own = importlib.import_module("users_own_code")
    before = code_digest(own.step)
    module.write_text("def step(x):\n    return x + 2\n")
    importlib.reload(own)
    assert code_digest(own.step) not in (before, None)
    assert code_digest(jax.numpy.add, compile_program) == code_digest()  # versioned or in the package digest
    typed = {}
    exec("def step(x):\n    return x\n", typed)
    assert code_digest(typed["step"]) is None
    calls = []
    program = compile_program("uncached", None, lambda x: calls.append(1) or x * 2,
                              (jax.ShapeDtypeStruct((3,), jnp.float32),))
    assert list(program(jnp.ones(3))) == [2.0, 2.0, 2.0] and calls == [1]
    assert not list(cache.iterdir())  # compiled, nothing stored


_LAPACK_PROCESS = textwrap.dedent('''
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax_reinforce.harness import compilation
    compilation.enable_program_cache(sys.argv[1])
    spec = (jax.ShapeDtypeStruct((2, 2), jnp.float32),)
    plain = compilation.compile_program("plain", "d", lambda x: x @ x + 1.0, spec)
    print(plain(np.eye(2, dtype=np.float32)).tolist(), "scipy" in sys.modules)
    solve = compilation.compile_program("solve", "d", jnp.linalg.inv, spec)
    print(solve(2 * np.eye(2, dtype=np.float32)).tolist(), "scipy" in sys.modules)
''')


def test_a_cached_program_without_lapack_loads_without_scipy_and_one_with_lapack_still_runs(tmp_path):
    """Lowering an exported CPU program makes JAX set up LAPACK (importing SciPy) unless the program calls none."""
    runs = [subprocess.run([sys.executable, "-c", _LAPACK_PROCESS, str(tmp_path / "programs")], capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parents[2], timeout=120) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    # The second process loads both artefacts: the first without SciPy, the second (LAPACK's inverse) with it.
    assert runs[1].stdout.split("\n")[:2] == ["[[2.0, 1.0], [1.0, 2.0]] False", "[[0.5, 0.0], [0.0, 0.5]] True"]
