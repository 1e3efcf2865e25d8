"""Kernels that approximate a neural policy, registered by name (docs/design.md §3, ablation 2).

Every kernel has one signature,

  kernel_fn(net, params, x1, x2, key, hyper=Hyper()) -> K  # x1 (n, d), x2 (m, d), K (n, m)

with `net` a `NetworkSpec`, `params` the network's current parameters and `key` the randomness
of the stochastic kernels (dropout masks; ignored by the others). The GP over the
policy's outputs shares one scalar kernel across action dimensions: where a kernel is defined
per output, `K` is its mean over the `a` outputs (trace / a).

Positive semi-definiteness holds in exact arithmetic, but `loss_gradient`, `last_layer`, `ntk`
and `dropout` are low rank, so factorise `K + JITTER * mean(diag K) * I` (see `check_kernel`).

`loss_gradient`, derived. The BC loss of our fixed-std Gaussian head is
`l(x, y) = 0.5 ||y - f(x)||^2` (up to scale and a constant), with `f(x) = W^T phi(x) + b` the
last Dense layer on the penultimate features `phi`. Its gradient in the head's parameters
`theta = (W, b)` is `-(y - f(x))^T J(x)`, with `J(x) = df(x)/dtheta` (a, P), which does not
depend on the label. The expert's labels are unknown when scoring, so they are drawn from the
current policy, `y = f(x) + sigma * eps`, with one `eps ~ N(0, I_a)` per draw shared by every
input (labels drawn independently per input make distinct inputs uncorrelated in
expectation: white noise plus exact repeats, not a kernel of the network). Then

  g(x) . g(x') = sigma^2 eps^T J(x) J(x')^T eps,
  E_eps[g(x) . g(x')] / a = sigma^2 tr(J(x) J(x')^T) / a,

`sigma^2` times the empirical tangent kernel of the last layer alone, averaged over outputs:
a deterministic function of the network and the inputs, computed here in closed form with
neural-tangents. For the Dense head `J_a(x) . J_a(x') = phi(x) . phi(x') + 1` for every output
`a`, so

  loss_gradient(x, x') = sigma^2 (phi(x) . phi(x') + 1),

`last_layer` plus a bias feature, up to the scale `sigma^2`. Even a single draw gives
`sigma^2 |eps|^2 (phi . phi' + 1) / a`, the same matrix up to a scale, so once the learner
divides the Gram matrix by its mean diagonal every draw gives exactly this kernel. For this
head the paper's distinction between the loss-gradient and the last-layer kernel is a bias
feature; a real difference needs a head whose gradient depends on the label.

The `categorical` head (`amf.nn_policy`) is one. Its log-likelihood of bin `k` of action
dimension `d` has gradient `(onehot(k) - p_d(x)) (x) (phi(x), 1)` in the last layer's logits of
`d`, so for any head on a Dense layer

  g(x) . g(x') = (phi(x) . phi(x') + 1) sum_d (onehot(k_d(x)) - p_d(x)) . (onehot(k_d(x')) - p_d(x')).

Labels drawn jointly, one uniform `u_d` per action dimension shared by every input and
`k_d(x) = F_{x,d}^{-1}(u_d)` through each input's CDF `F` (the Gaussian head's shared `eps` is
the same coupling), give in expectation

  loss_gradient(x, x') = (phi(x) . phi(x') + 1) mean_d [O_d(x, x') - p_d(x) . p_d(x')],
  O_d(x, x') = P(k_d(x) = k_d(x')) = sum_j max(0, min(F_j, F'_j) - max(F_{j-1}, F'_{j-1})):

the last-layer kernel times the covariance of the two inputs' one-hot labels, which is
`1 - |p|^2` on the diagonal and near 0 between inputs predicting different bins, whatever
their features (docs/design.md §3).
"""
import dataclasses
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from tinygp import kernels as tinygp_kernels

