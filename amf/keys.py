"""Random streams: the one convention by which this project derives keys.

With `jax_threefry_partitionable` on (the default of the JAX we pin), `fold_in(k, i)` is
`split(k, n)[i]` for every `n > i`: a stream made with `fold_in(k, 1)` beside a `split(k)` is
not independent of it, it is the same key. So one rule holds everywhere: **a key has one
consumer**. It is drawn from (`normal`, `uniform`, a flax `init`, ...) or split into the keys
of its consumers, and then not used again. Keys are split in one of three ways:

- `streams(key, names)`: one key per named consumer, from one `split`. Since `split(k, n)[i]`
  does not depend on `n`, a stream appended at the end leaves the others' keys, and every
  result computed from them, unchanged.
- `jax.random.split(key, shape)`: one key per item of a batch (episodes, steps, seeds), by
  position.
- `by_value(key, x)`: one key per row of `x`, by the row's value: randomness that follows an
  item (a task) wherever it appears. The same task gets the same draws as a target and as a
  candidate, distinct tasks get independent draws, whichever rows they sit in. `key` must
  serve nothing else.

`tests/key_audit.py` checks the rule on whole rounds of every loop: no two consumers (places
in the code) receive the same key.
"""
from typing import Sequence

import jax
import jax.numpy as jnp


def streams(key: jax.Array, names: Sequence[str]) -> dict[str, jax.Array]:
  """One key per name, from one split of `key`; append new names, never insert."""
  if len(set(names)) != len(names):
    raise ValueError(f"Stream names must be distinct, got {tuple(names)}.")
  return dict(zip(names, jax.random.split(key, len(names))))


def by_value(key: jax.Array, x: jax.Array) -> jax.Array:
  """A key for each row of `x` (n, ...), a function of `key` and the row's float32 bits only."""
  x = jax.lax.stop_gradient(jnp.asarray(x, jnp.float32))  # keys have no gradient
  bits = jax.lax.bitcast_convert_type(x, jnp.uint32)

  def one(row):
    return jax.lax.fori_loop(0, row.shape[0], lambda i, k: jax.random.fold_in(k, row[i]), key)

  return jax.vmap(one)(bits.reshape(bits.shape[0], -1))
