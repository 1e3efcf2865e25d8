"""Which demonstrations to collect next: AMF for a lab's own policy and demonstrations.

`suggest(env, learner, state, demos, key, ...)` answers one question without a simulator in
the loop: given a policy (a learner state), the demonstrations collected so far and the tasks
that matter (mu), which `B` tasks should the expert demonstrate next? It builds the active
loop's own selection (`amf.active.make_loop`: the proposal, the occupancy estimate, the GP over
the network's kernel, AMF's greedy batch) on a carry made from the inputs as they are, so it
asks for exactly what the loop would ask for in that state (`tests/test_suggest.py`). With the
`importance`, `uniform` or `learned` estimator nothing is simulated: the estimated states are
the demonstrations', re-weighted.

It also returns every candidate's score `alpha` and, per target task, the model's posterior
variance of the expert's action on that task's estimated states before and after the batch
(the greedy batch's own conditioning: what the batch is expected to teach).

The command (`python -m amf.suggest --help`) loads a policy saved with `save_policy`,
demonstrations from `.npz` (one file of stacked episodes, or a directory of one-episode files)
and the question from a JSON file; prints a ranked table, writes it as JSON and draws a figure.
"""
import dataclasses
import json
import os
import pathlib
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from amf import (acquisition, checkpoint, cli, data as data_lib, envs, keys, nn_learner,
                 occupancy)
from amf.active import LoopConfig, choose, make_loop
from amf.envs.base import MultiTaskEnv
from amf.proposals import Ascent, TaskBatch


class Suggestion(NamedTuple):
  """What to ask for, and why."""
  tasks: jax.Array            # (B, P) the tasks to ask for, in the order AMF picked them
  ids: jax.Array              # (B,) their finite-set ids (-1: off the set)
  chosen: jax.Array           # (B,) their rows in `candidates`
  candidates: TaskBatch       # (G,) the tasks AMF chose among
  scores: jax.Array           # (G,) each candidate's alpha (nats), before any pick
  targets: jax.Array          # (T, P) the target tasks
  target_weights: jax.Array   # (T,) mu on them
  variance_before: jax.Array  # (T,) posterior variance on each target's estimated states
  variance_after: jax.Array   # (T,) the same after the batch (greedy's conditioning)


@dataclasses.dataclass(frozen=True)
class Question:
  """The settings of a suggestion (the loop's names; see `amf.active.LoopConfig`)."""
  batch_size: int = 1
  kernel: str = ""                     # one of the learner's kernels; "": its first
  estimator: str = "importance"
  task_space: str = "finite"           # or "continuous"
  target_tasks: tuple[int, ...] = ()   # finite: mu's support (() = every task)
  target_mass: tuple[float, ...] = ()  # finite: mu's weights on it (() = uniform)
  target_region: tuple = ()            # continuous: mu's region, where `random` draws and
                                       # the ascent starts ((low, high), ...; () = all of C)
  proposal: str = "grid"               # candidates: grid (the finite set), grid:G, random,
                                       # continuous (random:N, continuous:N)
  num_candidates: int = 0              # draws of random / continuous without their own N
  ascent: Ascent = Ascent()
  occupancy_samples: int = 2
  stride: int = 1

  def loop_config(self, num_demos: int, num_targets: int) -> LoopConfig:
    """The loop of one AMF selection: this question's settings, by the loop's field names."""
    return LoopConfig.from_config(
        {**vars(self), "estimators": (self.estimator,), "pretrain_size": num_demos,
         "budget": self.batch_size, "num_targets": num_targets},
        ("amf",), self.proposal)