from amf import registry
from amf.nn_policy import MLP, Head, make_head
from amf.nt import empirical_ntk_fn, stax

# Relative jitter to add to a Gram matrix before a Cholesky factorisation: `K + JITTER *
# mean(diag K) * I`. It lifts the float32 round-off of the low-rank kernels above zero.
JITTER = 1e-6


class NetworkSpec(NamedTuple):
  """What the kernels need of a policy network; each function maps one input x (d,)."""
  apply: Callable          # (params, x) -> action mean (a,)
  features: Callable       # (params, x) -> penultimate-layer features (h,)
  dropout_apply: Callable  # (params, x, key, rate) -> action mean with hidden-unit dropout
  last_layer: str          # name of the last Dense layer in params["params"]
  hidden: tuple            # hidden widths, for the infinite-width kernels
  action_size: int
  outputs: Callable        # (params, x) -> the head's raw outputs (the last layer's)
  head: Head               # the policy head (`amf.nn_policy`): what `loss_gradient` reads


def network_spec(module: MLP, head: Head) -> NetworkSpec:
  """The `NetworkSpec` of an `amf.nn_policy.MLP` under policy head `head`."""
  return NetworkSpec(
      apply=lambda params, x: head.mean(module.apply(params, x)),
      features=lambda params, x: module.apply(params, x, method=MLP.features),
      dropout_apply=lambda params, x, key, rate: head.mean(module.apply(
          params, x, rate, rngs={"dropout": key})),
      last_layer="head",
      hidden=tuple(module.hidden),
      action_size=head.action_size,
      outputs=module.apply,
      head=head)


def mlp_spec(hidden: Sequence[int] = (64, 64), action_size: int = 1, head: str = "fixed_std"):
  """An `MLP` with policy head `head` and its `NetworkSpec`. Initialise it with
  `module.init(key, x)`, x (d,)."""
  h = make_head(head, action_size, 1.0)  # the kernels never read the fixed-std head's std
  module = MLP(tuple(hidden), h.width)
  return module, network_spec(module, h)


@dataclasses.dataclass(frozen=True)
class Hyper:
  """Hyper-parameters of the kernels (each kernel reads only its own)."""
  sigma: float = 1.0         # loss_gradient, fixed_std head: std of the pseudo-labels (a scale)
  w_std: float = 1.0         # ntk_inf, nngp_inf, linear: weight std (NTK parameterisation)
  b_std: float = 0.0         # ntk_inf, nngp_inf, linear: bias std (flax inits biases at 0)
  k: int = 5                 # random_walk: neighbours per node (capped at #nodes - 1)
  a: float = 2.0             # random_walk: a >= 2 makes (a I - L) PSD (eig(L) in [0, 2])
  p: int = 2                 # random_walk: number of random-walk steps
  dropout_rate: float = 0.1  # dropout: drop probability of each hidden unit
  samples: int = 32          # dropout: number of MC-dropout masks
  lengthscale: float = 1.0   # rbf


def _fixed_std_loss_gradient(net, params, x1, x2, hyper):
  """`sigma^2` times the last layer's tangent kernel."""
  def head_only(head, x):
    full = {**params, "params": {**params["params"], net.last_layer: head}}
    return jax.vmap(net.apply, in_axes=(None, 0))(full, x)

  fn = empirical_ntk_fn(head_only, trace_axes=(-1,), vmap_axes=0)
  return hyper.sigma ** 2 * fn(x1, x2, params["params"][net.last_layer])


def _label_covariance(cdf1, cdf2):
  """`mean_d O_d - p_d . p'_d` of one input's CDFs `cdf1` (a, K) against `cdf2` (m, a, K)."""
  below = lambda cdf: jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf[..., :-1]], -1)
  overlap = jax.nn.relu(jnp.minimum(cdf1, cdf2) - jnp.maximum(below(cdf1), below(cdf2)))
  p1, p2 = cdf1 - below(cdf1), cdf2 - below(cdf2)
  return jnp.mean(jnp.sum(overlap - p1 * p2, -1), -1)


