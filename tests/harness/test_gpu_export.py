"""Every program the trainer compiles also lowers for CUDA, here on the CPU, with ``jax.export``.

The programs: the plain idiom's ``jax.jit(jax.vmap(make_train(config)))``, and
the ones the runner and the evaluation hand to ``lower_program`` and ``compile_program`` (captured
as they are handed over: the initialisation, the chunk with its greedy
confirmation, the gymnax evaluation), for a discrete environment and a
``Box`` one. Each exports for ``platforms=["cuda"]`` (a primitive with no
CUDA lowering raises here), calls no CPU-only library (LAPACK, DUCC's FFT:
``stablehlo.custom_call`` targets), and has no effects (no host callback
inside the training loop). Nothing runs on a GPU: CUDA's numerics and speed
are not checked (``docs/tests.md``).
"""

import re

import jax
import numpy as np
import pytest

import jax_reinforce.harness.evaluation as evaluation
import jax_reinforce.harness.runner as runner_module
from jax_reinforce import Config, agent_keys
from jax_reinforce.core.training import make_train
from jax_reinforce.harness.runner import Runner

ENVS = ["CartPole-v1", "Pendulum-v1"]  # a Discrete and a Box action space
# Libraries JAX calls on the CPU only: LAPACK (linalg), DUCC (FFT), and the CPU's own kernels and callbacks.
CPU_ONLY = ("lapack_", "ducc_", "cpu_", "xla_ffi_python_cpu_callback", "xla_python_cpu_callback")
# What JAX's CUDA lowerings call: cuSOLVER, cuBLAS, cuSPARSE, cuFFT, JAX's own CUDA kernels, sharding markers.
CUDA_OK = ("cu", "Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape", "annotate_device_placement")


def tiny(env: str) -> Config:
    return Config(env=env, hidden=(8,), num_envs=4, num_seeds=2, iterations=2, seed=0)


def custom_calls(exported) -> set:
    """The ``stablehlo.custom_call`` targets in ``exported``'s module."""
    return set(re.findall(r"stablehlo\.custom_call @([\w.$-]+)", exported.mlir_module()))


def cuda_problems(exported) -> list:
    """What keeps ``exported`` from running on CUDA as it is: ``[]`` when nothing does."""
    calls = sorted(custom_calls(exported))
    return ([f"exported for {exported.platforms}"] * (exported.platforms != ("cuda",))
            + [f"calls CPU-only {c}" for c in calls if c.startswith(CPU_ONLY)]
            + [f"calls {c}, unknown on CUDA" for c in calls if not c.startswith(CPU_ONLY + CUDA_OK)]
            + [f"has effects {e}" for e in (*exported.ordered_effects, *exported.unordered_effects)])


def export_for_cuda(fn, *args):
    return jax.export.export(jax.jit(fn), platforms=["cuda"])(*args)


def test_the_check_finds_cpu_only_calls():
    """The check can fail: LAPACK's LU for the CPU is caught, cuSOLVER's for CUDA passes."""
    inverse, eye = jax.numpy.linalg.inv, np.eye(3, dtype=np.float32)
    on_cpu = jax.export.export(jax.jit(inverse), platforms=["cpu"])(eye)
    assert "calls CPU-only lapack_sgetrf_ffi" in cuda_problems(on_cpu), cuda_problems(on_cpu)
    on_cuda = export_for_cuda(inverse, eye)
    assert any(c.startswith("cusolver_") for c in custom_calls(on_cuda)) and cuda_problems(on_cuda) == []


@pytest.mark.parametrize("env", ENVS)
def test_the_plain_idiom_exports_for_cuda(env):
    config = tiny(env)
    exported = export_for_cuda(jax.vmap(make_train(config)), agent_keys(config.seed, config.num_seeds))
    assert cuda_problems(exported) == []
    assert exported.in_avals[0].shape == (2, 2)


@pytest.mark.parametrize("env", ENVS)
def test_the_runner_and_the_evaluation_export_for_cuda(env, monkeypatch):
    """The programs the runner and the evaluation compile, captured and exported for CUDA instead."""
    handed = {}

    class Lowered(jax.stages.Lowered):  # what init and state_shapes use: shapes only, nothing compiles
        def __init__(self, out):
            self._out = out

        @property
        def out_info(self):
            return self._out

        def compile(self):
            return lambda *args: jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), self._out)

    def capture(name, description, fn, arg_specs, device=None, compiler_options=None):
        handed[name] = (fn, arg_specs)
        return Lowered(jax.eval_shape(fn, *arg_specs))

    monkeypatch.setattr(runner_module, "lower_program", capture)
    monkeypatch.setattr(evaluation, "compile_program", lambda *a, **k: capture(*a, **k).compile())
    runner = Runner(tiny(env), None, 2)
    runner.init()
    runner.compile()
    evaluation.gymnax_evaluation_program(runner.state.params, runner_module.env_spec_of(runner.config), 2)
    assert {"init", "train_chunk", "evaluate_gymnax"} <= set(handed), sorted(handed)
    for name, (fn, arg_specs) in handed.items():
        assert cuda_problems(export_for_cuda(fn, *arg_specs)) == [], name