def check(env: MultiTaskEnv, learner, demos: data_lib.Dataset, question: Question,
          targets: Optional[jax.Array] = None) -> None:
  """Refuses bad input with a one-line ValueError, before anything compiles."""
  if question.kernel and question.kernel not in learner.kernels:
    raise ValueError(f"Unknown kernel {question.kernel!r} for this policy; choose one of "
                     f"{sorted(learner.kernels)}.")
  occupancy.get(question.estimator)
  if question.batch_size < 1:
    raise ValueError(f"batch size must be at least 1, got {question.batch_size}.")
  expected = dict(obs=(env.horizon, env.observation_size), actions=(env.horizon, env.action_size),
                  task=(env.task_space.size,), task_id=(), mask=())
  m = np.shape(demos.mask)[0] if np.ndim(demos.mask) == 1 else None
  for name, tail in expected.items():
    shape = np.shape(getattr(demos, name))
    if m is None or shape != (m,) + tail:
      raise ValueError(f"demonstrations: {name} has shape {shape}, expected "
                       f"{('M',) + tail} (M episodes of horizon {env.horizon}).")
  mask = np.asarray(demos.mask, bool)
  if not mask.any():
    raise ValueError("demonstrations: the set is empty (no episode with mask true).")
  for name in ("obs", "actions", "task"):
    if not np.isfinite(np.asarray(getattr(demos, name))[mask]).all():
      raise ValueError(f"demonstrations: {name} has NaN or inf values.")
  outside = ~np.asarray(env.task_space.contains(jnp.asarray(demos.task)[mask]))
  if outside.any():
    raise ValueError(f"demonstrations: {int(outside.sum())} episodes have tasks outside the "
                     f"task space {env.task_space.low}..{env.task_space.high}.")
  if question.task_space == "continuous":
    if targets is None or np.ndim(targets) != 2 or np.shape(targets)[1] != env.task_space.size:
      raise ValueError(f"a continuous question needs target tasks of shape (T, "
                       f"{env.task_space.size}), got {np.shape(targets)}.")
    if not np.asarray(env.task_space.contains(jnp.asarray(targets))).all():
      raise ValueError("target tasks lie outside the task space "
                       f"{env.task_space.low}..{env.task_space.high}.")
  question.loop_config(mask.size, 1 if targets is None else len(targets)).validate(env)


def suggest(env: MultiTaskEnv, learner, state: Any, demos: data_lib.Dataset, key: jax.Array,
            question: Question = Question(), targets: Optional[jax.Array] = None) -> Suggestion:
  """AMF's next batch for `learner` in `state` given `demos` (every slot, empty ones masked).

  `key` is the selection's key (the loop's round key `selection` stream). On a finite set the
  targets are its tasks (mu: `question.target_tasks` / `target_mass`); in a continuous space
  `targets` (T, P) are the target tasks, uniform.
  """
  check(env, learner, demos, question, targets)
  demos = jax.tree.map(jnp.asarray, demos._replace(mask=jnp.asarray(demos.mask, bool),
                                                   task_id=jnp.asarray(demos.task_id, jnp.int32)))
  finite_space = question.task_space == "finite"
  targets = env.tasks if finite_space else jnp.asarray(targets, jnp.float32)
  loop = make_loop(env, learner, question.loop_config(demos.size, targets.shape[0]))
  kernel = learner.kernels.index(question.kernel or learner.kernels[0])

  @jax.jit
  def run(state, demos, targets, key):
    carry = choose(loop.start(demos, state, targets, key), kernel=kernel)
    s = loop.scoring(carry, key)
    chosen, after = acquisition.greedy_batch(s.cov, s.noise, s.targets, s.candidates,
                                             question.batch_size)
    num = targets.shape[0]
    w = s.targets.weights.reshape(num, -1)  # mu(t) x occupancy weight / H per target input
    weights = w.sum(-1)
    # Occupancy-weighted mean over each target's inputs; NaN for tasks outside mu's support.
    per_task = lambda cov: jnp.where(weights > 0, jnp.sum(
        w * jnp.diag(cov)[s.targets.index].reshape(num, -1), -1) / jnp.where(
            weights > 0, weights, 1.0), jnp.nan)
    return Suggestion(s.tasks.tasks[chosen], s.tasks.ids[chosen], chosen, s.tasks,
                      acquisition.scores(s.cov, s.noise, s.targets, s.candidates), targets,
                      weights / weights.sum(), per_task(s.cov), per_task(after))

  return run(state, demos, targets, key)


