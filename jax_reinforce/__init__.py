"""jax-reinforce: the softmax derivative proven, and REINFORCE on CartPole in one jit.

The public names are re-exported here and loaded on first use (no module
shares a name with a function it exports: Python binds a submodule to the
package attribute of its name when it is imported, which would hide the
function; ``tests/test_package.py`` checks this), so that
``import jax_reinforce.numpy_reference`` never imports JAX and the command-line
scripts import only what they run.

Modules, one idea each:

- ``softmax_math``: softmax, log-softmax, the Jacobian, the VJP, the log-softmax
  gradient, and a ``custom_vjp`` softmax running the hand-derived rule.
- ``policy``: the MLP policy as pure functions of a params pytree.
- ``loss``: the REINFORCE loss and its gradient derived by hand.
- ``config``: the typed, validated run configuration.
- ``env_defaults``: each environment's defaults, chosen by measurement, and the search that chooses them.
- ``envs``: gymnax environments by name (CartPole loaded alone, fast).
- ``rollouts``: one episode in each of many environments, in a while loop.
- ``returns``: reward-to-go respecting episode ends, masks, baselines.
- ``training``: the whole REINFORCE loop in one jit; ``make_train``.
- ``checkpoint``: pickle-free ``.npz`` checkpoints, atomic writes.
- ``evaluation``: greedy evaluation in gymnax and in gymnasium.
- ``compilation``: XLA options for the CPU, one CPU device per core, the compilation caches.
- ``program_cache``: traced programs on disk as ``jax.export`` artefacts, so a repeated run skips tracing too.
- ``runner``: many agents in chunks over the devices, finished ones moved out of the batch.
- ``run``: a whole run in a run directory (checkpoints, resume, evaluation): ``train_run``.
- ``sweep``: hyper-parameter sweeps x seeds in one program, per-setting results: ``train_sweep``.
- ``trackers``: opt-in TensorBoard and Weights & Biases logging (imported only when asked).
- ``gaussian``: the Gaussian policy's log-probability, score function and REINFORCE gradient by hand.
- ``value``: a learned state-value baseline ``V(s)`` and its squared-error gradient by hand.
- ``batching``: loops that stop together under ``vmap``.
- ``distributed``: joining a multi-process job, choosing devices, sharing decisions.
- ``cli``: the scripts' one-line errors (exit code 2).
- ``reporting``: metrics CSV, learning curve, JSON for the run directory.
- ``numpy_reference``: the seed program corrected, in plain NumPy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "softmax_math": [
        "softmax",
        "log_softmax",
        "softmax_jacobian",
        "softmax_vjp",
        "log_softmax_grad",
        "softmax_analytic",
    ],
    "policy": [
        "init_policy",
        "policy_logits",
        "sample_actions",
        "actions_from_uniform",
        "greedy_actions",
        "log_prob",
    ],
    "loss": [
        "reinforce_loss",
        "reinforce_objective",
        "reinforce_grad_manual",
        "reinforce_value_and_grad_manual",
        "policy_entropy",
    ],
    "gaussian": [
        "init_gaussian_policy",
        "initial_log_std",
        "gaussian_log_prob",
        "gaussian_log_prob_grad",
        "gaussian_entropy",
        "gaussian_entropy_grad",
        "gaussian_actions_from_noise",
        "sample_gaussian_actions",
        "gaussian_policy_mean",
        "gaussian_reinforce_objective",
        "gaussian_reinforce_value_and_grad_manual",
    ],
    "value": ["init_value", "value_predictions", "value_loss", "value_loss_and_grad_manual"],
    "config": ["Config"],
    "env_defaults": ["ENV_DEFAULTS", "defaults_for", "search_defaults"],
    "envs": ["EnvSpec", "make_env", "encode_obs", "store_obs"],
    "returns": ["reward_to_go", "reward_to_go_rows", "complete_episode_mask", "apply_baseline"],
    "rollouts": ["Trajectory", "rollout", "GreedyEpisodes", "greedy_episodes"],
    "training": [
        "TrainState",
        "make_train",
        "make_init_state",
        "make_run_iterations",
        "make_optimizer",
        "agent_keys",
    ],
    "checkpoint": ["save_checkpoint", "load_checkpoint", "CheckpointError"],
    "evaluation": ["evaluate_gymnax", "evaluate_gymnasium"],
    "compilation": ["compiler_options", "enable_compile_cache", "use_cpu_cores"],
    "runner": ["Runner"],
    "run": ["train_run", "RunResult", "RunError"],
    "sweep": ["train_sweep", "SweepResult"],
    "trackers": ["open_trackers", "Trackers", "TrackerError", "check_trackers", "clear_tracker_files"],
    "distributed": [
        "select_devices",
        "initialize_distributed",
        "gather_to_host",
    ],
}

_NAME_TO_MODULE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name):
    module = _NAME_TO_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'jax_reinforce' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jax_reinforce.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
