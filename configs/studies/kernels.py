"""Seed ablation 2: the kernel approximation of the network in AMF-NN (docs/design.md §3, §9).

`loss_gradient` (the paper's) against `random_walk` and `linear`, and the paper's uncertainty
study's `last_layer` and `dropout`, plus `ntk` and the infinite-width `ntk_inf` / `nngp_inf`.
All kernels are variants of one AMF program (`lax.switch`); `subset` pre-training. Kernels an
environment's testbed lists in `skip_kernels` are left out there: the empirical NTK on pusher
needs more memory per run than a 2-core CI machine holds (docs/studies.md, "Memory";
`--config.max_runs_per_call` bounds the runs per call on a larger machine).
"""
from amf import envs
from configs.studies import active_finetune, nn_envs, study

KERNELS = ("loss_gradient", "random_walk", "linear", "ntk", "last_layer", "dropout", "ntk_inf",
           "nngp_inf")


def runs(scale: str, kernels, methods=("amf", "uniform"), **overrides) -> dict:
  """AMF with each of `kernels` (less an environment's `skip_kernels`) and `methods`' others,
  under `subset` pre-training, on every NN environment."""
  quick = dict(budget=4) if scale == "quick" else {}
  return {name: active_finetune(env, scale, methods=methods,
                                kernels=tuple(k for k in kernels
                                              if k not in envs.testbed(env).skip_kernels),
                                mixes=("subset",), **quick, **overrides)
          for name, env in nn_envs(scale)}


def get_config(scale: str = "paper"):
  return study("kernels", "Which approximation of the network's kernel gives AMF-NN the best "
               "selections: is loss_gradient ahead of last_layer and dropout?",
               reference={"method": "amf/loss_gradient"}, envs=runs(scale, KERNELS),
               scale=scale)
