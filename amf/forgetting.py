"""Mitigations of forgetting when fine-tuning a pre-trained NN policy (docs/design.md §3), by name.

Every mitigation has one interface, `Mitigation`: `init(pretrained_params, key) -> state`,
`finetune(state, pretrain_data, new_data, key, num_steps) -> state`, `act(state, obs, phi)`,
`log_prob(state, obs, phi, action)` and `kernel_params(state)`, the weights of the one policy
network whose kernel models the uncertainty (`amf.nn_kernels`). `make(name, ...)` builds one
by name with its own options only (e.g. `penalty` for `adaptive_prior`, `num_cells` for
`isolation`); a new mode is a class with that interface registered in `MODES`. Every state keeps the
pre-trained parameters as `prior`, which no mitigation ever trains. The optimiser state carries
over between fine-tuning rounds.

- `none`: BC on the new demonstrations only.
- `replay`: BC on the pre-training and new demonstrations together (uniform over their pairs).
- `adaptive_prior`: deploys `gate(c) f_theta + (1 - gate(c)) f_0` with `f_0` the frozen
  pre-trained policy and `gate(c) = sigmoid(net(phi(c)))` a small net; the policy head blends
  the two (`head.blend`: the two means for the fixed-std head, the mixture of the two action
  distributions for the categorical one, whose mean is the same blend of means). `theta` is fitted by
  plain BC on the pre-training and new demonstrations together (as `replay`); then the gate by
  the BC loss of the mixture on the new demonstrations (with `f_theta` held fixed) plus
  `penalty * mean gate` over the new pairs' tasks *and* the pre-training demonstrations'
  tasks, which keeps the gate small where the new data do not call for change. Training
  `theta` through the mixture would let `f_theta` grow as `1 / gate` and undo the penalty.
  Fitting `theta` to the new demonstrations alone left it worse than `f_0` wherever it saw
  few of them: on reacher with uniform pre-training, a penalty that let the gate open lost
  half of the pre-trained success, and one that held it shut learned nothing.
- `isolation`: the finite task set is cut into `num_cells` contiguous runs of task indices; each
  cell has its own fine-tuned copy of the weights, trained (vmapped over cells) on its cell's
  demonstrations only. A task, finite or not, belongs to the cell of the nearest finite task
  by features, so acting needs only `phi(c)`.
"""
from typing import Any, Callable, NamedTuple, Protocol, Sequence

import jax
import jax.numpy as jnp
import optax

from amf import bc
from amf.data import Dataset, concat
from amf.envs.base import MultiTaskEnv
from amf.nn_policy import MLP, NNPolicy
from amf.registry import lookup


class State(NamedTuple):
  params: Any     # what fine-tuning trains
  opt_state: Any
  prior: Any      # the pre-trained policy's parameters, frozen


class Mitigation(Protocol):
  """How a pre-trained policy is fine-tuned and deployed (see the module docstring)."""
  optimizer: optax.GradientTransformation
  batch_size: int
  decay: str

  def init(self, pretrained_params, key: jax.Array) -> State: ...
  def finetune(self, state: State, pretrain_data: Dataset, new_data: Dataset, key: jax.Array,
               num_steps: int) -> State: ...
  def act(self, state: State, obs, phi) -> jax.Array: ...
  def log_prob(self, state: State, obs, phi, action) -> jax.Array: ...
  def kernel_params(self, state: State) -> Any: ...


class Plain(NamedTuple):
  """`none` (`replay=False`) and `replay` (`replay=True`): fine-tune all weights by BC."""
  policy: NNPolicy
  optimizer: optax.GradientTransformation
  features_fn: Callable[[jax.Array], jax.Array]
  batch_size: int = 256
  decay: str = "constant"  # learning-rate decay within each fine-tuning (`bc.DECAYS`)
  replay: bool = False

  def init(self, pretrained_params, key: jax.Array) -> State:
    del key  # Nothing random: fine-tuning starts from the pre-trained weights.
    return State(pretrained_params, self.optimizer.init(pretrained_params), pretrained_params)

  def finetune(self, state: State, pretrain_data: Dataset, new_data: Dataset, key: jax.Array,
               num_steps: int) -> State:
    data = concat(pretrain_data, new_data) if self.replay else new_data
    trainer = bc.Trainer(bc.policy_loss(self.policy), self.optimizer, self.batch_size, self.decay)
    params, opt_state, _ = trainer.train(state.params, state.opt_state, data, self.features_fn,
                                         key, num_steps)
    return State(params, opt_state, state.prior)

  def act(self, state: State, obs, phi):
    return self.policy.act(state.params, obs, phi)

  def kernel_params(self, state: State):
    return state.params

  def log_prob(self, state: State, obs, phi, action):
    return self.policy.log_prob(state.params, obs, phi, action)


