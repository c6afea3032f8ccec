"""How a run prepares its programs: the state's shapes without compiling, the chunk lowered apart from its compile.

``train.py`` reads the state's shapes from the lowered initialisation, lowers the chunk program in the main
thread and compiles it in another (``jax_reinforce.app.run._train``). These tests check that the pieces it
uses compute what a plain ``Runner.init`` and ``Runner.compile`` do.
"""

import jax
import numpy as np

from jax_reinforce import Config, make_env
from jax_reinforce.harness.runner import Runner

CONFIG = Config(env="CartPole-v1", hidden=(8,), num_envs=4, num_seeds=2, iterations=4, seed=3)


def _runner():
    return Runner(CONFIG, make_env(CONFIG.env), 2, devices=jax.local_devices()[:1], threads=1)


def _trained(runner):
    while runner.running().any():
        runner.run_chunk()
    return jax.tree.leaves(runner.state)


def test_state_shapes_lowers_the_initialisation_without_compiling_it_and_are_inits_shapes():
    runner = _runner()
    shapes = runner.state_shapes()
    (program,) = runner._init_programs.values()
    assert isinstance(program, jax.stages.Lowered), "state_shapes must not compile the initialisation"
    state = runner.init()
    assert isinstance(runner._init_programs["init"], jax.stages.Compiled)
    assert jax.tree.structure(shapes) == jax.tree.structure(state)
    for spec, leaf in zip(jax.tree.leaves(shapes), jax.tree.leaves(state)):
        assert (spec.shape, spec.dtype) == (np.shape(leaf), np.asarray(leaf).dtype)


def test_a_chunk_lowered_before_init_and_compiled_apart_trains_bitwise_like_compile():
    apart = _runner()
    lowered = apart.lower()  # before init, as train.py does: the shapes come from state_shapes
    assert lowered and all(isinstance(p, jax.stages.Lowered) for p in lowered.values())
    apart.init()  # as in train.py, the state may exist before the lowered programs are compiled
    compiled = apart.compile(None, lowered)
    assert set(compiled) == set(lowered)
    size = jax.tree.leaves(next(iter(lowered.values())).args_info)[0].shape[0]
    assert apart.compile(size) is compiled, "stored under the lowered programs' own batch size"
    assert apart.lower() == {}, "a slot with a compiled program is not lowered again"
    plain = _runner()
    plain.init()
    plain.compile()
    for a, b in zip(_trained(apart), _trained(plain)):
        np.testing.assert_array_equal(a, b)
