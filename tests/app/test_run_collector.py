"""train_run pauses Python's cyclic garbage collector while it sets a run up, and leaves it as it found it."""

import gc

import jax.numpy as jnp
import pytest

import jax_reinforce as jr


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_while_a_run_is_set_up_then_as_it_was(tmp_path, enabled):
    seen = {"tracing": [], "training": []}

    def steps(state, traj):  # traced while the chunk program is lowered, in the set-up
        seen["tracing"].append(gc.isenabled())
        return {"steps": jnp.sum(traj.length)}

    (gc.enable if enabled else gc.disable)()
    try:
        result = jr.train_run(jr.Config(num_seeds=1, num_envs=2, iterations=2), tmp_path / "run", eval_episodes=0,
                              chunk_iterations=1, compile_cache=False, log=lambda line: None, metrics_fn=steps,
                              progress=lambda report: seen["training"].append(gc.isenabled()))
        after = gc.isenabled()
    finally:
        gc.enable()
    assert result.status == "finished", result.message
    assert seen["tracing"] and not any(seen["tracing"])
    assert seen["training"] == [enabled, enabled]  # after each chunk
    assert after is enabled
