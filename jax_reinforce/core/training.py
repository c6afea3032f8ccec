"""The REINFORCE training loop, whole, in one jit.

``make_train(config)`` returns ``train(key) -> (params, metrics)`` for ONE
agent. Each iteration is

    rollout (one episode per environment) -> reward-to-go -> baseline
      (with baseline="value": V(s) of the steps, and V's own squared-error
      update) -> loss and gradient (autodiff or by hand; softmax or
      Gaussian policy) -> optax update

and the iterations run in a ``jax.lax.while_loop`` under one ``jit``, so

    jax.jit(jax.vmap(make_train(config)))(keys)

trains many seeds at once (and ``jax.vmap`` over a learning rate works too:
the learning rate lives in the optimizer state through
``optax.inject_hyperparams``).

For progress bars, checkpoints and resumption the same loop is exposed in
pieces: ``init_state(key) -> TrainState`` and
``run_iterations(state, num_iterations) -> (state, metrics)``. Each
iteration's randomness is ``fold_in(agent_key, iteration)``, so splitting a
run into chunks of any size gives bitwise the same result.

An agent stops learning when it is solved (``stop_when_solved``: its last
100 or more training episodes average at least the environment's threshold,
and then so do its greedy policy's own fresh episodes,
:func:`confirmation_episodes`; its parameters are the ones that produced
them) or when its loss, gradient or parameters stop being finite (the update
is then not applied).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_reinforce.core.batching import batch_any, batch_max, batched_under_vmap
from jax_reinforce.core.config import Config, env_spec_of
from jax_reinforce.core.envs import EnvSpec, encode_obs
from jax_reinforce.core.gaussian import gaussian_reinforce_objective, gaussian_reinforce_value_and_grad_manual
from jax_reinforce.core.gaussian import init_gaussian_policy
from jax_reinforce.core.loss import reinforce_objective, reinforce_value_and_grad_manual
from jax_reinforce.core.network import init_policy
from jax_reinforce.core.policies import init_policy_params, policy_apply, resolve_policy
from jax_reinforce.core.returns import apply_baseline, reward_to_go_rows
from jax_reinforce.core.rollouts import rollout
from jax_reinforce.core.value import init_value, value_loss, value_loss_and_grad_manual, value_predictions

__all__ = [
    "TrainState",
    "METRIC_NAMES",
    "HOST_METRIC_DTYPES",
    "make_optimizer",
    "make_value_optimizer",
    "hyperparameters",
    "agent_hyperparameters",
    "HYPERPARAMETERS",
    "make_train",
    "make_init_state",
    "make_run_iterations",
    "agent_keys",
    "agent_keys_from",
    "solve_window",
    "confirmation_episodes",
    "physics",
    "metric_dtypes",
    "own_metrics",
]

METRIC_NAMES = ("episode_return", "episodes", "env_steps", "loss", "grad_norm", "entropy")
METRIC_DTYPES = {name: jnp.int32 if name in ("episodes", "env_steps") else jnp.float32 for name in METRIC_NAMES}
# Per-iteration values the host measures, not the program: saved in a checkpoint's history beside the metrics.
# "seconds": cumulative training wall-clock at the end of the iteration (jax_reinforce.Runner.seconds).
HOST_METRIC_DTYPES = {"seconds": jnp.float32}
SOLVE_EPISODES = 100
# Rows of the trajectory buffers (each row: one step of every environment)
# per block of the learning pass.
BLOCK_ROWS = 32


# Streams of an agent's key K: iteration i uses fold_in(K, i), i < 2**31. The policy's initial
# weights use fold_in(K, SIDE_STREAM) and V's fold_in(K, SIDE_STREAM - 1); the greedy confirmation
# of iteration i plays its r-th rollout (r < solve_window) from fold_in(fold_in(K, i), SIDE_STREAM - r).
# With JAX's (partitionable) Threefry, split(k, n)[j] IS fold_in(k, j), so a split of an iteration key
# into fewer than 2**32 - 2**31 keys (the rollout's) never yields these.
SIDE_STREAM = 2**32 - 1


# The hyper-parameters every program takes as traced inputs (TrainState.hparams): a sweep over
# them, or a second run with other values, reuses the compiled program.
HYPERPARAMETERS = ("learning_rate", "gamma", "entropy_coef", "max_grad_norm")


class TrainState(NamedTuple):
    """Everything a run needs to continue, as arrays (one agent).

    Attributes:
      params: policy parameters.
      opt_state: optax state of ``chain(clip_by_global_norm, optimizer)``.
      value_params: ``V(s)``'s network with ``baseline="value"``
        (:func:`jax_reinforce.init_value`), else ``()``.
      value_opt_state: its optimizer's state (:func:`make_value_optimizer`), else ``()``.
      hparams: ``{name: float32 scalar}`` for each of :data:`HYPERPARAMETERS`
        (``max_grad_norm`` ``inf`` when unclipped): this agent's values,
        traced inputs of the compiled programs.
      key: this agent's root PRNG key; iteration ``i`` uses ``fold_in(key, i)``.
      iteration: int32, updates attempted so far.
      solved_at: int32, the iteration whose episodes completed the solve, or -1.
      failed_at: int32, the iteration whose loss, gradient (or its norm),
        optimizer state or parameters were not finite, or -1: the agent
        diverged and is frozen with its last finite state.
      recent_return_sum: ``(K,)`` summed episode returns of the last ``K``
        iterations (a ring indexed by ``iteration % K``).
      recent_episodes: ``(K,)`` episodes finished in each of them.
      confirm_attempts: int32, times the training episodes met the solve
        criterion and the greedy policy was put to the test
        (:func:`confirmation_episodes`).
      confirm_steps: int32, environment steps of those greedy episodes
        (counted apart from the training steps of the metrics).
    """

    params: Any
    opt_state: Any
    value_params: Any
    value_opt_state: Any
    hparams: dict
    key: jax.Array
    iteration: jax.Array
    solved_at: jax.Array
    failed_at: jax.Array
    recent_return_sum: jax.Array
    recent_episodes: jax.Array
    confirm_attempts: jax.Array
    confirm_steps: jax.Array


class _Confirming(NamedTuple):
    """A greedy confirmation under way (:func:`confirmation_episodes`): part of ``run_iterations``' loop
    carry, never of a :class:`TrainState` (a confirmation ends in the call that began it)."""

    left: jax.Array  # int32, greedy rollouts still to play; 0: training
    return_sum: jax.Array  # float32, summed returns of its finished episodes so far
    episodes: jax.Array  # float32, its finished episodes so far
    cut: jax.Array  # float32, its episodes the window cut (a solve needs none)

    @staticmethod
    def none():
        return _Confirming(jnp.int32(0), jnp.float32(0), jnp.float32(0), jnp.float32(0))


def solve_window(num_envs: int) -> int:
    """``K``: iterations whose episodes (``num_envs`` each) cover the last 100."""
    return max(1, math.ceil(SOLVE_EPISODES / num_envs))


def confirmation_episodes(num_envs: int) -> int:
    """Greedy episodes that confirm a solve: ``K * num_envs`` (:func:`solve_window`), at least 100.

    When an agent's last ``K`` iterations of training episodes average the
    threshold, that iteration (the candidate) applies no update, and its
    greedy policy (the same parameters) plays this many fresh episodes: ``K``
    rollouts of the training rollout itself, its greedy flag set (one loop
    in the program for both kinds of episode), from the keys of
    :data:`SIDE_STREAM`. These rollouts are not iterations: they update
    nothing and have no metrics row (a ``metrics_fn``'s values on them are
    dropped); their steps are counted apart (``confirm_steps``). The agent
    is solved, at the candidate iteration, only if every greedy episode
    ended inside the window and their mean return reaches the threshold.
    Otherwise it goes on training, its window of training episodes emptied
    so that it qualifies again only on new ones. A confirmation always ends
    in the call of ``run_iterations`` that began it.
    """
    return solve_window(num_envs) * num_envs


def _check_seed_and_count(seed, num_seeds) -> None:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(seed) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}")
    if not is_int(num_seeds) or not 1 <= int(num_seeds) <= 2**31 - 1:
        raise ValueError(f"num_seeds must be an integer in [1, {2**31 - 1}]; got {num_seeds!r}")


def agent_keys_from(seed, indices):
    """Keys of agents ``indices``: ``fold_in(PRNGKey(seed), i)``, traceable (inside a jitted program).

    Args:
      seed: a uint32 scalar (may be traced).
      indices: ``(S,)`` integer agent indices.

    Returns:
      ``uint32[S, 2]`` raw keys.
    """
    root = jax.random.PRNGKey(jnp.asarray(seed, jnp.uint32))
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.asarray(indices, jnp.uint32))


@functools.partial(jax.jit, static_argnums=1)
def _agent_keys(seed, num_seeds):
    return agent_keys_from(seed, jnp.arange(num_seeds, dtype=jnp.uint32))


def agent_keys(seed: int, num_seeds: int):
    """``(num_seeds,)`` keys: agent ``i`` gets ``fold_in(PRNGKey(seed), i)``.

    Agent ``i``'s key does not depend on how many agents run beside it, so
    agent ``i`` of a 64-seed run is the same agent trained alone.

    Returns:
      ``uint32[num_seeds, 2]`` raw keys (a JAX array).

    Raises:
      ValueError: for a seed outside ``[0, 2**32)`` or a count that is not a positive integer.
    """
    _check_seed_and_count(seed, num_seeds)
    return _agent_keys(np.uint32(seed), int(num_seeds))


def make_optimizer(config: Config, learning_rate=None, max_grad_norm=None) -> optax.GradientTransformation:
    """``chain(clip_by_global_norm(max_grad_norm), optimizer(learning_rate))`` of ``config``.

    Both values may be traced (an agent's :attr:`TrainState.hparams`);
    ``None`` takes the config's (which must then be one value, not a sweep).
    The clipping is always in the program: an unclipped agent has
    ``max_grad_norm = inf``, under which it leaves every finite gradient
    bitwise unchanged.
    """
    given = {"learning_rate": learning_rate, "max_grad_norm": max_grad_norm}
    values = {name: _hyperparameter(config, name, value) for name, value in given.items()}
    base = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}[config.optimizer]
    return optax.chain(optax.clip_by_global_norm(values["max_grad_norm"]), base(values["learning_rate"]))


def make_value_optimizer(config: Config) -> optax.GradientTransformation:
    """The optimizer of ``V(s)`` (``baseline="value"``): ``config.optimizer`` at ``config.value_learning_rate``, unclipped."""
    base = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}[config.optimizer]
    return base(config.value_learning_rate)


def _hyperparameter(config: Config, name: str, value=None):
    """``value`` (may be traced), else the config's as a float32 scalar (``None`` max_grad_norm: ``inf``)."""
    if value is not None:
        return value
    value = getattr(config, name)
    if isinstance(value, tuple):
        raise ValueError(f"{name} is swept over {value} in this config; pass one agent's value "
                         f"(or take them from config.settings())")
    return jnp.asarray(jnp.inf if value is None else value, jnp.float32)


def hyperparameters(config: Config, **given) -> dict:
    """``{name: float32 scalar}`` for each of :data:`HYPERPARAMETERS`: ``given`` values, else the config's.

    ``max_grad_norm`` ``None`` (no clipping) becomes ``inf``. A field the
    config sweeps (a tuple of values) must be given.

    Raises:
      ValueError: an unknown name, or a swept field not given.
    """
    unknown = sorted(set(given) - set(HYPERPARAMETERS))
    if unknown:
        raise ValueError(f"hyper-parameters must be among {', '.join(HYPERPARAMETERS)}; got {', '.join(unknown)}")
    return {name: jnp.asarray(_hyperparameter(config, name, given.get(name)), jnp.float32)
            for name in HYPERPARAMETERS}


def agent_hyperparameters(config: Config) -> dict:
    """``{name: (num_agents,) float32}``: each agent's setting (agent ``a``: setting ``a // num_seeds``).

    The values :class:`TrainState` ``.hparams`` holds for a run of ``config``
    (``max_grad_norm`` ``inf`` when unclipped).
    """
    per_setting = {name: np.asarray([np.inf if s[name] is None else s[name] for s in config.settings()], np.float32)
                   for name in HYPERPARAMETERS}
    return {name: np.repeat(values, config.num_seeds) for name, values in per_setting.items()}


def _all_finite(tree) -> jax.Array:
    """Every float of ``tree`` is finite: one check of all its leaves (one kernel, not one per leaf)."""
    leaves = [jnp.ravel(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.isfinite(jnp.concatenate(leaves))) if leaves else jnp.bool_(True)


def _make_iteration(config: Config, env_spec: EnvSpec, axis_name: str | None, env_axis_name: str | None,
                    policy=None, metrics_fn=None):
    """One update of one agent, or one rollout of a greedy confirmation:
    ``(state, confirming, active, env_params) -> (state, confirming, metrics)`` (:class:`_Confirming`)."""
    # Sums over the agent's environments: local, or over the devices they are split across.
    env_total = (lambda x: x) if env_axis_name is None else (lambda x: jax.lax.psum(x, env_axis_name))
    loop_axes = tuple(a for a in (axis_name, env_axis_name) if a is not None)
    threshold = env_spec.solve_threshold
    confirms = threshold is not None and config.stop_when_solved
    window = solve_window(config.num_envs)
    dtypes = metric_dtypes(config)

    def block_loss_and_grad(params, obs, actions, weights, mask, entropy_coef, denominator):
        """Loss, gradient and entropy sum of one block, each a share of the batch's.

        A softmax policy for discrete actions; for Box actions a Gaussian
        whose ``log_std`` is the last layer's, its gradient put back there.
        """
        obs = encode_obs(env_spec, obs, jax.tree.leaves(params)[0].dtype)
        rest = (obs, actions, weights, mask, entropy_coef, denominator)
        if policy is not None:  # another network: autodiff, its params {"net", "log_std"} for Box actions
            def apply(p, o):
                return policy_apply(policy, p, o, env_spec)

            if env_spec.continuous:
                def objective(p, *rest):
                    return gaussian_reinforce_objective(p, p["log_std"], *rest, apply=apply)
            else:
                def objective(p, *rest):
                    return reinforce_objective(p, *rest, apply=apply)
            (loss, entropy_sum), grads = jax.value_and_grad(objective, has_aux=True)(params, *rest)
            return loss, entropy_sum, grads
        if env_spec.continuous and config.grad == "manual":
            (loss, entropy_sum), (grads, log_std_grad) = gaussian_reinforce_value_and_grad_manual(
                params, params[-1]["log_std"], *rest)
            grads[-1] = {**grads[-1], "log_std": log_std_grad}
            return loss, entropy_sum, grads
        if env_spec.continuous:
            def objective(p, *rest):
                return gaussian_reinforce_objective(p, p[-1]["log_std"], *rest)
        else:
            objective = reinforce_objective
        if config.grad == "manual":
            (loss, entropy_sum), grads = reinforce_value_and_grad_manual(params, *rest)
            return loss, entropy_sum, grads
        (loss, entropy_sum), grads = jax.value_and_grad(objective, has_aux=True)(params, *rest)
        return loss, entropy_sum, grads

    def used_rows(traj):
        """Rows used by the longest episode of the batch (the same for every agent of the batch)."""
        used = jnp.max(traj.length)
        return batch_max(jax.lax.pmax(used, loop_axes) if loop_axes else used)

    def over_used_rows(traj, used, arrays, fold, init):
        """Folds ``fold(carry, block_arrays, fresh)`` over the rows the episodes used, block by block.

        The buffers hold ``T`` rows (the window) but the longest episode may
        have used far fewer. Sums over steps are taken block by block
        (:data:`BLOCK_ROWS` rows of every environment at a time) over the
        used rows only. The last block is shifted back to stay inside the
        buffer; ``fresh`` ``(block, 1)`` marks the rows it does not share with
        the block before. Under ``vmap`` with ``axis_name`` the block count is
        shared by the batch, so the slices stay plain slices.
        """
        horizon = traj.rewards.shape[0]
        block = min(BLOCK_ROWS, horizon)
        num_blocks = (used + block - 1) // block

        def body(carry):
            b, inner = carry
            start = jnp.minimum(b * block, horizon - block)
            fresh = (start + jnp.arange(block) >= b * block)[:, None]
            rows = lambda x: jax.lax.dynamic_slice_in_dim(x, start, block, axis=0)  # noqa: E731
            # The barrier keeps XLA from hoisting the per-block work out of the
            # loop onto the whole buffer (which would undo the blocking).
            block_arrays = jax.lax.optimization_barrier(tuple(rows(x) for x in arrays))
            return b + 1, fold(inner, block_arrays, start, fresh)

        return jax.lax.while_loop(lambda c: c[0] < num_blocks, body, (jnp.int32(0), init))[1]

    def flat(x):
        """One flat batch of block * N samples: the layers' products are plain 2-D dots."""
        return x.reshape(-1, *x.shape[2:])

    def denominator_of(params, mask):
        dtype = jax.tree.leaves(params)[0].dtype
        return jnp.maximum(env_total(jnp.sum(mask.astype(dtype))), 1.0)

    def policy_gradient(params, traj, weights, mask, used, entropy_coef):
        """``(loss, grads, mean_entropy)`` over the rows the episodes used.

        The loss is a sum over steps, each block divided by the whole
        batch's denominator; the sum of the blocks is the batch's loss and
        gradient.
        """
        denominator = denominator_of(params, mask)

        def fold(carry, block_arrays, start, fresh):
            loss, grads, entropy_sum = carry
            obs, actions, block_weights, block_mask = block_arrays
            l, e, g = block_loss_and_grad(params, flat(obs), flat(actions), flat(block_weights),
                                          flat(block_mask * fresh), entropy_coef, denominator)
            return loss + l, jax.tree.map(jnp.add, grads, g), entropy_sum + e

        zero = jnp.zeros((), denominator.dtype)
        init = (zero, jax.tree.map(jnp.zeros_like, params), zero)
        loss, grads, entropy_sum = over_used_rows(traj, used, (traj.obs, traj.actions, weights, mask), fold, init)
        loss, grads, entropy_sum = env_total((loss, grads, entropy_sum))
        return loss, grads, entropy_sum / denominator

    def value_fit(value_params, traj, returns, mask, used):
        """``(values, loss, grads)`` of ``V(s)`` over the rows the episodes used.

        ``values`` ``(T, N)``: ``V(s_t)`` of every used row (0 beyond), the
        baseline of this iteration's weights; ``loss`` and ``grads``:
        :func:`jax_reinforce.value_loss` of the reward-to-go over the masked
        steps (``D`` the batch's count), summed block by block as the policy's.
        """
        denominator = denominator_of(value_params, mask)
        dtype = denominator.dtype

        def fold(carry, block_arrays, start, fresh):
            values, loss, grads = carry
            obs, block_returns, block_mask = block_arrays
            inputs = encode_obs(env_spec, flat(obs), dtype)
            args = (inputs, flat(block_returns), flat(block_mask * fresh), denominator)
            if config.grad == "manual":
                l, g = value_loss_and_grad_manual(value_params, *args)
            else:
                l, g = jax.value_and_grad(value_loss)(value_params, *args)
            v = value_predictions(value_params, inputs).reshape(block_returns.shape)
            values = jax.lax.dynamic_update_slice_in_dim(values, v.astype(values.dtype), start, axis=0)
            return values, loss + l, jax.tree.map(jnp.add, grads, g)

        init = (jnp.zeros(traj.rewards.shape, dtype), jnp.zeros((), dtype), jax.tree.map(jnp.zeros_like, value_params))
        values, loss, grads = over_used_rows(traj, used, (traj.obs, returns, mask), fold, init)
        loss, grads = env_total((loss, grads))
        return values, loss, grads

    def fit_value(state, traj, returns, mask, used):
        """The value baseline's step: ``V(s)`` of the steps (its values before the update weigh the policy's
        gradient), fitted to this batch's returns; ``(values, loss, new params, new optimizer state, finite)``."""
        if config.baseline != "value":
            return None, None, (), (), jnp.bool_(True)
        values, loss, grads = value_fit(state.value_params, traj, returns, mask, used)
        updates, opt_state = make_value_optimizer(config).update(grads, state.value_opt_state, state.value_params)
        params = optax.apply_updates(state.value_params, updates)
        finite = _all_finite((loss, grads, opt_state, params))
        return values, loss, params, opt_state, finite

    def update_policy(state, traj, weights, mask, used):
        """The policy gradient and the optimizer's update: ``(loss, grads, entropy, new params, new opt state)``."""
        hp = state.hparams
        loss, grads, entropy = policy_gradient(state.params, traj, weights, mask, used, hp["entropy_coef"])
        tx = make_optimizer(config, hp["learning_rate"], hp["max_grad_norm"])
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return loss, grads, entropy, optax.apply_updates(state.params, updates), opt_state

    def check_solved(state, conf, traj, active):
        """The solve bookkeeping: the last window's returns, or a greedy confirmation's rollout.

        ``conf``: the confirmation under way (:class:`_Confirming`; ``left == 0``: this is a training
        iteration). Returns ``(solved, hold, fields, conf, return_sum, episodes)``: ``hold`` (this
        iteration applies no update: a candidate, or a confirmation's rollout) and ``fields``, the new
        TrainState's window and confirmation counts.
        """
        finished = traj.finished.astype(jnp.float32)
        episodes = env_total(jnp.sum(finished))
        return_sum = env_total(jnp.sum(jnp.sum(traj.rewards, axis=0) * finished))
        slot = state.iteration % window
        fields = {"recent_return_sum": state.recent_return_sum.at[slot].set(return_sum),
                  "recent_episodes": state.recent_episodes.at[slot].set(episodes),
                  "confirm_attempts": state.confirm_attempts, "confirm_steps": state.confirm_steps}
        if not confirms:
            return jnp.bool_(False), jnp.bool_(False), fields, conf, return_sum, episodes
        confirming = conf.left > 0
        total = jnp.sum(fields["recent_episodes"])
        candidate = ~confirming & active & (total >= SOLVE_EPISODES) & (jnp.sum(fields["recent_return_sum"])
                                                                        >= threshold * total)

        def add(x, y):  # a confirmation's episodes, counted apart from training's
            return x + jnp.where(confirming, y, 0).astype(x.dtype)

        conf = _Confirming(jnp.where(candidate, window, conf.left - confirming.astype(jnp.int32)),
                           add(conf.return_sum, return_sum), add(conf.episodes, episodes),
                           add(conf.cut, config.num_envs - episodes))
        done = confirming & (conf.left == 0)
        solved = done & (conf.cut == 0) & (conf.return_sum >= threshold * jnp.maximum(conf.episodes, 1.0))
        # A failed test empties the window: the agent qualifies again only on new training episodes.
        retry = done & ~solved
        for name in ("recent_return_sum", "recent_episodes"):
            fields[name] = jnp.where(retry, 0.0, jnp.where(confirming, getattr(state, name), fields[name]))
        fields["confirm_attempts"] = state.confirm_attempts + candidate.astype(jnp.int32)
        fields["confirm_steps"] = add(state.confirm_steps, env_total(jnp.sum(traj.length)))
        conf = jax.tree.map(lambda x: jnp.where(done, jnp.zeros_like(x), x), conf)
        return solved, candidate | confirming, fields, conf, return_sum, episodes

    def iteration(state: TrainState, conf, active, env_params=None):
        spec = env_spec if env_params is None else dataclasses.replace(env_spec, params=env_params)
        # 1. Rollout: one episode in each environment; greedy, from the side stream of the candidate
        # iteration (the one before), while a confirmation is under way.
        confirming = (conf.left > 0) if confirms else False
        key = jax.random.fold_in(state.key, state.iteration - jnp.asarray(confirming).astype(jnp.int32))
        if confirms:
            side = jnp.uint32(SIDE_STREAM) - (window - conf.left).astype(jnp.uint32)
            key = jnp.where(confirming, jax.random.fold_in(key, side), key)
        traj = rollout(state.params, key, spec, config.num_envs, config.rollout_steps, active, axis_name,
                       greedy=confirming, env_axis_name=env_axis_name, policy=policy)
        used = used_rows(traj)
        # 2. Returns, over the rows the episodes used only (equal to reward_to_go bit for bit); only steps
        # of episodes that ended inside the window carry weight.
        returns = reward_to_go_rows(traj.rewards, traj.episode_end, state.hparams["gamma"], used)
        mask = (traj.alive & traj.finished[None, :]).astype(jnp.float32)
        # 3. Baseline, and the value baseline's own fit.
        values, v_loss, new_value_params, value_opt_state, value_finite = fit_value(state, traj, returns, mask, used)
        weights = apply_baseline(returns, mask, config.baseline, env_axis_name, values, config.normalize_advantages)
        # 4. Policy gradient and optimizer update.
        loss, grads, entropy, new_params, opt_state = update_policy(state, traj, weights, mask, used)
        # 5. Solved (confirmed by the greedy policy) and finite bookkeeping. Non-finite anywhere: the loss, the
        # gradient, its norm (its square overflows first), the new optimizer state (Adam's second moment holds
        # the square) and the new parameters.
        solved, hold, fields, conf, return_sum, episodes = check_solved(state, conf, traj, active)
        # What a candidate or a confirmation computed is not applied: nothing of it can fail the agent.
        finite = hold | (_all_finite((loss, grads, optax.tree.norm(grads), opt_state, new_params)) & value_finite)
        learn = finite & ~hold

        def kept(new, old):
            return jax.tree.map(lambda n, o: jnp.where(learn, n, o), new, old)

        new_state = TrainState(
            params=kept(new_params, state.params), opt_state=kept(opt_state, state.opt_state),
            value_params=kept(new_value_params, state.value_params),
            value_opt_state=kept(value_opt_state, state.value_opt_state), hparams=state.hparams, key=state.key,
            iteration=state.iteration + (~jnp.asarray(confirming)).astype(jnp.int32),
            solved_at=jnp.where(solved, state.iteration - 1, state.solved_at),
            failed_at=jnp.where(finite, state.failed_at, state.iteration), **fields)
        metrics = {"episode_return": return_sum / jnp.maximum(episodes, 1.0), "episodes": episodes.astype(jnp.int32),
                   "env_steps": env_total(jnp.sum(traj.length)), "loss": loss, "grad_norm": optax.tree.norm(grads),
                   "entropy": entropy, **({} if v_loss is None else {"value_loss": v_loss})}
        metrics = {name: value.astype(dtypes[name]) for name, value in metrics.items()}
        if metrics_fn is not None:  # on the agent's whole trajectory, gathered where its environments are split
            whole = traj if env_axis_name is None else jax.tree.map(  # environments: axis 1 of (T, N, ...), 0 of (N,)
                lambda x: jax.lax.all_gather(x, env_axis_name, axis=min(x.ndim - 1, 1), tiled=True), traj)
            metrics.update(own_metrics(metrics_fn, new_state, whole, metrics))
        return new_state, conf, metrics

    return iteration


def metric_dtypes(config: Config) -> dict:
    """``{name: dtype}`` of the built-in metrics of a run of ``config``: :data:`METRIC_DTYPES`, and
    ``value_loss`` (float32, ``V(s)``'s squared error before its update) with ``baseline="value"``."""
    return {**METRIC_DTYPES, **({"value_loss": jnp.float32} if config.baseline == "value" else {})}


def own_metrics(metrics_fn, state, traj, builtin: dict) -> dict:
    """``metrics_fn(state, traj)`` checked: a dict of scalars, as float32, none named like a built-in metric."""
    out = metrics_fn(state, traj)
    if not isinstance(out, dict):
        raise ValueError(f"metrics_fn must return a dict of {{name: scalar}}; got {type(out).__name__}")
    clash = sorted(set(out) & set(builtin))
    bad = sorted(str(k) for k, v in out.items() if not isinstance(k, str) or jnp.shape(v) != ())
    if clash or bad:
        raise ValueError(f"metrics_fn must return {{name: scalar}} with names other than the built-in metrics "
                         f"({', '.join(builtin)}); got clashing {clash} and non-scalar or unnamed {bad}")
    return {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}


def physics(env_spec: EnvSpec, env_params=None):
    """The ``EnvParams`` an agent trains under: ``env_spec``'s, or ``env_params`` (an ``EnvParams``, or a dict of
    field replacements), whose leaves may be traced (vmap over them: one agent per physics, one program).

    The episode limit shapes the program (the rollout's window) and a Box's bounds are the spec's (what a
    Gaussian policy's actions are clipped to), so both stay static: a traced ``max_steps_in_episode`` is
    ignored (the spec's is used), and another concrete value is refused in one line (make another spec for
    another limit).
    """
    if env_params is None:
        return None
    if isinstance(env_params, dict):
        allowed = [f.name for f in dataclasses.fields(env_spec.params)]
        unknown = sorted(str(k) for k in env_params if k not in allowed)
        if unknown:
            raise ValueError(f"env_params: {', '.join(unknown)} not among {env_spec.name}'s fields "
                             f"({', '.join(allowed)})")
        env_params = dataclasses.replace(env_spec.params, **env_params)
    if not dataclasses.is_dataclass(env_params) or not hasattr(env_params, "max_steps_in_episode"):
        raise ValueError(f"env_params must be {env_spec.name}'s EnvParams or a dict of its fields; "
                         f"got {type(env_params).__name__}")
    limit = env_params.max_steps_in_episode
    if not isinstance(limit, jax.core.Tracer) and np.size(limit) == 1 and int(np.ravel(limit)[0]) != env_spec.max_steps:
        raise ValueError(f"env_params.max_steps_in_episode shapes the program (the rollout's window): it must be "
                         f"the spec's {env_spec.max_steps}; got {limit!r} (make_env(..., env_params=...) for "
                         f"another limit)")
    return dataclasses.replace(env_params, max_steps_in_episode=env_spec.params.max_steps_in_episode)


def _policy_of(config: Config, policy=None):
    """The network to train: ``policy`` if given, else the config's (``None``: the built-in MLP's own code)."""
    return resolve_policy(policy if policy is not None else (config.attached_policy or config.network), config.hidden)


def _config_and_env(config: Config, env_spec: EnvSpec | None):
    if not isinstance(config, Config):
        raise TypeError(f"config must be a jax_reinforce.Config; got {type(config).__name__}")
    return env_spec if env_spec is not None else env_spec_of(config)


def make_init_state(config: Config, env_spec: EnvSpec | None = None, dtype=jnp.float32, *, policy=None):
    """``init_state(key, learning_rate=None, hparams=None) -> TrainState`` for one agent.

    ``hparams``: ``{name: value}`` for some of :data:`HYPERPARAMETERS`
    (each may be traced, e.g. vmapped over a grid); ``learning_rate`` is the
    same as ``hparams={"learning_rate": ...}``; the rest come from the
    config (:func:`hyperparameters`).

    ``dtype`` is the float type of the parameters (and of the whole update);
    float64 needs ``jax.config.update("jax_enable_x64", True)``. ``policy``: see :func:`make_train`.
    """
    env_spec = _config_and_env(config, env_spec)
    policy = _policy_of(config, policy)
    window = solve_window(config.num_envs)

    def init_state(key, learning_rate=None, hparams=None) -> TrainState:
        given = dict(hparams or {})
        if learning_rate is not None:
            given["learning_rate"] = learning_rate
        values = hyperparameters(config, **given)
        init_key = jax.random.fold_in(key, SIDE_STREAM)
        value_key = jax.random.fold_in(key, SIDE_STREAM - 1)
        if policy is not None:
            params = init_policy_params(policy, init_key, env_spec, dtype)
        elif env_spec.continuous:
            params = init_gaussian_policy(init_key, env_spec.obs_dim, config.hidden, env_spec.action_low,
                                          env_spec.action_high, dtype)
        else:
            params = init_policy(init_key, env_spec.obs_dim, config.hidden, env_spec.n_actions, dtype)
        opt_state = make_optimizer(config, values["learning_rate"], values["max_grad_norm"]).init(params)
        value_params, value_opt_state = (), ()
        if config.baseline == "value":
            value_params = init_value(value_key, env_spec.obs_dim, config.value_hidden, dtype)
            value_opt_state = make_value_optimizer(config).init(value_params)
        return TrainState(
            params=params,
            opt_state=opt_state,
            value_params=value_params,
            value_opt_state=value_opt_state,
            hparams=values,
            key=key,
            iteration=jnp.int32(0),
            solved_at=jnp.int32(-1),
            failed_at=jnp.int32(-1),
            recent_return_sum=jnp.zeros((window,), jnp.float32),
            recent_episodes=jnp.zeros((window,), jnp.float32),
            confirm_attempts=jnp.int32(0),
            confirm_steps=jnp.int32(0),
        )

    return init_state


def make_run_iterations(
    config: Config,
    env_spec: EnvSpec | None = None,
    axis_name: str | None = None,
    env_axis_name: str | None = None,
    *,
    policy=None,
    metrics_fn=None,
):
    """``run_iterations(state, num_iterations, env_params=None) -> (state, metrics)`` for one agent.

    Runs up to ``num_iterations`` (static) more iterations, never past
    ``config.iterations`` in all, stopping early once the agent is solved or
    has failed. ``metrics`` maps each of :data:`METRIC_NAMES` to a
    ``(num_iterations,)`` array; rows of iterations not run hold NaN (floats)
    or 0 (counts).

    ``axis_name``: see :func:`make_train`. ``env_axis_name``: the mesh axis
    over which each agent's environments are split (``shard_map``), when
    there are fewer agents than devices: every device holds the agent's whole
    state and ``num_envs / shards`` of its environments, and the gradient,
    the baseline's statistics and the metrics are summed over the axis
    (``lax.psum``), so the parameters stay identical on every device and equal
    the unsplit run's.
    """
    env_spec = _config_and_env(config, env_spec)
    policy = _policy_of(config, policy)
    iteration = _make_iteration(config, env_spec, axis_name, env_axis_name, policy, metrics_fn)

    def run_iterations(state: TrainState, num_iterations: int, env_params=None):
        env_params = physics(env_spec, env_params)
        start = state.iteration
        end = jnp.minimum(start + num_iterations, config.iterations)
        dtypes = metric_dtypes(config)
        if metrics_fn is not None:  # the own metrics' names, from one trace of the iteration
            shapes = jax.eval_shape(lambda s: iteration(s, _Confirming.none(), jnp.bool_(True), env_params)[2], state)
            dtypes.update({name: jnp.float32 for name in shapes if name not in dtypes})
        buffers = {
            name: jnp.full((num_iterations,), jnp.nan if jnp.issubdtype(dtype, jnp.floating) else 0, dtype)
            for name, dtype in dtypes.items()
        }

        def running(s, conf):  # a confirmation under way runs to its end, past the call's last iteration
            return ((s.iteration < end) | (conf.left > 0)) & (s.solved_at < 0) & (s.failed_at < 0)

        def any_running(carry):
            run = running(carry[0], carry[1])
            axes = tuple(a for a in (axis_name, env_axis_name) if a is not None)
            if axes:
                run = jax.lax.pmax(run.astype(jnp.int32), axes) > 0
            return batch_any(run)

        def body(carry):
            s, conf, bufs = carry
            run = running(s, conf)
            # A stopped agent's row, and a confirmation's, is out of range, so its metrics are dropped.
            row = jnp.where(run & (conf.left == 0), s.iteration - start, num_iterations)
            new_s, new_conf, m = iteration(s, conf, run, env_params)
            # An agent that has stopped keeps its state and its metric rows.
            new_s, new_conf = jax.tree.map(lambda new, old: jnp.where(run, new, old), (new_s, new_conf), (s, conf))
            bufs = {name: bufs[name].at[row].set(m[name], mode="drop") for name in bufs}
            return new_s, new_conf, bufs

        # Every part of the carry is per agent under vmap: say so, so that vmap batches the body once.
        carry = batched_under_vmap((state, _Confirming.none(), buffers))
        state, _, buffers = jax.lax.while_loop(any_running, body, carry)
        return state, buffers

    return run_iterations


def make_train(
    config: Config, env_spec: EnvSpec | None = None, axis_name: str | None = None, dtype=jnp.float32, *,
    policy=None, metrics_fn=None, return_state: bool = False,
):
    """``train(key, learning_rate=None, hparams=None, env_params=None) -> (params, metrics)`` for ONE agent.

    ``learning_rate`` and ``hparams`` (``{name: value}``, see
    :func:`make_init_state`) may be traced: vmap over them to sweep. ``env_params`` (an ``EnvParams`` or a
    dict of fields, :func:`physics`) may be traced too: vmap over gravity, masses or torques to train one
    agent per physics in one program.

    ``env_spec``: the environment (default: the config's, :func:`jax_reinforce.core.config.env_spec_of`).
    ``policy``: a :class:`jax_reinforce.Policy` (wins over ``config.network``). ``metrics_fn(state, traj) ->
    {name: scalar}``: evaluated every iteration inside the program on the updated :class:`TrainState` and the
    agent's whole :class:`jax_reinforce.Trajectory`, merged into ``metrics`` (float32). ``return_state``:
    ``train`` returns ``(TrainState, metrics)`` (``solved_at``, ``failed_at``, the optimizer state) instead of
    ``(params, metrics)``.

    The whole run (``config.iterations`` at most) in one pure function; jit
    it, and vmap it over keys (and learning rates) to train many agents::

        keys = jax_reinforce.agent_keys(config.seed, config.num_seeds)
        params, metrics = jax.jit(jax.vmap(make_train(config)))(keys)

    No axis name is needed for speed: every loop stops when the last member
    of the vmapped batch is done, decided once for the batch
    (:mod:`jax_reinforce.core.batching`), so ``vmap`` never carries a per-agent
    stop flag through the rollout's buffers. ``axis_name`` (the vmapped
    axis's name, on both sides) gives the same results with a ``lax.pmax``.

    ``dtype``: see :func:`make_init_state`.

    Returns:
      ``params`` and ``metrics``, a dict of ``(iterations,)`` arrays:
      ``episode_return`` (mean return of the episodes finished in the
      iteration), ``episodes``, ``env_steps`` (real environment steps),
      ``loss``, ``grad_norm``, ``entropy``; NaN or 0 after the agent stopped.
    """
    env_spec = _config_and_env(config, env_spec)
    init_state = make_init_state(config, env_spec, dtype, policy=policy)
    run_iterations = make_run_iterations(config, env_spec, axis_name, policy=policy, metrics_fn=metrics_fn)

    def train(key, learning_rate=None, hparams=None, env_params=None):
        state, metrics = run_iterations(init_state(key, learning_rate, hparams), config.iterations, env_params)
        return (state if return_state else state.params), metrics

    return train