# --- Files: a saved policy, demonstrations, the question. ---

POLICY_FILE = "policy.json"
QUESTION_KEYS = ("batch_size", "kernel", "estimator", "space", "targets", "weights",
                 "target_region", "num_targets", "proposal", "num_candidates", "ascent",
                 "occupancy_samples", "stride")


def save_policy(directory: str, env_name: str, env_kwargs: dict, learner_config, state: Any,
                selection_key: Optional[jax.Array] = None) -> None:
  """Saves a policy for `suggest`: `policy.json` (the environment by name, the learner's
  config, see `amf.nn_learner.make`; optionally the selection key to use) and the learner's
  state (orbax, under `state/`)."""
  os.makedirs(directory, exist_ok=True)
  spec = dict(env=env_name, env_kwargs=dict(env_kwargs),
              learner=nn_learner.config_dict(learner_config))
  if selection_key is not None:
    spec["selection_key"] = np.asarray(jax.random.key_data(selection_key)).tolist()
  pathlib.Path(directory, POLICY_FILE).write_text(json.dumps(spec, indent=1))
  checkpoint.save(os.path.join(directory, "state"), state)


def load_policy(directory: str):
  """`(env, learner, state, selection key or None)` of a policy saved by `save_policy`."""
  path = pathlib.Path(directory, POLICY_FILE)
  if not path.is_file():
    raise ValueError(f"policy: {path} not found (a directory written by "
                     "amf.suggest.save_policy holds it).")
  spec = json.loads(path.read_text())
  env = envs.make(spec["env"], **spec.get("env_kwargs", {}))
  learner = nn_learner.make(spec["learner"], env)
  like = jax.eval_shape(learner.init, data_lib.empty(env, 1), jax.random.PRNGKey(0))
  state = checkpoint.restore(str(pathlib.Path(directory, "state")), like)
  key = spec.get("selection_key")
  return env, learner, state, None if key is None else jnp.asarray(key, jnp.uint32)


def save_demos(path: str, demos: data_lib.Dataset) -> None:
  """Writes demonstrations as one `.npz` of stacked episodes (the fields of `Dataset`)."""
  np.savez(path, **{k: np.asarray(v) for k, v in demos._asdict().items()})


def load_demos(path: str) -> data_lib.Dataset:
  """Demonstrations from one `.npz` of stacked episodes (`obs` (M, H, O), `actions`
  (M, H, A), `task` (M, P); optional `task_id`, `mask`) or a directory of one-episode
  `.npz` files (`obs` (H, O), `actions` (H, A), `task` (P,))."""
  p = pathlib.Path(path)
  if p.is_dir():
    files = sorted(p.glob("*.npz"))
    if not files:
      raise ValueError(f"demonstrations: no .npz episodes in {p}.")
    episodes = [_fields(np.load(f), f, ("obs", "actions", "task")) for f in files]
    try:
      stacked = {k: np.stack([e[k] for e in episodes]) for k in ("obs", "actions", "task")}
    except ValueError as e:
      raise ValueError(f"demonstrations: the episodes in {p} differ in shape ({e}).") from None
  elif p.is_file():
    stacked = _fields(np.load(p), p, ("obs", "actions", "task", "task_id", "mask"),
                      optional=("task_id", "mask"))
  else:
    raise ValueError(f"demonstrations: {p} is neither a .npz file nor a directory.")
  m = len(stacked["obs"])
  return data_lib.Dataset(
      np.asarray(stacked["obs"], np.float32), np.asarray(stacked["actions"], np.float32),
      np.asarray(stacked["task"], np.float32),
      np.asarray(stacked.get("task_id", np.full(m, -1)), np.int32),
      np.asarray(stacked.get("mask", np.ones(m)), bool))


