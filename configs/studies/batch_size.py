"""The paper's batch-size study: B in {1, 2, 4, 8} demonstrations per round at a fixed budget.

B is a static shape (the greedy batch), so each B is a process of its own; the comparison is
with B = 1 at the same budget (fewer, larger rounds: does greedy batch selection lose much?).
The budget is a multiple of 8 so every B divides it.
"""
from amf import envs
from configs.studies import active_finetune, integrator_gp, nn_envs, pilot_seeds, study

SIZES = (1, 2, 4, 8)


def get_config(scale: str = "paper"):
  processes = {f"b{b}": dict(batch_size=b) for b in SIZES}
  budget = 8 if scale == "quick" else 16
  runs = {"integrator_gp": integrator_gp(scale, processes, methods=("amf", "uniform"), ks=(6,),
                                         plot_ks=(6,), budget=budget)}
  # B = 1 on a `costly` environment (pusher) runs 16 rounds of minutes each; it is left out.
  runs.update({name: active_finetune(env, scale, processes, methods=("amf", "uniform"),
                                     mixes=("subset",), budget=budget, **pilot_seeds(env, scale))
               for name, env in nn_envs(scale, quick=False) if not envs.testbed(env).costly})
  return study("batch_size", "How much does asking for B demonstrations per round (greedy "
               "batches) cost AMF against B = 1 at the same budget?",
               reference={"process": "b1"}, envs=runs, scale=scale)