def _categorical_loss_gradient(net, params, x1, x2, hyper):
  """`(phi . phi' + 1)` times the covariance of the jointly drawn one-hot labels."""
  del hyper  # the labels' spread is the head's own: no scale to choose
  features = jax.vmap(net.features, in_axes=(None, 0))
  cdf = lambda x: net.head.cdf(jax.vmap(net.outputs, in_axes=(None, 0))(params, x))
  cdf2 = cdf(x2)
  # Row blocks of x1 keep the (rows, m, a, K) intermediate small at thousands of inputs.
  cov = jax.lax.map(lambda c: _label_covariance(c, cdf2), cdf(x1), batch_size=32)
  return (features(params, x1) @ features(params, x2).T + 1.0) * cov


# head name -> its loss-gradient kernel `(net, params, x1, x2, hyper) -> K`
LOSS_GRADIENTS = {"fixed_std": _fixed_std_loss_gradient,
                  "categorical": _categorical_loss_gradient}


def loss_gradient(net, params, x1, x2, key, hyper=Hyper()):
  """Expected inner product of last-layer gradients of the head's BC loss at pseudo-labels
  drawn jointly from the policy, in closed form (derived above, per head)."""
  del key  # an expectation, in closed form: nothing is drawn
  return LOSS_GRADIENTS[net.head.name](net, params, x1, x2, hyper)


def last_layer(net, params, x1, x2, key, hyper=Hyper()):
  """Inner product of penultimate-layer features (the same for every output)."""
  del key, hyper
  features = jax.vmap(net.features, in_axes=(None, 0))
  return features(params, x1) @ features(params, x2).T


def ntk(net, params, x1, x2, key, hyper=Hyper()):
  """Empirical NTK of the network at `params`, averaged over outputs.

  neural-tangents' `trace_axes` already divides the trace by the number of outputs.
  `vmap_axes=0` tells it that the inputs are independent examples, so it takes per-example
  Jacobians: memory linear in the number of points instead of quadratic (the same Gram matrix;
  docs/studies.md, "Memory").
  """
  del key, hyper
  fn = empirical_ntk_fn(jax.vmap(net.apply, in_axes=(None, 0)), trace_axes=(-1,), vmap_axes=0)
  return fn(x1, x2, params)


def infinite_mlp(net: NetworkSpec, hyper: Hyper):
  """neural-tangents' analytic kernel_fn of the ReLU MLP with `net`'s architecture.

  NTK parameterisation: with `w_std = 1` its NNGP is the prior of flax's LeCun-normal init.
  Every output has the same kernel, so no reduction over outputs is needed.
  """
  layers = []
  for width in net.hidden:
    layers += [stax.Dense(width, W_std=hyper.w_std, b_std=hyper.b_std), stax.Relu()]
  layers.append(stax.Dense(net.action_size, W_std=hyper.w_std, b_std=hyper.b_std))
  return stax.serial(*layers)[2]


def ntk_inf(net, params, x1, x2, key, hyper=Hyper()):
  """Analytic infinite-width NTK of the same architecture (independent of params)."""
  del params, key
  return infinite_mlp(net, hyper)(x1, x2, "ntk")


def nngp_inf(net, params, x1, x2, key, hyper=Hyper()):
  """Analytic infinite-width NNGP of the same architecture (independent of params)."""
  del params, key
  return infinite_mlp(net, hyper)(x1, x2, "nngp")


def linear(net, params, x1, x2, key, hyper=Hyper()):
  """NNGP of `stax.Dense(1)`: w_std^2 x1 x2^T / d + b_std^2."""
  del net, params, key
  kernel_fn = stax.Dense(1, W_std=hyper.w_std, b_std=hyper.b_std)[2]
  return kernel_fn(x1, x2, "nngp")


