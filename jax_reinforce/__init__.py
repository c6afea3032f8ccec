"""jax-reinforce: the softmax derivative proven, and REINFORCE in one jit, vmapped over environments and seeds.

The public names are re-exported here and loaded on first use (no module shares a name with a function it
exports; ``tests/test_package.py`` checks this), so that ``import jax_reinforce.numpy_reference`` never imports
JAX and the scripts import only what they run.

The package is three layers, each importing only the layers below it (``tests/test_layers.py``):

- ``core``, the algorithm and its contract: ``softmax_math`` (softmax, its Jacobian, VJP and log-softmax
  gradient by hand), ``network`` (the MLP's forward and backward pass), ``policy`` (the softmax policy),
  ``gaussian`` (the Gaussian policy), ``value`` (the learned baseline ``V(s)``), ``loss`` (the REINFORCE loss
  and its gradient by hand), ``returns``, ``rollouts``, ``batching`` (loops that stop together under ``vmap``),
  ``envs`` (``make_env``: any gymnax-API environment and its physics), ``policies`` (``Policy``: networks as
  inputs, the built-in MLP and CNN), ``config`` (``Config``, each field's flag beside it), ``env_defaults``
  (the per-environment table) and ``training`` (``make_train``: the whole loop in one jit).
- ``harness``, the machinery: ``files`` (atomic writes), ``memory`` (budgets), ``compilation`` (compiler
  options, CPU devices, the program cache), ``devices`` (devices and processes), ``runner`` (many agents in
  chunks over the devices), ``checkpoint``, ``acting`` (``load_policy``), ``evaluation``, ``render``, ``trackers``, ``reporting``.
- ``app``, the entry points: ``run`` (``train_run``), ``sweep`` (``train_sweep``), ``search``
  (``search_defaults``), ``cli`` (the scripts' flags, one-line errors and signals).

``numpy_reference`` (the seed program corrected, in plain NumPy) stands apart: it imports nothing of the package.
"""

from __future__ import annotations

import importlib

# Each public name and the module that defines it (``module.__all__`` lists it too; tests/test_package.py).
_EXPORTS = {
    "core.softmax_math": "softmax log_softmax softmax_jacobian softmax_vjp log_softmax_grad softmax_analytic".split(),
    "core.network": "init_policy policy_logits mlp_forward mlp_backward".split(),
    "core.policies": "Policy mlp_policy cnn_policy".split(),
    "core.policy": "sample_actions actions_from_uniform greedy_actions log_prob".split(),
    "core.loss": (
        "reinforce_loss reinforce_objective reinforce_grad_manual reinforce_value_and_grad_manual policy_entropy"
    ).split(),
    "core.gaussian": (
        "init_gaussian_policy initial_log_std gaussian_log_prob gaussian_log_prob_grad gaussian_entropy "
        "gaussian_entropy_grad gaussian_actions_from_noise sample_gaussian_actions gaussian_policy_mean "
        "gaussian_reinforce_objective gaussian_reinforce_value_and_grad_manual"
    ).split(),
    "core.value": "init_value value_predictions value_loss value_loss_and_grad_manual".split(),
    "core.config": "Config".split(),
    "core.env_defaults": "ENV_DEFAULTS defaults_for".split(),
    "app.search": "search_defaults".split(),
    "core.envs": "EnvSpec make_env encode_obs store_obs".split(),
    "core.returns": "reward_to_go reward_to_go_rows complete_episode_mask apply_baseline".split(),
    "core.rollouts": "Trajectory rollout GreedyEpisodes greedy_episodes".split(),
    "core.training": "TrainState make_train make_init_state make_run_iterations make_optimizer agent_keys physics".split(),
    "harness.checkpoint": "save_checkpoint load_checkpoint CheckpointError".split(),
    "harness.acting": "load_policy".split(),
    "harness.evaluation": "evaluate_gymnax evaluate_gymnasium".split(),
    "harness.compilation": "compiler_options enable_compile_cache use_cpu_cores".split(),
    "harness.runner": "Runner default_max_batch default_threads".split(),
    "app.run": "train_run RunResult RunError".split(),
    "app.sweep": "train_sweep SweepResult".split(),
    "harness.trackers": "open_trackers Trackers TrackerError check_trackers clear_tracker_files".split(),
    "harness.devices": "select_devices initialize_distributed gather_to_host".split(),
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
