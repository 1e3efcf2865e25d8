"""The paper's integrator study: AMF-GP vs uniform with pre-training on k of 12 tasks."""
from configs.studies import integrator_gp, study


def get_config(scale: str = "paper"):
  return study("integrator_k_sweep", "How does AMF-GP's lead over uniform selection on the "
               "integrator shrink as pre-training covers more of the 12 tasks (k = 1...12)?",
               reference={"method": "uniform"}, envs={"integrator_gp": integrator_gp(scale)},
               scale=scale, outside=("rebalancing",), gap=("amf", "uniform"))
