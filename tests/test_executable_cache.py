"""The on-disk cache of compiled programs: stores, loads the same program, survives damage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_reinforce import executable_cache
from jax_reinforce.executable_cache import cache_key, load_or_compile


@pytest.fixture
def cache(tmp_path):
    executable_cache.enable_executable_cache(tmp_path)
    yield tmp_path
    executable_cache.disable_executable_cache()


def _program(scale):
    return jax.jit(lambda x: {"y": jnp.sin(x) * scale, "n": x.shape[0]})


def test_a_stored_program_is_loaded_without_lowering_and_computes_the_same(cache):
    x = jnp.linspace(0.0, 1.0, 7)
    lowered = []

    def lower():
        lowered.append(1)
        return _program(3.0).lower(x)

    first = load_or_compile("demo", ("scale", 3.0), lower)
    entries = list(cache.glob("demo-*.jaxexec"))
    assert len(entries) == 1 and lowered == [1]
    second = load_or_compile("demo", ("scale", 3.0), lower)
    assert lowered == [1], "the second call must load the stored program, not lower it"
    np.testing.assert_array_equal(first(x)["y"], second(x)["y"])
    np.testing.assert_allclose(second(x)["y"], np.sin(np.asarray(x)) * 3.0, rtol=1e-6)
    assert int(second(x)["n"]) == 7


def test_a_different_description_is_a_different_entry(cache):
    x = jnp.ones(3)
    a = load_or_compile("demo", ("scale", 2.0), lambda: _program(2.0).lower(x))
    b = load_or_compile("demo", ("scale", 5.0), lambda: _program(5.0).lower(x))
    assert len(list(cache.glob("demo-*.jaxexec"))) == 2
    assert float(a(x)["y"][0]) != float(b(x)["y"][0])
    assert cache_key("demo", 1) != cache_key("demo", 2) and cache_key("demo", 1) == cache_key("demo", 1)


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_damaged_entry_is_compiled_again_and_replaced(cache, damage):
    x = jnp.ones(4)
    load_or_compile("demo", "d", lambda: _program(1.5).lower(x))
    (entry,) = cache.glob("demo-*.jaxexec")
    entry.write_bytes(damage)
    again = load_or_compile("demo", "d", lambda: _program(1.5).lower(x))
    np.testing.assert_allclose(again(x)["y"], np.sin(1.0) * 1.5, rtol=1e-6)
    assert entry.stat().st_size > 1000, "the damaged entry was not replaced"


def test_off_by_default_compiles_and_writes_nothing(tmp_path):
    executable_cache.disable_executable_cache()
    x = jnp.ones(2)
    program = load_or_compile("demo", "off", lambda: _program(1.0).lower(x))
    np.testing.assert_allclose(program(x)["y"], np.sin(1.0), rtol=1e-6)
    assert executable_cache.executable_cache_dir() is None
    assert not list(tmp_path.iterdir())


_INIT_AGENTS = r'''
import sys
import numpy as np
from jax_reinforce import Config, agent_keys, enable_compile_cache, make_env
from jax_reinforce.runner import SeedRunner

enable_compile_cache(sys.argv[1])
config = Config(num_seeds=2, num_envs=4)
if sys.argv[2] == "plain-first":  # the same program compiled by plain jit: into JAX's persistent cache
    import jax
    from jax_reinforce import compiler_options
    from jax_reinforce.training import make_init_state
    jax.jit(jax.vmap(make_init_state(config)), compiler_options=compiler_options()).lower(
        agent_keys(config.seed, config.num_seeds)).compile()
runner = SeedRunner(config, make_env(config.env), 2)
state = runner.init(agent_keys(config.seed, config.num_seeds))
print(float(np.abs(state.params[0]["w"]).sum()) if isinstance(state.params, list) else "ok")
'''


def test_a_program_in_jax_persistent_cache_but_not_here_is_stored_runnable(tmp_path):
    # jaxlib 0.10 on the CPU serialises an executable loaded from JAX's persistent cache without
    # its helper functions; load_or_compile must store a freshly compiled one instead.
    import os
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    def run(mode=""):
        out = subprocess.run([sys.executable, "-c", _INIT_AGENTS, str(tmp_path), mode], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    first = run("plain-first")  # JAX's cache holds the program: used, not stored here
    assert list((tmp_path / "xla").iterdir())
    assert not list((tmp_path / "executables").glob("init-*")), "a program from JAX's cache was stored"
    assert run() == first
    shutil.rmtree(tmp_path / "xla")  # compiled afresh: stored here, and kept out of JAX's cache
    assert run() == first
    assert list((tmp_path / "executables").glob("init-*"))
    assert run() == first  # loaded from the entry just stored, and run
