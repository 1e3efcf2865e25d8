"""A key audit: which place in the code receives each random key (`amf.keys`' rule).

Inside `audit()`, every key handed to a `jax.random` sampler or to `split` is recorded with the
place in the project that handed it over (the innermost frame in `amf/`, `experiments/` or
`tests/`, outside the key helpers), through `jax.debug.callback`, so it works under `jit`,
`vmap` (one record per element), `scan` and `grad`. A place is one consumer: it may receive
the same key more than once (the same kernel or estimate computed again, a task's value-keyed
draws), but no two places may receive the same key.
"""
import collections
import contextlib
import pathlib
import traceback

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
_PROJECT = tuple(str(ROOT / d) for d in ("amf", "experiments", "tests"))
_HELPERS = (str(ROOT / "amf" / "keys.py"), str(ROOT / "tests" / "key_audit.py"))
# The public functions that consume a key (the samplers) or derive keys from it (split).
_CONSUMERS = ("normal", "uniform", "choice", "randint", "permutation", "bernoulli", "bits",
              "categorical", "truncated_normal", "gumbel", "split")


def _site() -> str:
  for frame in reversed(traceback.extract_stack()):
    if frame.filename.startswith(_PROJECT) and frame.filename not in _HELPERS:
      return f"{pathlib.Path(frame.filename).relative_to(ROOT)}:{frame.lineno}"
  return "outside the project"


@contextlib.contextmanager
def audit():
  """Yields `uses`: raw key bytes -> the set of places that received that key."""
  uses = collections.defaultdict(set)
  originals = {name: getattr(jax.random, name) for name in _CONSUMERS}

  def recording(fn):
    def consume(key, *args, **kwargs):
      site = _site()
      raw = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
      jax.debug.callback(lambda k: uses[np.asarray(k).tobytes()].add(site), raw)
      return fn(key, *args, **kwargs)
    return consume

  jax.clear_caches()  # programs traced before the audit would not record
  for name, fn in originals.items():
    setattr(jax.random, name, recording(fn))
  try:
    yield uses
  finally:
    for name, fn in originals.items():
      setattr(jax.random, name, fn)
    jax.clear_caches()


def collisions(uses) -> list[set]:
  """The sets of places that received one same key (empty when the rule holds)."""
  return [sites for sites in uses.values() if len(sites) > 1]
