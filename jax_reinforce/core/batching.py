"""Loops that stop together under ``jax.vmap``: one stop test for the whole batch.

A ``jax.lax.while_loop`` whose stop test differs between the members of a
vmapped batch cannot stop early for some of them: JAX runs it while any
member goes on and, at every step, selects between each member's new carry
and its old one (``where(go_on, body(carry), carry)``). For a rollout whose
carry holds ``(T, N, obs_dim)`` trajectory buffers, that select copies every
buffer at every step, so a step costs ``O(T N)`` instead of ``O(N)``
(``docs/performance.md`` measures it).

The loops of this package are written so that running more steps than a
member needs changes nothing for it (its environments have ended, its
agent has stopped: the extra steps write zeros and keep its state), so they
may as well stop when the *last* member is done. :func:`batch_any` and
:func:`batch_max` say that: outside ``vmap`` they return their argument;
under ``vmap`` (nested or not, named or not) they reduce it over every
vmapped axis and return one unbatched value, so the loop's stop test is the
same for the whole batch and ``vmap`` runs its body with no select. They are
``jax.custom_batching.custom_vmap`` functions: the batching rule reduces the
vmapped axis and calls the function again, so the next enclosing ``vmap``
reduces its axis too.

:func:`batched_under_vmap` marks a loop's initial carry as batched before the
loop: ``vmap`` of a ``while_loop`` otherwise re-batches the whole body until
it knows which parts of the carry the batch changes (a fixed point: three
passes over the training loop's body), where one pass suffices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["batch_any", "batch_max", "batched_under_vmap"]


@jax.custom_batching.custom_vmap
def batch_max(x):
    """``x`` itself; under ``vmap``, its maximum over every vmapped axis (unbatched).

    Args:
      x: an array (typically a scalar count or flag of one batch member).

    Returns:
      An array of the shape of one member's ``x``.
    """
    return x


@batch_max.def_vmap
def _batch_max_rule(axis_size, in_batched, x):
    del axis_size
    (batched,) = in_batched
    if batched:
        x = jnp.max(x, axis=0)
    # Called again: an enclosing vmap (if any) reduces its own axis the same way.
    return batch_max(x), False


def batch_any(flag):
    """``flag`` (bool) itself; under ``vmap``, whether it holds for any member of the batch (unbatched)."""
    return batch_max(jnp.asarray(flag).astype(jnp.int32)) > 0


@jax.custom_batching.custom_vmap
def batched_under_vmap(tree):
    """``tree`` itself; under ``vmap``, with every leaf batched (an unbatched leaf broadcast along the axis).

    For a loop's initial carry whose every part the vmapped body changes per
    member anyway: ``vmap`` then batches the loop's body once, instead of
    once per pass of its fixed point over which parts are batched. The
    values, and what the loop computes, are unchanged.

    ``vmap`` sees the call only where some leaf of ``tree`` is batched (as
    for any primitive): a tree of constants stays as it is.

    Args:
      tree: a pytree of arrays.

    Returns:
      ``tree``.
    """
    return tree


@batched_under_vmap.def_vmap
def _batched_under_vmap_rule(axis_size, in_batched, tree):
    batched = jax.tree.map(lambda leaf, b: leaf if b else jnp.broadcast_to(leaf, (axis_size, *jnp.shape(leaf))),
                           tree, in_batched[0])
    # Called again: an enclosing vmap (if any) batches its own axis the same way.
    return batched_under_vmap(batched), jax.tree.map(lambda _: True, tree)