def _fields(npz, path, names, optional=()) -> dict:
  missing = [n for n in names if n not in npz.files and n not in optional]
  if missing:
    raise ValueError(f"demonstrations: {path} lacks {missing} (has {sorted(npz.files)}).")
  return {n: npz[n] for n in names if n in npz.files}


def load_question(path: str, env: MultiTaskEnv, key: jax.Array, **overrides):
  """`(Question, targets or None)` from a JSON file (keys: `QUESTION_KEYS`); `overrides`
  (e.g. the command's flags) replace its values. A continuous question's targets are listed
  (`targets`: [[c...], ...]) or drawn from `target_region` ([[low, high], ...]) with `key`;
  the region is also where `random` candidates are drawn (all of C without one)."""
  try:
    spec = json.loads(pathlib.Path(path).read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"tasks: cannot read {path}: {e}") from None
  unknown = sorted(set(spec) - set(QUESTION_KEYS))
  if unknown:
    raise ValueError(f"tasks: unknown keys {unknown} in {path}; allowed: {list(QUESTION_KEYS)}.")
  spec.update({k: v for k, v in overrides.items() if v is not None})
  space = spec.get("space", "finite")
  fields = dict(task_space=space, **{k: spec[k] for k in (
      "batch_size", "kernel", "estimator", "proposal", "num_candidates", "occupancy_samples",
      "stride") if k in spec})
  if "ascent" in spec:
    unknown = sorted(set(spec["ascent"]) - set(Ascent._fields))
    if unknown:
      raise ValueError(f"tasks: unknown ascent keys {unknown}; allowed: {list(Ascent._fields)}.")
    fields["ascent"] = Ascent(**spec["ascent"])
  targets = None
  if space == "finite":
    if "target_region" in spec:
      raise ValueError("tasks: target_region is for a continuous space (\"space\": "
                       "\"continuous\"); a finite one lists target task ids in targets.")
    ids = tuple(int(i) for i in spec.get("targets", ()))
    bad = [i for i in ids if not 0 <= i < env.num_tasks]
    if bad:
      raise ValueError(f"tasks: target ids {bad} are not tasks of the finite set "
                       f"(0..{env.num_tasks - 1}).")
    fields.update(target_tasks=ids, target_mass=tuple(float(w) for w in spec.get("weights", ())))
  elif "targets" in spec:
    targets = np.asarray(spec["targets"], np.float32)
  if space != "finite" and "target_region" in spec:
    fields["target_region"] = tuple(tuple(float(x) for x in b) for b in spec["target_region"])
    region = env.task_space.region(fields["target_region"])
    if targets is None:
      targets = region.sample(key, int(spec.get("num_targets", 16)))
  if space != "finite" and targets is None:
    raise ValueError("tasks: a continuous question needs targets ([[c...], ...]) or a "
                     "target_region ([[low, high], ...]).")
  return Question(**fields), targets


# --- The command. ---

def table(s: Suggestion, question: Question) -> str:
  """A ranked table a person reads in seconds."""
  fmt = lambda c: "(" + ", ".join(f"{x:.3f}" for x in np.asarray(c)) + ")"
  name = lambda i, c: (f"task {int(i):>3} {fmt(c)}" if i >= 0 else f"task {fmt(c)}")
  scores = np.asarray(s.scores)
  lines = [f"Ask for, in this order ({question.kernel or 'default'} kernel, "
           f"{question.estimator} estimator; alpha before the batch: each later pick is "
           "scored given the earlier ones):"]
  for rank, (i, c, j) in enumerate(zip(np.asarray(s.ids), np.asarray(s.tasks),
                                       np.asarray(s.chosen)), 1):
    lines.append(f"  {rank}. {name(i, c)}   alpha {scores[j]:.3f} nats")
  order = np.argsort(-scores)[:10]
  lines.append(f"Best candidates of {len(scores)} (alpha, nats):")
  lines += [f"  {name(s.candidates.ids[j], s.candidates.tasks[j])}   {scores[j]:.3f}"
            for j in order]
  lines.append("Targets: weight, posterior variance before -> after the batch")
  for i, (c, w, b, a) in enumerate(zip(np.asarray(s.targets), np.asarray(s.target_weights),
                                       np.asarray(s.variance_before),
                                       np.asarray(s.variance_after))):
    if w > 0:
      lines.append(f"  {name(i if question.task_space == 'finite' else -1, c)}   {w:.3f}   "
                   f"{b:.4f} -> {a:.4f} ({100 * (1 - a / b):.0f}% less)")
  return "\n".join(lines)


