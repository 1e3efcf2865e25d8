"""AMF-NN's learner: a BC-trained network policy and a GP whose kernel approximates it.

A learner of `amf.active`: `init` pre-trains the policy by BC from scratch and wraps it in a
forgetting mitigation (`amf.forgetting`); `update` fine-tunes after each round; `covariance`
is the posterior covariance of a GP whose kernel (one of `kernels`, picked by index with
`lax.switch`) is computed from the current network (`amf.nn_kernels`) over the demonstrations
and the scored inputs together, then handed to tinygp as a precomputed Gram matrix.

Network kernels have arbitrary scales, so the Gram matrix is divided by its mean diagonal
over the demonstrations in play: `noise` is then relative to the model's prior variance. The
scale is the data's, not the query's, so the model of the expert does not depend on which
inputs are asked about (AMF's shared finite-set path and its joint path give equal scores).
"""
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import optax

from amf import bc, forgetting, gp, nn_kernels
from amf.data import Dataset, dataset_inputs
from amf.envs.base import MultiTaskEnv
from amf.nn_policy import NNPolicy, make_policy


class NNLearner(NamedTuple):
  env: MultiTaskEnv
  policy: NNPolicy
  mitigation: Any               # a mode of `amf.forgetting`; holds the optimiser
  kernels: tuple[str, ...]      # names in `amf.nn_kernels.KERNELS`
  noise: float                  # GP observation noise std, relative to the prior's scale
  pretrain_steps: int
  finetune_steps: int
  hyper: nn_kernels.Hyper = nn_kernels.Hyper()
  fit_noise: bool = False       # noise of maximal marginal likelihood each round instead

  def init(self, data: Dataset, key: jax.Array):
    """BC from a random initialisation on the filled slots of `data`, then the mitigation."""
    k_pre, k_init = jax.random.split(key)
    m = self.mitigation
    params, _, _ = bc.pretrain(self.policy, m.optimizer, data, self.env.task_features, k_pre,
                               self.pretrain_steps, m.batch_size, m.decay)
    return m.init(params, k_init)

  def update(self, state, pretrain: Dataset, new: Dataset, key: jax.Array):
    return self.mitigation.finetune(state, pretrain, new, key, self.finetune_steps)

  def act(self, state, obs, task_features):
    return self.mitigation.act(state, obs, task_features)

  def log_prob(self, state, obs, task_features, action):
    return self.mitigation.log_prob(state, obs, task_features, action)

  def kernel_fn(self, state, key: jax.Array, kernel):
    """`(x1, x2) -> K(x1, x2)` of kernel number `kernel` at the current network."""
    spec = nn_kernels.network_spec(self.policy.module, self.policy.head)
    params = self.mitigation.kernel_params(state)
    branches = [functools.partial(nn_kernels.get(name), spec, params, hyper=self.hyper)
                for name in self.kernels]
    return lambda x1, x2: jax.lax.switch(kernel, [lambda f=f: f(x1, x2, key)
                                                  for f in branches])

  def gram(self, state, points: jax.Array, key: jax.Array, kernel) -> jax.Array:
    """`K(points, points)` of kernel number `kernel` at the current network."""
    return self.kernel_fn(state, key, kernel)(points, points)

  @staticmethod
  def _scale(diag: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean prior variance over the demonstrations in play (1 without any)."""
    return jnp.where(mask.any(), jnp.sum(jnp.where(mask, diag, 0.0)) / jnp.maximum(
        mask.sum(), 1), 1.0)

  def _noise(self, gram: jax.Array, data: Dataset) -> jax.Array:
    """The round's observation noise std: `noise`, or with `fit_noise` the one of maximal
    marginal likelihood of the demonstrations' actions (`gp.fit_noise`) under `gram` (their
    scaled Gram matrix)."""
    if not self.fit_noise:
      return jnp.asarray(self.noise)
    _, actions, mask = dataset_inputs(self.env, data)
    return gp.fit_noise(gram, actions, mask)

  def covariance(self, state, data: Dataset, query: jax.Array, key: jax.Array,
                 kernel: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    inputs, _, mask = dataset_inputs(self.env, data)
    n = inputs.shape[0]
    points = jnp.concatenate([inputs, query])
    gram = self.gram(state, points, key, kernel)
    diag = jnp.diag(gram)
    # Without demonstrations (none in play) the query's scale stands in.
    scale = jnp.where(mask.any(), self._scale(diag[:n], mask), jnp.mean(diag[n:]))
    gram = gram / scale + nn_kernels.JITTER * jnp.eye(points.shape[0])
    noise = self._noise(gram[:n, :n], data)
    index = jnp.arange(points.shape[0])
    kernel = gp.Precomputed(gram)
    return (gp.posterior_covariance(kernel, index[:n], mask, noise, index[n:]),
            gp.prior_variance(kernel, index[n:]), noise)

  def model(self, state, data: Dataset, key: jax.Array, kernel: jax.Array) -> gp.Model:
    """The same GP model of the expert, factorised once over `data` (`gp.Model`), for query
    sets scored one after another. Inductive kernels only: a transductive one (`random_walk`)
    depends on every input of a call, so it needs `covariance`'s one joint Gram matrix."""
    inputs, _, mask = dataset_inputs(self.env, data)
    fn = self.kernel_fn(state, key, kernel)
    gram = fn(inputs, inputs)
    scale = self._scale(jnp.diag(gram), mask)
    gram = gram / scale
    noise = self._noise(gram + nn_kernels.JITTER * jnp.eye(inputs.shape[0]), data)
    return gp.model(gp.Function(lambda x1, x2: fn(x1, x2) / scale), inputs, mask, noise,
                    nn_kernels.JITTER, gram)

  def check_kernels(self, state, data: Dataset, key: jax.Array) -> None:
    """Raises a ValueError naming any kernel whose Gram matrix on `data` is not finite.

    Call it on one pre-trained run before a long sweep; inside the loop it could not raise.
    """
    inputs, _, mask = dataset_inputs(self.env, data)
    points = inputs[np.flatnonzero(np.asarray(mask))]
    for i, name in enumerate(self.kernels):
      nn_kernels.check_kernel(jax.jit(self.gram)(state, points, key, i), name)


