"""The loop a lab runs by hand with `amf.suggest`, on brax reacher with its scripted expert.

  python -m examples.lab_loop --workdir=runs/lab_loop

1. Pre-train a policy on `subset` data: 16 demonstrations of the first 4 of reacher's 8 tasks.
2. Save it and the demonstrations; ask `python -m amf.suggest` for 4 tasks (all 8 matter).
3. "Collect" them: the scripted expert demonstrates the tasks the command named.
4. Fine-tune on them, save again, ask again.

Between the steps the policy's success on every task is measured (a real lab would skip
this; here it shows what the demonstrations bought). Everything the command sees is a file:
`<workdir>/round_N/{policy/, demos.npz}` and `<workdir>/tasks.json`; its answers are in
`<workdir>/round_N/answer/` (`suggestion.json`, `suggestion.png`).
"""
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from amf import cli, data, envs, nn_learner, suggest
from amf.rollout import evaluate, policy_actor
from configs import active_finetune

flags.DEFINE_string("workdir", "runs/lab_loop", "Where the policy, data and answers go.")
flags.DEFINE_integer("batch", 4, "Tasks to ask for per round.")
flags.DEFINE_integer("rounds", 2, "Rounds of ask, collect, fine-tune.")
flags.DEFINE_integer("seed", 0, "Seed of the pre-training data, training and evaluation.")
FLAGS = flags.FLAGS


def success(env, learner, state, key) -> np.ndarray:
  """Success rate per task (8 episodes each)."""
  actor = policy_actor(env, lambda obs, phi: learner.act(state, obs, phi))
  return np.asarray(jax.jit(lambda k: evaluate(env, actor, k, env.tasks, 8, 1).success)(key))


def ask(workdir: pathlib.Path, round_: int, env_name, c, state, demos) -> list[int]:
  """Saves the policy and data of this round and runs the command on them."""
  here = workdir / f"round_{round_}"
  suggest.save_policy(here / "policy", env_name, c.env_kwargs, c, state)
  suggest.save_demos(here / "demos.npz", demos)
  cmd = [sys.executable, "-m", "amf.suggest", f"--policy={here / 'policy'}",
         f"--demos={here / 'demos.npz'}", f"--tasks={workdir / 'tasks.json'}",
         f"--batch={FLAGS.batch}", f"--out={here / 'answer'}"]
  print("$ python", " ".join(cmd[1:]), flush=True)
  subprocess.run(cmd, check=True)
  answer = json.loads((here / "answer" / "suggestion.json").read_text())
  return [a["id"] for a in answer["asked"]]


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  c = active_finetune.get_config("reacher,quick")  # the testbed's learner, laptop-sized BC
  env = envs.make("reacher", **c.env_kwargs)
  learner = nn_learner.make(nn_learner.Spec.from_config(c), env)
  key = jax.random.PRNGKey(FLAGS.seed)
  k_data, k_fit, key = jax.random.split(key, 3)
  weights = data.mix_weights("subset", env.num_tasks, k=4)
  demos = jax.jit(lambda k: data.pretraining(env, k, 16, weights, c.demo_noise))(k_data)
  pretrain = demos
  print(f"Pre-training on 16 demonstrations of tasks "
        f"{sorted(set(np.asarray(demos.task_id).tolist()))} "
        f"({c.pretrain_steps} BC steps)...", flush=True)
  state = jax.jit(learner.init)(demos, k_fit)
  # The question's defaults are the loop's, saved with the policy (reacher: stride 5).
  (workdir / "tasks.json").write_text("{}")
  history = []
  for round_ in range(FLAGS.rounds + 1):
    key, k_eval, k_demo, k_tune = jax.random.split(key, 4)
    rates = success(env, learner, state, k_eval)
    history.append(dict(round=round_, demos=int(np.asarray(demos.mask).sum()),
                        success=np.round(rates.astype(float), 3).tolist(),
                        mean=float(rates.mean())))
    print(f"Round {round_}: {history[-1]['demos']} demonstrations, success per task "
          f"{np.round(rates.astype(float), 2).tolist()} (mean {rates.mean():.2f})", flush=True)
    if round_ == FLAGS.rounds:
      break
    ids = ask(workdir, round_, "reacher", c, state, demos)
    print(f"Collecting demonstrations of tasks {ids} with the expert, then fine-tuning "
          f"({c.finetune_steps} steps)...", flush=True)
    new = jax.jit(lambda k: data.demonstrate(env, k, jnp.asarray(ids), c.demo_noise))(k_demo)
    demos = data.concat(demos, new)
    collected = jax.tree.map(lambda x: x[pretrain.size:], demos)  # every round's so far
    state = jax.jit(learner.update)(state, pretrain, collected, k_tune)
  (workdir / "history.json").write_text(json.dumps(history, indent=1))
  print(f"Wrote {workdir / 'history.json'}.")


if __name__ == "__main__":
  cli.run(main)
