"""Seed ablation 3: the pre-training data distribution (docs/design.md §9).

`uniform`, `skewed` (Zipf) with strengths 0.5, 1 and 2, and `subset` covering a quarter, half
and three quarters of the tasks; AMF against `uniform` and the privileged `rebalancing` under
each. Every mix is a value variant (`mixes` like `skewed:0.5`, `subset:2`) of the same programs;
the report draws the AMF - uniform gap against the mix.
"""
from configs.studies import active_finetune, nn_envs, num_tasks, study


def mixes(k: int) -> tuple[str, ...]:
  return ("uniform", "skewed:0.5", "skewed:1", "skewed:2", f"subset:{k // 4}",
          f"subset:{k // 2}", f"subset:{3 * k // 4}")


def get_config(scale: str = "paper"):
  envs = {name: active_finetune(env, scale, methods=("amf", "uniform", "rebalancing"),
                               mixes=mixes(num_tasks(env)))
          for name, env in nn_envs(scale)}
  return study("pretraining_mix", "How does AMF's lead over uniform selection depend on the "
               "pre-training mix: large when it misses tasks, gone when it covers them all?",
               reference={"method": "uniform"}, envs=envs, scale=scale,
               outside=("rebalancing",), gap=("amf", "uniform"))