@dataclasses.dataclass(frozen=True)
class Spec:
  """What describes an NN learner, as typed values: an experiment builds it from its config
  (`from_config`: `configs/testbed.py`, `configs/active_finetune.py`), `amf.suggest` stores it
  as JSON (`to_dict`)."""
  hidden: tuple[int, ...]
  action_std: float
  forgetting: str
  forgetting_options: dict  # mode -> its options (`amf.forgetting.options`)
  learning_rate: float
  bc_batch_size: int
  lr_decay: str
  kernels: tuple[str, ...]
  noise: float
  fit_noise: bool
  pretrain_steps: int
  finetune_steps: int
  kernel_hyper: dict        # `amf.nn_kernels.Hyper`'s fields
  head: str = "fixed_std"   # a policy saved before heads existed has none

  @classmethod
  def from_config(cls, config) -> "Spec":
    """The learner's fields of `config` (a ConfigDict or a mapping, e.g. a `to_dict`), with
    sequences as tuples at every depth, so a spec read back from JSON equals the original."""
    fields = dataclasses.fields(cls)
    missing = [f.name for f in fields if f.name not in config
               and f.default is dataclasses.MISSING]
    if missing:
      raise ValueError(f"a learner needs the field(s) {missing}")
    given = {f.name: _nested(config[f.name], tuple) for f in fields if f.name in config}
    return cls(**{**given, "fit_noise": bool(given["fit_noise"])})

  def to_dict(self) -> dict:
    """Plain JSON-able values (sequences as lists)."""
    return _nested(dataclasses.asdict(self), list)


def _nested(value, sequence):
  """`value` with every mapping a dict and every sequence of type `sequence`, at every depth."""
  if hasattr(value, "items"):
    return {k: _nested(v, sequence) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return sequence(_nested(v, sequence) for v in value)
  return value


def make(spec: Spec, env: MultiTaskEnv) -> NNLearner:
  """The learner `spec` describes; unknown policy heads, forgetting modes or options are
  refused here."""
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size,
                       spec.hidden, spec.action_std, spec.head)
  options = dict(spec.forgetting_options.get(spec.forgetting, {}))
  mitigation = forgetting.make(spec.forgetting, env, policy, optax.adam(spec.learning_rate),
                               spec.bc_batch_size, spec.lr_decay, **options)
  return NNLearner(env, policy, mitigation, spec.kernels, spec.noise, spec.pretrain_steps,
                   spec.finetune_steps, nn_kernels.Hyper(**spec.kernel_hyper), spec.fit_noise)
