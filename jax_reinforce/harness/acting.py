"""Acting with a saved policy: ``act = load_policy(run_dir, agent)``, then ``act(obs)`` or ``act(obs, key)``.

One function for every network (the MLP, the CNN, your own ``Policy``), every action space (a softmax policy's
argmax or sample; a Gaussian's mean or sample, clipped to the bounds) and every encoding of the observations
(flattened, one-hot, 0/1 images), so that research code hands it observations exactly as gymnax gives them.
"""

from __future__ import annotations

import numpy as np

from jax_reinforce.core.config import env_spec_of
from jax_reinforce.core.policies import resolve_policy
from jax_reinforce.harness.checkpoint import load_checkpoint

__all__ = ["load_policy"]


def load_policy(run_dir, agent: int = 0, *, setting: int = 0, env_spec=None, policy=None):
    """``act(obs, key=None) -> actions`` of agent ``agent`` of setting ``setting`` of the run in ``run_dir``.

    Args:
      run_dir: a run directory (its ``checkpoint.npz``).
      agent: the agent's index in its setting, ``0 <= agent < num_seeds``: the agent trained from
        ``fold_in(PRNGKey(seed), agent)``.
      setting: the setting's index in a sweep (``0 <= setting < num_settings``; 0 without a sweep).
      env_spec, policy: the environment and network, needed (checked by name) for a run of an environment
        object or a ``Policy`` that cannot be imported by path.

    Returns:
      ``act(obs, key=None)``, jitted: ``obs`` a batch ``(..., *obs_shape)`` of observations as the
      environment gives them; without ``key`` the greedy actions (the most likely action; a Gaussian's mean),
      with a ``jax.random`` key actions sampled from the policy; Box actions clipped to the bounds.
      ``act.params`` (this agent's parameters), ``act.config`` and ``act.env_spec`` are attached.

    Raises:
      ValueError: an agent or setting out of range, or the checkpoint's own error (one line).
    """
    import jax  # lazy: the library's import stays JAX-free
    import jax.numpy as jnp

    from jax_reinforce.core.envs import encode_obs, store_obs  # lazy: loads JAX (app.cli.start_jax checks it)
    from jax_reinforce.core.gaussian import gaussian_policy_mean  # lazy: loads JAX, as above
    from jax_reinforce.core.policies import policy_apply  # lazy: loads JAX, as above
    from jax_reinforce.core.network import policy_logits  # lazy: loads JAX, as above

    params, config = load_checkpoint(run_dir, env_spec=env_spec, policy=policy)
    for name, value, count in (("agent", agent, config.num_seeds), ("setting", setting, config.num_settings)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
            raise ValueError(f"{name} must be an integer in [0, {count}) for the run in {run_dir}; got {value!r}")
    index = int(setting) * config.num_seeds + int(agent)
    one = jax.tree.map(lambda x: jnp.asarray(x[index]), params)
    spec = env_spec if env_spec is not None else env_spec_of(config)
    network = resolve_policy(policy if policy is not None else (config.attached_policy or config.network),
                             config.hidden)
    dtype = jax.tree.leaves(one)[0].dtype

    def output(obs):
        batch = jnp.shape(obs)[:jnp.ndim(obs) - len(spec.obs_shape)]
        inputs = encode_obs(spec, store_obs(spec, obs, dtype), dtype)
        if network is not None:
            return policy_apply(network, one, inputs, spec), batch
        return (gaussian_policy_mean if spec.continuous else policy_logits)(one, inputs), batch

    @jax.jit
    def greedy(obs):
        out, batch = output(obs)
        if spec.continuous:
            return jnp.clip(out, jnp.asarray(spec.action_low), jnp.asarray(spec.action_high)).reshape(*batch, -1)
        return jnp.argmax(out, axis=-1).astype(jnp.int32)

    @jax.jit
    def sampled(obs, key):
        out, batch = output(obs)
        if not spec.continuous:
            return jax.random.categorical(key, out).astype(jnp.int32)
        log_std = one["log_std"] if network is not None else one[-1]["log_std"]
        action = out + jnp.exp(log_std) * jax.random.normal(key, out.shape, out.dtype)
        return jnp.clip(action, jnp.asarray(spec.action_low), jnp.asarray(spec.action_high)).reshape(*batch, -1)

    def act(obs, key=None):
        return greedy(obs) if key is None else sampled(obs, key)

    act.params, act.config, act.env_spec = one, config, spec
    return act