class AdaptivePrior(NamedTuple):
  """`gate(c) f_theta + (1 - gate(c)) f_0`; `state.params = {'theta': ..., 'gate': ...}`."""
  policy: NNPolicy
  optimizer: optax.GradientTransformation
  features_fn: Callable[[jax.Array], jax.Array]
  batch_size: int = 256
  decay: str = "constant"  # learning-rate decay within each fine-tuning (`bc.DECAYS`)
  penalty: float = 0.01
  gate_hidden: Sequence[int] = (32,)

  @property
  def gate_net(self) -> MLP:
    return MLP(tuple(self.gate_hidden), 1)

  def _gate_logit(self, gate_params, phi: jax.Array) -> jax.Array:
    return self.gate_net.apply(gate_params, phi)[..., 0]

  def _gate(self, gate_params, phi: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(self._gate_logit(gate_params, phi))

  def gate(self, state: State, phi: jax.Array) -> jax.Array:
    """`gate(c)` in [0, 1], shape `phi.shape[:-1]`."""
    return self._gate(state.params["gate"], phi)

  def _outputs(self, params, prior, obs, phi):
    """The head's outputs of the blended policy."""
    return self.policy.head.blend(self._gate_logit(params["gate"], phi),
                                  self.policy.outputs(params["theta"], obs, phi),
                                  self.policy.outputs(prior, obs, phi))

  def _gate_loss(self, gate_params, frozen, batch: bc.Pairs):
    theta, prior, anchor_phi, anchor_weight = frozen
    params = {"theta": theta, "gate": gate_params}
    mixture = bc.head_loss(self.policy.head,
                           lambda p, _, obs, phi: self._outputs(p, prior, obs, phi))
    gate = lambda phi: self._gate(gate_params, phi)
    return (mixture(params, None, batch)
            + self.penalty * (bc.masked_mean(gate(batch.phi), batch.weight)
                              + bc.masked_mean(gate(anchor_phi), anchor_weight)))

  def init(self, pretrained_params, key: jax.Array) -> State:
    # The prior is passed as `frozen`, outside the trained pytree, so nothing ever updates it.
    # The gate starts near 1/2, so the first round's data can move it either way.
    params = {"theta": pretrained_params,
              "gate": self.gate_net.init(key, jnp.zeros(self.policy.feature_size))}
    # One optimiser state per part: the two are trained one after the other.
    return State(params, {name: self.optimizer.init(p) for name, p in params.items()},
                 pretrained_params)

  def finetune(self, state: State, pretrain_data: Dataset, new_data: Dataset, key: jax.Array,
               num_steps: int) -> State:
    k_theta, k_gate = jax.random.split(key)
    own = bc.Trainer(bc.policy_loss(self.policy), self.optimizer, self.batch_size, self.decay)
    theta, theta_opt, _ = own.train(state.params["theta"], state.opt_state["theta"],
                                    concat(pretrain_data, new_data), self.features_fn, k_theta,
                                    num_steps)
    # The pre-training demonstrations' tasks anchor the gate.
    anchors = (jax.vmap(self.features_fn)(pretrain_data.task),
               pretrain_data.mask.astype(jnp.float32))
    trainer = bc.Trainer(self._gate_loss, self.optimizer, self.batch_size, self.decay)
    gate, gate_opt, _ = trainer.train(state.params["gate"], state.opt_state["gate"], new_data,
                                      self.features_fn, k_gate, num_steps,
                                      frozen=(theta, state.prior, *anchors))
    return State({"theta": theta, "gate": gate}, {"theta": theta_opt, "gate": gate_opt},
                 state.prior)

  def act(self, state: State, obs, phi):
    return self.policy.head.mean(self._outputs(state.params, state.prior, obs, phi))

  def log_prob(self, state: State, obs, phi, action):
    return self.policy.head.log_prob(self._outputs(state.params, state.prior, obs, phi), action)

  def kernel_params(self, state: State):
    return state.params["theta"]  # the part fine-tuning changes


class Isolation(NamedTuple):
  """One copy of the weights per cell of tasks; `state.params` stacks them on a leading axis.

  `task_features` is `(num_tasks, feature_size)`: `phi` of the finite task set, in task order.
  """
  policy: NNPolicy
  optimizer: optax.GradientTransformation
  features_fn: Callable[[jax.Array], jax.Array]
  batch_size: int = 256
  decay: str = "constant"  # learning-rate decay within each fine-tuning (`bc.DECAYS`)
  task_features: jax.Array = None
  num_cells: int = 4

  def cell(self, phi: jax.Array) -> jax.Array:
    """The cell (shape `phi.shape[:-1]`) of the finite task nearest to `phi`."""
    num_tasks = self.task_features.shape[0]
    dist = jnp.sum((phi[..., None, :] - self.task_features) ** 2, -1)
    return jnp.argmin(dist, -1) * self.num_cells // num_tasks

  def init(self, pretrained_params, key: jax.Array) -> State:
    del key
    params = jax.tree.map(lambda p: jnp.broadcast_to(p, (self.num_cells,) + p.shape),
                          pretrained_params)
    return State(params, jax.vmap(self.optimizer.init)(params), pretrained_params)

  def finetune(self, state: State, pretrain_data: Dataset, new_data: Dataset, key: jax.Array,
               num_steps: int) -> State:
    del pretrain_data
    trainer = bc.Trainer(bc.policy_loss(self.policy), self.optimizer, self.batch_size, self.decay)
    demo_cell = self.cell(jax.vmap(self.features_fn)(new_data.task))

    def one(cell, params, opt_state, key):
      mask = new_data.mask & (demo_cell == cell)
      new_params, new_opt, _ = trainer.train(params, opt_state, new_data._replace(mask=mask),
                                             self.features_fn, key, num_steps)
      # A cell without data keeps its weights and optimiser state exactly (no momentum drift).
      keep = lambda new, old: jnp.where(mask.any(), new, old)
      return jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_opt, opt_state)

    params, opt_state = jax.vmap(one)(jnp.arange(self.num_cells), state.params, state.opt_state,
                                      jax.random.split(key, self.num_cells))
    return State(params, opt_state, state.prior)

  def _outputs(self, state: State, obs, phi):
    # Every cell's outputs, then the task's cell's: batch-friendly without a gather of weights.
    outs = jax.vmap(lambda p: self.policy.outputs(p, obs, phi))(state.params)  # (K, ..., w)
    cell = self.cell(jnp.broadcast_to(phi, obs.shape[:-1] + phi.shape[-1:]))
    pick = jax.nn.one_hot(cell, self.num_cells)[..., None]  # (..., K, 1)
    return jnp.sum(pick * jnp.moveaxis(outs, 0, -2), -2)

  def act(self, state: State, obs, phi):
    return self.policy.head.mean(self._outputs(state, obs, phi))

  def log_prob(self, state: State, obs, phi, action):
    return self.policy.head.log_prob(self._outputs(state, obs, phi), action)

  def kernel_params(self, state: State):
    return state.prior  # every cell starts from it; no one cell speaks for all tasks


