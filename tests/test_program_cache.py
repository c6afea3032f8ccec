"""The on-disk cache of exported programs: a hit skips tracing, computes bit for bit the same, holds no pickle."""

import ast
import dataclasses
import json
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
from jax_reinforce import program_cache
from jax_reinforce.program_cache import cache_key, compile_program
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


def test_a_tiny_train_chunk_hit_is_bitwise_the_plain_jit_program(tmp_path):
    """TrainState and optax's NamedTuples in and out, and ``batch_any``'s ``custom_vmap`` under ``vmap``."""
    from jax_reinforce.training import make_init_state, make_run_iterations

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


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "types"])
def test_a_damaged_entry_is_exported_again_and_replaced(cache, damage):
    fn, calls = _counting(1.5)
    x = np.ones(7, np.float32)
    expected = compile_program("demo", "d", _fresh(fn), (X,), compiler_options=OPTIONS)(x)
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    if damage == "types":
        entry.with_name(entry.name.replace(".jaxexport", ".types.json")).write_text("{not json")
    else:
        entry.write_bytes({"empty": b"", "garbage": b"\x80\x05not a program" * 9, "truncated": good[:200]}[damage])
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
    assert json.loads((cache / f"{stem}.types.json").read_text()) == [f"{__name__}:Scaled"]

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
    from jax_reinforce import program_cache

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
                           cwd=Path(__file__).resolve().parent.parent, timeout=120) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert [run.stdout.strip() for run in runs] == ["traced", "loaded"]
