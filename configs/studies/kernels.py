"""Seed ablation 2: the kernel approximation of the network in AMF-NN (AMF.md §4, §8).

`loss_gradient` (the paper's) against `random_walk` and `linear`, and the paper's uncertainty
study's `last_layer` and `dropout`, plus `ntk` and the infinite-width `ntk_inf` / `nngp_inf`.
All kernels are variants of one AMF program (`lax.switch`); `subset` pre-training.
"""
from configs.studies import active_finetune, nn_envs, study

KERNELS = ("loss_gradient", "random_walk", "linear", "ntk", "last_layer", "dropout", "ntk_inf",
           "nngp_inf")


# Memory, measured on reacher (40 runs of a program): the empirical NTK holds ~1 GB per run
# (40 GB at once; 11.5 GB peak with 10 runs per call). On pusher (3,200 states of 100 steps,
# MLP 256-256) neural-tangents' Jacobian contraction asks for 300 GB for a single run, so its
# `ntk` is left out there until the kernel is computed in blocks.
MAX_RUNS_PER_CALL = {"reacher": 10, "pusher": 10}
SKIP = {"pusher": ("ntk",)}


def get_config(scale: str = "paper"):
  quick = dict(budget=4) if scale == "quick" else {}
  envs = {name: active_finetune(env, scale, methods=("amf", "uniform"),
                                kernels=tuple(k for k in KERNELS if k not in SKIP.get(env, ())),
                                mixes=("subset",), **quick,
                                **({"max_runs_per_call": MAX_RUNS_PER_CALL[env]}
                                   if env in MAX_RUNS_PER_CALL else {}))
          for name, env in nn_envs(scale)}
  return study("kernels", "Which approximation of the network's kernel gives AMF-NN the best "
               "selections: is loss_gradient ahead of last_layer and dropout?",
               reference={"method": "amf/loss_gradient"}, envs=envs, scale=scale)