def as_json(s: Suggestion, question: Question) -> dict:
  tolist = lambda x: np.asarray(x).tolist()
  return dict(settings=dataclasses.asdict(question),
              asked=[dict(rank=r, id=int(i), task=tolist(c), candidate=int(j))
                     for r, (i, c, j) in enumerate(zip(np.asarray(s.ids), np.asarray(s.tasks),
                                                       np.asarray(s.chosen)), 1)],
              candidates=[dict(id=int(i), task=tolist(c), alpha=float(a)) for i, c, a in zip(
                  np.asarray(s.candidates.ids), np.asarray(s.candidates.tasks),
                  np.asarray(s.scores))],
              targets=[dict(task=tolist(c), weight=float(w), variance_before=float(b),
                            variance_after=float(a)) for c, w, b, a in zip(
                  np.asarray(s.targets), np.asarray(s.target_weights),
                  np.asarray(s.variance_before), np.asarray(s.variance_after))])


def main(argv) -> None:
  """Bad input raises a ValueError before anything compiles (`amf.cli` prints one line)."""
  from absl import flags
  from amf import plotting
  del argv
  f = flags.FLAGS
  env, learner, state, saved_key = load_policy(f.policy)
  streams = keys.streams(jax.random.PRNGKey(f.seed or 0), ("selection", "targets"))
  key = saved_key if saved_key is not None and f.seed is None else streams["selection"]
  question, targets = load_question(f.tasks, env, streams["targets"], batch_size=f.batch,
                                    kernel=f.kernel, estimator=f.estimator)
  demos = load_demos(f.demos)
  question = dataclasses.replace(question, kernel=question.kernel or learner.kernels[0])
  s = suggest(env, learner, state, demos, key, question, targets)
  out = pathlib.Path(f.out)
  out.mkdir(parents=True, exist_ok=True)
  print(table(s, question))
  result = as_json(s, question)
  (out / "suggestion.json").write_text(json.dumps(result, indent=1))
  figure = plotting.suggestion(result, out / "suggestion.png", env.task_space.size)
  print(f"Wrote {out / 'suggestion.json'} and {figure}.")


def _flags() -> None:
  from absl import flags
  flags.DEFINE_string("policy", None, "Directory of a policy saved by amf.suggest.save_policy.")
  flags.DEFINE_string("demos", None, "Demonstrations: a .npz of stacked episodes or a "
                      "directory of one-episode .npz files.")
  flags.DEFINE_string("tasks", None, "JSON file of the question (targets, space, proposal...).")
  flags.DEFINE_integer("batch", None, "How many tasks to ask for (overrides the JSON).")
  flags.DEFINE_string("kernel", None, "Network kernel by name (overrides the JSON).")
  flags.DEFINE_string("estimator", None, "Occupancy estimator by name (overrides the JSON).")
  flags.DEFINE_integer("seed", None, "Seed of the selection (default: the key saved with the "
                       "policy, else 0).")
  flags.DEFINE_string("out", "suggestion", "Directory for suggestion.json and suggestion.png.")
  flags.mark_flags_as_required(["policy", "demos", "tasks"])


if __name__ == "__main__":
  _flags()
  cli.run(main)