# name -> (class, the settings the name fixes)
MODES = {
    "none": (Plain, dict(replay=False)),
    "replay": (Plain, dict(replay=True)),
    "adaptive_prior": (AdaptivePrior, {}),
    "isolation": (Isolation, {}),
}
_GIVEN = ("policy", "optimizer", "features_fn", "batch_size", "decay", "task_features")


def options(name: str) -> tuple[str, ...]:
  """The options mitigation `name` takes."""
  cls, fixed = lookup(MODES, name, "forgetting mitigation")
  return tuple(f for f in cls._fields if f not in _GIVEN and f not in fixed)


def option_defaults(name: str) -> dict:
  """The options mitigation `name` takes, with their defaults (a config's starting values)."""
  cls = MODES[name][0]
  return {option: cls._field_defaults[option] for option in options(name)}


def make(name: str, env: MultiTaskEnv, policy: NNPolicy, optimizer: optax.GradientTransformation,
         batch_size: int = 256, decay: str = "constant", **settings) -> Mitigation:
  """The mitigation `name` for `env`'s tasks; `settings` are its own options (`options`)."""
  cls, fixed = lookup(MODES, name, "forgetting mitigation")
  unknown = sorted(set(settings) - set(options(name)))
  if unknown:
    raise ValueError(f"Forgetting mitigation {name!r} takes the options {list(options(name))}, "
                     f"not {unknown}.")
  if "task_features" in cls._fields:
    fixed = {**fixed, "task_features": jax.vmap(env.task_features)(env.tasks)}
  return cls(policy, optimizer, env.task_features, batch_size, bc.check_decay(decay), **fixed,
             **settings)
