"""The paper's rebalancing comparison: AMF against the privileged `rebalancing` (design.md §4).

`rebalancing` knows the pre-training mix and asks for the tasks it under-covers; AMF is not
told the mix. Under `subset` pre-training, `uniform` and `round_robin` are the lower bar.
"""
from configs.studies import active_finetune, integrator_gp, nn_envs, study

METHODS = ("amf", "rebalancing", "uniform", "round_robin")


def get_config(scale: str = "paper"):
  envs = {"integrator_gp": integrator_gp(scale, methods=METHODS, ks=(3, 6), plot_ks=(3, 6))}
  envs.update({name: active_finetune(env, scale, methods=METHODS, mixes=("subset",))
               for name, env in nn_envs(scale)})
  return study("rebalancing", "Does AMF, without being told the pre-training mix, select as "
               "well as rebalancing, which is?", reference={"method": "rebalancing"},
               envs=envs, scale=scale)
