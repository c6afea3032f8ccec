"""``fast_jit``: ``jax.jit`` with options that compile tiny test programs several times faster.

Compiling dominates the run time of the math tests, whose programs are tiny
and run a few times. Skipping LLVM's optimisations and XLA:CPU's fusion
emitters changes results by an ulp at most. Where this jaxlib lacks an
option, the defaults are kept.
"""

import functools

import jax


def fast_compile_options() -> dict:
    options = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(1.0).compile()
    except Exception:  # an unknown option name: an older or newer jaxlib
        return {}
    return options


# Top-level jits only: check_grads nests its function in further transforms.
fast_jit = functools.partial(jax.jit, compiler_options=fast_compile_options())
