"""Seed ablation 2: the kernel approximation of the network in AMF-NN (docs/design.md §3, §9).

`loss_gradient` (the paper's) against `random_walk` and `linear`, and the paper's uncertainty
study's `last_layer` and `dropout`, plus `ntk` and the infinite-width `ntk_inf` / `nngp_inf`.
All kernels are variants of one AMF program (`lax.switch`); `subset` pre-training.
"""
from configs.studies import active_finetune, nn_envs, study

KERNELS = ("loss_gradient", "random_walk", "linear", "ntk", "last_layer", "dropout", "ntk_inf",
           "nngp_inf")


# The empirical NTK on pusher needs more memory per run than a laptop or a 2-core CI machine
# holds (measured in docs/studies.md, "Memory"), so `ntk` is left out there
# (`--config.max_runs_per_call` bounds the runs per call on a larger machine).
SKIP = {"pusher": ("ntk",)}


def get_config(scale: str = "paper"):
  quick = dict(budget=4) if scale == "quick" else {}
  envs = {name: active_finetune(env, scale, methods=("amf", "uniform"),
                                kernels=tuple(k for k in KERNELS if k not in SKIP.get(env, ())),
                                mixes=("subset",), **quick)
          for name, env in nn_envs(scale)}
  return study("kernels", "Which approximation of the network's kernel gives AMF-NN the best "
               "selections: is loss_gradient ahead of last_layer and dropout?",
               reference={"method": "amf/loss_gradient"}, envs=envs, scale=scale)
