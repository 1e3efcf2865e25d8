"""A lab's own flax network as the policy `amf.suggest` asks about.

The protocol is `FlaxPolicy`: three things, and nothing to rewrite in the network.

- `module`, any flax module that maps one input `x = (obs, phi(c))` (d,) to the head's raw
  outputs (`module.apply(params, x)`), `@nn.compact` or `setup` alike;
- `last_layer`, the name of its last Dense layer, a direct submodule (`params["params"]
  [last_layer]`): the features the kernels read are that layer's input, taken by intercepting
  its call (`nn.intercept_methods`), so the module needs no `features` method;
- `head`, the action log-likelihood given the raw outputs: an `amf.nn_policy` head,
  `FixedStd(action_size, std)` (Gaussian around the outputs) or `Categorical(action_size)`.

Its parameters are the learner's state. `learner(policy, env, kernels)` is the learner
`amf.suggest` uses (`FlaxLearner`: `amf.nn_learner.NNLearner`'s GP over the network's kernel,
with the network's spec from the protocol). Kernels that need more than the protocol gives
(`dropout`'s dropout layers, `ntk_inf` / `nngp_inf`'s MLP architecture) are refused.

The command reads such a policy from a directory written by `save`: `policy.json` names a
function that builds the `FlaxPolicy` (`"network": "package.module:function"`, called with
`observation_size`, `task_feature_size`, `action_size` and the saved `network_kwargs`), the
sizes, the horizon, the task space (`amf.task_sets.from_spec`) and the kernels; `state/` holds
the parameters (orbax).
"""
import functools
import importlib
from typing import Any, NamedTuple

import flax.linen as nn
import jax

from amf import nn_kernels, nn_learner
from amf.envs.base import MultiTaskEnv
from amf.nn_policy import Head
from amf.policies import policy_inputs

# Kernels the protocol supports: those that need the network's outputs, its last layer's
# input, its last layer's parameters, or nothing of it.
KERNELS = ("loss_gradient", "last_layer", "ntk", "linear", "random_walk", "rbf")


class FlaxPolicy(NamedTuple):
  """A flax network, the name of its last Dense layer and its action likelihood (above)."""
  module: nn.Module
  last_layer: str
  head: Head

  def outputs(self, params, x):
    return self.module.apply(params, x)

  def features(self, params, x):
    """The last layer's input at `x` (d,): the penultimate features."""
    seen = []

    def grab(call, args, kwargs, context):
      if context.method_name == "__call__" and context.module.path == (self.last_layer,):
        seen.append(args[0])
      return call(*args, **kwargs)

    with nn.intercept_methods(grab):
      self.module.apply(params, x)
    if not seen:
      raise ValueError(f"the network has no layer {self.last_layer!r} among its direct "
                       "submodules (FlaxPolicy.last_layer names its last Dense layer).")
    return seen[0]

  def spec(self) -> nn_kernels.NetworkSpec:
    def no_dropout(*args):
      raise ValueError("the dropout kernel needs the network's dropout layers.")
    return nn_kernels.NetworkSpec(
        apply=lambda params, x: self.head.mean(self.outputs(params, x)),
        features=self.features, dropout_apply=no_dropout, last_layer=self.last_layer,
        hidden=(), action_size=self.head.action_size, outputs=self.outputs, head=self.head)


class Frozen(NamedTuple):
  """The policy as `NNLearner`'s mitigation: its state is the parameters, never trained."""
  policy: FlaxPolicy

  def act(self, params, obs, phi):
    return self.policy.head.mean(self.policy.outputs(params, policy_inputs(obs, phi)))

  def log_prob(self, params, obs, phi, action):
    return self.policy.head.log_prob(self.policy.outputs(params, policy_inputs(obs, phi)),
                                     action)

  def kernel_params(self, params):
    return params


class FlaxLearner(nn_learner.NNLearner):
  """`NNLearner` over a `FlaxPolicy`: its kernels read the protocol's network spec."""

  def kernel_fn(self, state, key: jax.Array, kernel):
    spec = self.policy.spec()
    branches = [functools.partial(nn_kernels.get(name), spec, state, hyper=self.hyper)
                for name in self.kernels]
    return lambda x1, x2: jax.lax.switch(kernel, [lambda f=f: f(x1, x2, key)
                                                  for f in branches])

  def init(self, data, key):
    raise TypeError("a FlaxPolicy is trained by its lab; amf.suggest only asks.")

  update = init


def learner(policy: FlaxPolicy, env: MultiTaskEnv, kernels=("loss_gradient",),
            noise: float = 0.1, hyper: nn_kernels.Hyper = nn_kernels.Hyper(),
            fit_noise: bool = False) -> FlaxLearner:
  """The learner `amf.suggest` uses for `policy` on `env`'s tasks (its state: the params)."""
  bad = [k for k in kernels if k not in KERNELS]
  if bad or not kernels:
    raise ValueError(f"kernels {list(bad) or list(kernels)} are not available for an own "
                     f"network; choose from {list(KERNELS)}.")
  if policy.head.action_size != env.action_size:
    raise ValueError(f"the policy's head acts in {policy.head.action_size} dimensions; the "
                     f"demonstrations' actions have {env.action_size}.")
  x = jax.ShapeDtypeStruct((env.observation_size + env.task_feature_size,), "float32")
  params = like(policy, x.shape[0])
  out = jax.eval_shape(policy.outputs, params, x).shape
  if out != (policy.head.width,):
    raise ValueError(f"the network's outputs have shape {out}; its head "
                     f"({policy.head.name}) reads ({policy.head.width},).")
  jax.eval_shape(policy.features, params, x)  # refuses a last_layer it does not have
  return FlaxLearner(env, policy, Frozen(policy), tuple(kernels), noise, 0, 0, hyper,
                     fit_noise)


def build(network: str, observation_size: int, task_feature_size: int, action_size: int,
          **network_kwargs) -> FlaxPolicy:
  """The `FlaxPolicy` that the function `network` ("package.module:function") builds."""
  name, _, attr = network.partition(":")
  try:
    fn = getattr(importlib.import_module(name), attr)
  except (ImportError, AttributeError, ValueError) as e:
    raise ValueError(f"network {network!r} does not import ({type(e).__name__}: {e}); name "
                     "a function as package.module:function.") from None
  policy = fn(observation_size=observation_size, task_feature_size=task_feature_size,
              action_size=action_size, **network_kwargs)
  if not isinstance(policy, FlaxPolicy):
    raise ValueError(f"network {network!r} returned a {type(policy).__name__}, not an "
                     "amf.flax_policy.FlaxPolicy.")
  return policy


def like(policy: FlaxPolicy, input_size: int) -> Any:
  """The shapes of the policy's parameters (to restore them)."""
  return jax.eval_shape(policy.module.init, jax.random.PRNGKey(0),
                        jax.ShapeDtypeStruct((input_size,), "float32"))