def _random_walk_graph(x, hyper: Hyper):
  """(a I - L)^p on the symmetrised k-nearest-neighbour graph of the rows of x."""
  n = x.shape[0]
  k = min(hyper.k, n - 1)
  dist = jnp.sum((x[:, None] - x[None]) ** 2, -1) + jnp.diag(jnp.full(n, jnp.inf))
  _, nearest = jax.lax.top_k(-dist, k)
  adjacency = jnp.zeros((n, n)).at[jnp.arange(n)[:, None], nearest].set(1.0)
  adjacency = jnp.maximum(adjacency, adjacency.T)
  inv_sqrt_degree = jax.lax.rsqrt(adjacency.sum(1))  # degrees >= k >= 1
  laplacian = jnp.eye(n) - inv_sqrt_degree[:, None] * adjacency * inv_sqrt_degree[None]
  return jnp.linalg.matrix_power(hyper.a * jnp.eye(n) - laplacian, hyper.p)


def random_walk(net, params, x1, x2, key, hyper=Hyper()):
  """p-step random-walk kernel (Smola & Kondor 2003) on a kNN graph of the scored inputs.

  The kernel lives on the graph's nodes, so it depends on every input in the call: pass all
  scored inputs at once, `K(Z, Z)`, and index the result. When x1 and x2 hold the same inputs
  the graph is built on them; otherwise on concat(x1, x2), and K is its (x1, x2) block.
  """
  del net, params, key
  n, m = x1.shape[0], x2.shape[0]
  joint = _random_walk_graph(jnp.concatenate([x1, x2]), hyper)[:n, n:]
  if n != m:
    return joint
  return jax.lax.cond(jnp.array_equal(x1, x2),
                      lambda: _random_walk_graph(x1, hyper), lambda: joint)


def dropout(net, params, x1, x2, key, hyper=Hyper()):
  """Covariance over `samples` MC-dropout masks of the outputs, averaged over outputs.

  Each mask is shared by all inputs (the key is not batched over them), so K[i, j] is the
  covariance of the two inputs' predictions under the same dropped-out network.
  """
  keys = jax.random.split(key, hyper.samples)
  predict = jax.vmap(jax.vmap(net.dropout_apply, in_axes=(None, 0, None, None)),
                     in_axes=(None, None, 0, None))  # (samples, n, a)
  f1, f2 = (predict(params, x, keys, hyper.dropout_rate) for x in (x1, x2))
  f1, f2 = f1 - f1.mean(0), f2 - f2.mean(0)
  return jnp.einsum("tia,tja->ij", f1, f2) / ((hyper.samples - 1) * net.action_size)


def rbf(net, params, x1, x2, key, hyper=Hyper()):
  """tinygp's ExpSquared on the raw inputs, exp(-|x - x'|^2 / (2 lengthscale^2))."""
  del net, params, key
  return tinygp_kernels.ExpSquared(scale=hyper.lengthscale)(x1, x2)


KERNELS = {
    "loss_gradient": loss_gradient,
    "last_layer": last_layer,
    "ntk": ntk,
    "ntk_inf": ntk_inf,
    "nngp_inf": nngp_inf,
    "linear": linear,
    "random_walk": random_walk,
    "dropout": dropout,
    "rbf": rbf,
}

# Kernels whose value at a pair depends on every input of the call (a graph on them): their
# Gram matrix must be computed over all inputs at once, never block by block.
TRANSDUCTIVE = ("random_walk",)


def get(name: str):
  """The kernel function registered as `name`."""
  return registry.lookup(KERNELS, name, "network kernel")


def check_kernel(K: jax.Array, name: str) -> jax.Array:
  """K, or a ValueError naming kernel `name` if K has a NaN or inf (call outside jit)."""
  if not bool(jnp.all(jnp.isfinite(K))):
    raise ValueError(f"Kernel {name!r} produced a non-finite Gram matrix (NaN or inf); "
                     "check its inputs and parameters.")
  return K
