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
demonstrations (`amf.demo_io`: `.npz` or robomimic-style HDF5) and the question from a JSON
file (its task space may be its own: `amf.task_sets`); prints a ranked table, writes it as
JSON (every setting used included) and draws a figure.
"""
import dataclasses
import functools
import json
import os
import pathlib
import time
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from amf import (acquisition, checkpoint, cli, data as data_lib, envs, flax_policy, keys,
                 nn_kernels, nn_learner, occupancy, proposals, task_sets, task_spaces)
from amf.active import LoopConfig, choose, make_loop
from amf.demo_io import load_demos, save_demos  # noqa: F401  (the command's file formats)
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


_LOOP = LoopConfig()  # the loop's own defaults


@dataclasses.dataclass(frozen=True)
class Question:
  """The settings of a suggestion (the loop's names; see `amf.active.LoopConfig`).

  Every default is the loop's (`LoopConfig`); `from_config` takes an experiment's instead
  (e.g. reacher's study config scores every 5th state: `stride=5`)."""
  batch_size: int = _LOOP.batch_size
  kernel: str = ""                     # one of the learner's kernels; "": its first
  estimator: str = _LOOP.estimators[0]
  task_space: str = _LOOP.task_space   # "finite" or "continuous"
  target_tasks: tuple[int, ...] = _LOOP.target_tasks  # finite: mu's support (() = every task)
  target_mass: tuple[float, ...] = _LOOP.target_mass  # finite: mu's weights on it (() = uniform)
  target_region: tuple = _LOOP.target_region  # continuous: mu's region, where `random` draws
                                       # and the ascent starts ((low, high), ...; () = all of C)
  num_targets: int = _LOOP.num_targets  # continuous: targets drawn from target_region
  proposal: str = _LOOP.proposal       # candidates: grid (the finite set), grid:G, random,
                                       # continuous (random:N, continuous:N)
  num_candidates: int = _LOOP.num_candidates  # draws of random / continuous without their own N
  ascent: Ascent = _LOOP.ascent
  occupancy_samples: int = _LOOP.occupancy_samples
  stride: int = _LOOP.stride
  critic: occupancy.Critic = _LOOP.critic  # the `learned` estimator's classifier

  def __post_init__(self):  # lists as tuples: a question is a static argument of `_answer`
    for name in ("target_tasks", "target_mass"):
      object.__setattr__(self, name, tuple(getattr(self, name)))
    object.__setattr__(self, "target_region", tuple(tuple(b) for b in self.target_region))

  @classmethod
  def from_config(cls, config, **overrides) -> "Question":
    """The question an experiment's loop asks (`LoopConfig.from_config` of `config`: its
    estimator and kernel the first of its lists), with `overrides` by this class's names."""
    loop = LoopConfig.from_config(config, ("amf",))
    fields = {f.name: getattr(loop, f.name) for f in dataclasses.fields(cls)
              if hasattr(loop, f.name)}
    fields["estimator"] = loop.estimators[0]
    if "kernels" in config and len(config["kernels"]):
      fields["kernel"] = tuple(config["kernels"])[0]
    if loop.num_candidates:  # a sized proposal carries its size (as the loop's `proposals`)
      fields["proposal"] = f"{loop.proposal}:{loop.num_candidates}"
    return cls(**{**fields, **overrides})

  def settings(self) -> dict:
    """Every setting as plain JSON values, by the loop's names (`from_config` reads them)."""
    plain = lambda v: v._asdict() if hasattr(v, "_asdict") else v
    out = {k: plain(v) for k, v in vars(self).items()}
    out["estimators"] = [out.pop("estimator")]
    out["kernels"] = [out.pop("kernel")] if self.kernel else []
    return out

  def loop_config(self, num_demos: int, num_targets: int) -> LoopConfig:
    """The loop of one AMF selection: this question's settings, by the loop's field names."""
    return LoopConfig.from_config(
        {**vars(self), "estimators": (self.estimator,), "pretrain_size": num_demos,
         "budget": self.batch_size, "num_targets": num_targets},
        ("amf",), self.proposal)


_whole = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_question(q: Question) -> None:
  """The question's own settings, by the names of `Question` (before the loop's checks)."""
  for name in ("batch_size", "occupancy_samples", "stride", "num_targets"):
    if not _whole(getattr(q, name)) or getattr(q, name) < 1:
      raise ValueError(f"{name} must be a whole number >= 1, got {getattr(q, name)!r}.")
  if not _whole(q.num_candidates) or q.num_candidates < 0:
    raise ValueError(f"num_candidates must be a whole number >= 0, got {q.num_candidates!r}.")
  if q.target_mass and len(q.target_mass) != len(q.target_tasks):
    raise ValueError(f"target_mass needs one weight per target task ({len(q.target_tasks)} "
                     f"{'listed' if q.target_tasks else ': list target_tasks'}), got "
                     f"{len(q.target_mass)}.")


def check(env: MultiTaskEnv, learner, demos: data_lib.Dataset, question: Question,
          targets: Optional[jax.Array] = None) -> None:
  """Refuses bad input with a one-line ValueError, before anything compiles."""
  _check_question(question)
  if question.kernel and question.kernel not in learner.kernels:
    raise ValueError(f"Unknown kernel {question.kernel!r} for this policy; choose one of "
                     f"{sorted(learner.kernels)}.")
  occupancy.get(question.estimator)
  if isinstance(env, task_sets.TaskSet) and question.estimator not in occupancy.REUSING:
    raise ValueError(f"the {question.estimator} estimator simulates episodes; a task space "
                     f"without a simulator needs one of {list(occupancy.REUSING)}.")
  # T steps per episode, up to the policy's horizon (shorter ones are padded: `suggest`).
  t = np.shape(demos.obs)[1] if np.ndim(demos.obs) == 3 else None
  t = t if t is not None and 1 <= t <= env.horizon else "T"
  expected = dict(obs=(t, env.observation_size), actions=(t, env.action_size),
                  task=(env.task_space.size,), task_id=(), mask=())
  if demos.steps is not None:
    expected["steps"] = (t,)
  m = np.shape(demos.mask)[0] if np.ndim(demos.mask) == 1 else None
  for name, tail in expected.items():
    shape = np.shape(getattr(demos, name))
    if m is None or shape != (m,) + tail:
      raise ValueError(f"demonstrations: {name} has shape {shape}, expected "
                       f"{('M',) + tail} (M episodes of T <= {env.horizon} steps, the "
                       "policy's horizon).")
  mask = np.asarray(demos.mask, bool)
  if not mask.any():
    raise ValueError("demonstrations: the set is empty (no episode with mask true).")
  steps = np.broadcast_to(mask[:, None], np.shape(demos.obs)[:2])
  if demos.steps is not None:
    steps = steps & np.asarray(demos.steps, bool)
  empty = np.flatnonzero(mask & ~steps.any(-1))
  if empty.size:
    raise ValueError(f"demonstrations: episode {empty[0]} has no recorded steps (steps all "
                     f"false; {empty.size} such episodes).")
  for name, where in (("obs", steps), ("actions", steps), ("task", mask)):
    if not np.isfinite(np.asarray(getattr(demos, name))[where]).all():
      raise ValueError(f"demonstrations: {name} has NaN or inf values.")
  tasks = np.asarray(demos.task)[mask]
  outside = ~np.asarray(env.task_space.contains(tasks))
  if outside.any():
    raise ValueError(f"demonstrations: {int(outside.sum())} episodes have tasks outside the "
                     f"task space {env.task_space.low}..{env.task_space.high}.")
  ids = np.asarray(demos.task_id)[mask]
  bad = np.flatnonzero((ids < -1) | (ids >= env.num_tasks))
  if bad.size:
    raise ValueError(f"demonstrations: task_id {ids[bad[0]]} (episode {bad[0]}) is not a task "
                     f"of the finite set (0..{env.num_tasks - 1}, or -1 for a task off it).")
  on = np.flatnonzero(ids >= 0)
  wrong = on[~np.all(np.isclose(tasks[on], np.asarray(env.tasks)[ids[on]], atol=1e-4), -1)]
  if wrong.size:
    i = wrong[0]
    raise ValueError(f"demonstrations: episode {i} has task_id {ids[i]} but task "
                     f"{tasks[i].tolist()}, not the finite set's task {ids[i]} "
                     f"{np.asarray(env.tasks)[ids[i]].tolist()} ({wrong.size} such episodes).")
  if question.task_space == "continuous":
    if targets is None or np.ndim(targets) != 2 or np.shape(targets)[1] != env.task_space.size:
      raise ValueError(f"a continuous question needs target tasks of shape (T, "
                       f"{env.task_space.size}), got {np.shape(targets)}.")
    if not np.asarray(env.task_space.contains(jnp.asarray(targets))).all():
      raise ValueError("target tasks lie outside the task space "
                       f"{env.task_space.low}..{env.task_space.high}.")
  question.loop_config(mask.size, 1 if targets is None else len(targets)).validate(env)


def num_candidates(env: MultiTaskEnv, question: Question) -> int:
  """How many candidates the question's proposal scores (G)."""
  return proposals.parse(question.proposal)[1] or question.num_candidates or env.num_tasks


def suggest(env: MultiTaskEnv, learner, state: Any, demos: data_lib.Dataset, key: jax.Array,
            question: Question = Question(), targets: Optional[jax.Array] = None) -> Suggestion:
  """AMF's next batch for `learner` in `state` given `demos` (every slot, empty ones masked;
  episodes of `T < env.horizon` steps are padded to the horizon, `data.pad`).

  `key` is the selection's key (the loop's round key `selection` stream). On a finite set the
  targets are its tasks (mu: `question.target_tasks` / `target_mass`); in a continuous space
  `targets` (T, P) are the target tasks, uniform. The program is compiled once per process
  for each environment, learner, question and data shape (`_answer`'s static arguments).
  """
  check(env, learner, demos, question, targets)
  steps = None if demos.steps is None else np.asarray(demos.steps, bool)
  demos = jax.tree.map(jnp.asarray, demos._replace(mask=np.asarray(demos.mask, bool),
                                                   task_id=np.asarray(demos.task_id, np.int32),
                                                   steps=steps))
  if demos.obs.shape[1] < env.horizon:
    demos = data_lib.pad(demos, env.horizon)
  targets = env.tasks if question.task_space == "finite" else jnp.asarray(targets, jnp.float32)
  return _answer(state, demos, targets, key, env=_Same(env), learner=_Same(learner),
                 question=question)


class _Same(NamedTuple):
  """A static argument compared by identity: a learner or an environment need not hash (a
  learner read from JSON holds lists). The compiled program keeps it alive."""
  value: Any

  def __hash__(self):
    return id(self.value)

  def __eq__(self, other):
    return isinstance(other, _Same) and other.value is self.value


@functools.partial(jax.jit, static_argnames=("env", "learner", "question"))
def _answer(state, demos, targets, key, *, env: _Same, learner: _Same,
            question: "Question") -> Suggestion:
  env, learner = env.value, learner.value
  loop = make_loop(env, learner, question.loop_config(demos.size, targets.shape[0]))
  kernel = learner.kernels.index(question.kernel or learner.kernels[0])
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


# --- Files: a saved policy, demonstrations, the question. ---

POLICY_FILE = "policy.json"


class Policy(NamedTuple):
  """A policy restored by `load_policy`."""
  env: MultiTaskEnv
  learner: Any
  state: Any
  selection_key: Optional[jax.Array]  # the key saved with it, or None
  question: Question  # the loop's settings it was trained under: the question's defaults


def save_policy(directory: str, env_name: str, env_kwargs: dict, config, state: Any,
                selection_key: Optional[jax.Array] = None,
                question: Optional[Question] = None) -> None:
  """Saves a policy for `suggest`: `policy.json` (the environment by name, the learner's
  config, see `amf.nn_learner.make`, the loop's question, which holds the command's defaults:
  `question`, else `Question.from_config(config)`, and optionally the selection key to use)
  and the learner's state (orbax, under `state/`)."""
  os.makedirs(directory, exist_ok=True)
  spec = dict(env=env_name, env_kwargs=dict(env_kwargs),
              learner=nn_learner.Spec.from_config(config).to_dict(),
              loop=(question or Question.from_config(config)).settings())
  if selection_key is not None:
    spec["selection_key"] = np.asarray(jax.random.key_data(selection_key)).tolist()
  pathlib.Path(directory, POLICY_FILE).write_text(json.dumps(spec, indent=1))
  checkpoint.save(os.path.join(directory, "state"), state)


def _first_line(e: Exception) -> str:
  return str(e).splitlines()[0] if str(e) else ""


def _read_json(path: pathlib.Path, what: str) -> dict:
  try:
    spec = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{what}: cannot read {path} as JSON ({e}).") from None
  if not isinstance(spec, dict):
    raise ValueError(f"{what}: {path} holds a {type(spec).__name__}, not a JSON object.")
  return spec


def load_policy(directory: str) -> Policy:
  """The policy saved by `save_policy` in `directory`; a file that does not describe it (a
  missing or unreadable part, a state whose shapes are not the learner's) is refused."""
  path = pathlib.Path(directory, POLICY_FILE)
  if not path.is_file():
    raise ValueError(f"policy: {path} not found (a directory written by "
                     "amf.suggest.save_policy holds it).")
  spec = _read_json(path, "policy")
  own = "network" in spec
  missing = [k for k in (OWN_KEYS if own else ("env", "learner")) if k not in spec]
  if missing:
    raise ValueError(f"policy: {path} lacks {missing}.")
  try:
    env, learner, like = (_own_network if own else _testbed)(spec, str(path))
  except (TypeError, KeyError, ValueError) as e:
    raise ValueError(f"policy: {path}: its environment or learner does not build "
                     f"({type(e).__name__}: {_first_line(e)}).") from None
  state = _restore(pathlib.Path(directory, "state"), like, path)
  try:
    question = Question.from_config(spec.get("loop", {}))
  except (TypeError, ValueError) as e:
    raise ValueError(f"policy: {path}: its loop settings do not read ({e}).") from None
  key = spec.get("selection_key")
  return Policy(env, learner, state, None if key is None else jnp.asarray(key, jnp.uint32),
                question)


def _testbed(spec: dict, where: str):
  """`(env, learner, state shapes)` of a testbed policy: a registered environment and
  `amf.nn_learner`'s network."""
  del where
  env = envs.make(spec["env"], **spec.get("env_kwargs", {}))
  learner = nn_learner.make(nn_learner.Spec.from_config(spec["learner"]), env)
  return env, learner, jax.eval_shape(learner.init, data_lib.empty(env, 1),
                                      jax.random.PRNGKey(0))


# What policy.json holds for a lab's own network (`save_flax_policy`).
OWN_KEYS = ("network", "horizon", "observation_size", "action_size", "task_space", "kernels")


def _own_network(spec: dict, where: str):
  """`(env, learner, parameter shapes)` of a lab's own network (`amf.flax_policy`): its task
  space and sizes as a `task_sets.TaskSet`."""
  bad = [k for k in OWN_KEYS[1:4] if not _whole(spec[k]) or spec[k] < 1]
  if bad:
    raise ValueError(f"{bad} must be whole numbers >= 1.")
  sizes = task_sets.Sizes(spec["horizon"], spec["observation_size"], spec["action_size"])
  env = task_sets.from_spec(spec["task_space"], sizes, where)
  policy = flax_policy.build(spec["network"], env.observation_size, env.task_feature_size,
                             env.action_size, **spec.get("network_kwargs", {}))
  learner = flax_policy.learner(policy, env, tuple(spec["kernels"]), spec.get("noise", 0.1),
                                nn_kernels.Hyper(**spec.get("kernel_hyper", {})),
                                bool(spec.get("fit_noise", False)))
  return env, learner, flax_policy.like(policy, env.observation_size + env.task_feature_size)


def save_flax_policy(directory: str, network: str, params: Any, task_space: dict,
                     horizon: int, observation_size: int, action_size: int,
                     kernels=("loss_gradient",), noise: float = 0.1,
                     question: Question = Question(), selection_key=None,
                     **network_kwargs) -> None:
  """Saves a lab's own network for the command: `policy.json` names the function that builds
  its `amf.flax_policy.FlaxPolicy` (`network`, "package.module:function", called with the
  sizes and `network_kwargs`), the sizes, the task space (`amf.task_sets.from_spec`), the
  kernels and the question's defaults; `state/` holds `params` (orbax)."""
  os.makedirs(directory, exist_ok=True)
  spec = dict(network=network, network_kwargs=network_kwargs, horizon=horizon,
              observation_size=observation_size, action_size=action_size,
              task_space=task_space, kernels=list(kernels), noise=noise,
              loop=question.settings())
  if selection_key is not None:
    spec["selection_key"] = np.asarray(jax.random.key_data(selection_key)).tolist()
  pathlib.Path(directory, POLICY_FILE).write_text(json.dumps(spec, indent=1))
  checkpoint.save(os.path.join(directory, "state"), params)


def _restore(path: pathlib.Path, like, spec_path: pathlib.Path):
  """The state at `path` with the shapes of `like`, checked against the checkpoint's metadata
  first: a mismatch (e.g. `hidden` edited in policy.json) is one line, not orbax's errors."""
  if not path.is_dir():
    raise ValueError(f"policy: the learner state {path} is missing (save_policy writes it "
                     f"beside {spec_path.name}).")
  try:
    have = sorted(checkpoint.saved_shapes(str(path)))
  except Exception as e:  # pylint: disable=broad-except  (orbax raises many types)
    raise ValueError(f"policy: {path} is not a readable orbax checkpoint "
                     f"({type(e).__name__}).") from None
  want = sorted(tuple(x.shape) for x in jax.tree.leaves(like))
  if have != want:
    diff = sorted(set(have) ^ set(want))[:3]
    raise ValueError(f"policy: the state in {path} does not fit the learner {spec_path} "
                     f"describes ({len(have)} arrays saved, {len(want)} expected; shapes "
                     f"differing: {diff}); was policy.json edited (e.g. hidden)?")
  return checkpoint.restore(str(path), like)


# The question file's keys: (what the value must be, its check).
_INT = ("a whole number", _whole)
_NUM = ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
_STR = ("a string", lambda v: isinstance(v, str))
_LIST = ("a list", lambda v: isinstance(v, list))
QUESTION_KEYS = dict(batch_size=_INT, kernel=_STR, estimator=_STR, space=_STR, targets=_LIST,
                     weights=_LIST, target_region=_LIST, num_targets=_INT, proposal=_STR,
                     num_candidates=_INT, ascent=("an object", lambda v: isinstance(v, dict)),
                     occupancy_samples=_INT, stride=_INT,
                     task_space=("an object", lambda v: isinstance(v, dict)))
_ASCENT = dict(starts=_INT, steps=_INT, learning_rate=_NUM)
_AT_LEAST = dict(batch_size=1, num_targets=1, num_candidates=0, occupancy_samples=1, stride=1)


def _typed(spec: dict, schema: dict, where: str) -> None:
  unknown = sorted(set(spec) - set(schema))
  if unknown:
    raise ValueError(f"{where}: unknown keys {unknown}; allowed: {list(schema)}.")
  for k, v in spec.items():
    kind, ok = schema[k]
    if not ok(v):
      raise ValueError(f"{where}: {k} must be {kind}, got {v!r}.")
    if k in _AT_LEAST and v < _AT_LEAST[k]:
      raise ValueError(f"{where}: {k} must be at least {_AT_LEAST[k]}, got {v}.")


class Asked(NamedTuple):
  """A question file read by `load_question`."""
  question: Question
  targets: Optional[np.ndarray]  # a continuous question's target tasks (T, P); finite: None
  env: MultiTaskEnv  # its task space (`task_sets.TaskSet`), else the policy's environment


def load_question(path: str, env: MultiTaskEnv, key: jax.Array,
                  defaults: Question = Question(), **overrides) -> Asked:
  """A question from a JSON file (keys: `QUESTION_KEYS`) over `defaults` (the loop's: a saved
  policy's `Policy.question`); `overrides` (e.g. the command's flags) replace its values.
  Its tasks are `env`'s, or its own `task_space` (`amf.task_sets.from_spec`: a finite list
  with feature vectors or a box with a feature map by name). A continuous question's targets
  are listed (`targets`: [[c...], ...]) or drawn from `target_region` ([[low, high], ...])
  with `key`; the region is also where `random` candidates are drawn (all of C without one).
  Messages name the file and its keys."""
  path = pathlib.Path(path)
  spec = _read_json(path, "tasks")
  spec.update({k: v for k, v in overrides.items() if v is not None})
  where = f"tasks: {path}"
  _typed(spec, QUESTION_KEYS, where)
  _typed(spec.get("ascent", {}), _ASCENT, f"{where}: ascent")
  if "task_space" in spec:
    env = task_sets.from_spec(spec["task_space"], env, where)
  space = spec.get("space", defaults.task_space)
  try:  # names of registered parts
    task_spaces.get(space)
    proposals.parse(spec.get("proposal", defaults.proposal))
    occupancy.get(spec.get("estimator", defaults.estimator))
  except ValueError as e:
    raise ValueError(f"{where}: {e}") from None
  renamed = dict(space="task_space")
  fields = {renamed.get(k, k): v for k, v in spec.items() if k in (
      "batch_size", "kernel", "estimator", "space", "num_targets", "proposal",
      "num_candidates", "occupancy_samples", "stride")}
  if "num_candidates" in spec and "proposal" not in spec:  # the file's N, not the default's
    fields["proposal"] = proposals.parse(defaults.proposal)[0]
  if "ascent" in spec:
    fields["ascent"] = defaults.ascent._replace(**spec["ascent"])
  targets = None
  if space == "finite":
    if "target_region" in spec:
      raise ValueError(f"{where}: target_region is for a continuous space (\"space\": "
                       "\"continuous\"); a finite one lists target task ids in targets.")
    if "targets" in spec:
      ids = spec["targets"]
      if not all(_INT[1](i) for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"{where}: targets must be distinct task ids of the finite set, "
                         f"got {ids!r}.")
      bad = [i for i in ids if not 0 <= i < env.num_tasks]
      if bad:
        raise ValueError(f"{where}: target ids {bad} are not tasks of the finite set "
                         f"(0..{env.num_tasks - 1}).")
      fields.update(target_tasks=tuple(ids), target_mass=())
    if "weights" in spec:
      ids = fields.get("target_tasks") or defaults.target_tasks or tuple(range(env.num_tasks))
      w = task_sets.numbers(spec["weights"], 1, f"{where}: weights", "a list of numbers")
      if len(w) != len(ids) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{where}: weights needs one non-negative weight per target task "
                         f"({len(ids)}: {'targets' if 'targets' in spec else 'every task'}), "
                         f"not all zero; got {spec['weights']!r}.")
      fields.update(target_tasks=tuple(ids), target_mass=tuple(float(x) for x in w))
  else:
    fields.update(target_tasks=(), target_mass=())
    if "weights" in spec:
      raise ValueError(f"{where}: weights are mu on a finite set's targets; a continuous "
                       "space's mu is uniform on target_region.")
    size = env.task_space.size
    if "targets" in spec:
      targets = task_sets.numbers(spec["targets"], 2, f"{where}: targets", "a list of tasks "
                                  f"[[c...], ...] of {size} parameters each").astype(np.float32)
    if "target_region" in spec:
      region = task_sets.numbers(spec["target_region"], 2, f"{where}: target_region",
                                 f"[[low, high], ...] for each of the {size} task parameters")
      fields["target_region"] = tuple(tuple(float(x) for x in b) for b in region)
      try:
        box = env.task_space.region(fields["target_region"])
      except ValueError as e:
        raise ValueError(f"{where}: target_region: {e}") from None
      if targets is None:
        targets = box.sample(key, fields.get("num_targets", defaults.num_targets))
    if targets is None:
      raise ValueError(f"{where}: a continuous question needs targets ([[c...], ...]) or a "
                       "target_region ([[low, high], ...]).")
  return Asked(dataclasses.replace(defaults, **fields), targets, env)


def with_tasks(learner, env: MultiTaskEnv):
  """`learner` reading task features from `env` (a question's own task space)."""
  return learner if learner.env is env else learner._replace(env=env)


# --- The command. ---

def repeats(env: MultiTaskEnv, question: Question) -> str:
  """A note when the batch is larger than the distinct candidates ("" otherwise)."""
  g = num_candidates(env, question)
  if question.batch_size <= g:
    return ""
  return (f"Note: a batch of {question.batch_size} from {g} distinct candidates: AMF asks for "
          "some tasks more than once (each later pick is scored given the earlier ones).")


def table(s: Suggestion, question: Question, note: str = "") -> str:
  """A ranked table a person reads in seconds."""
  fmt = lambda c: "(" + ", ".join(f"{x:.3f}" for x in np.asarray(c)) + ")"
  name = lambda i, c: (f"task {int(i):>3} {fmt(c)}" if i >= 0 else f"task {fmt(c)}")
  scores = np.asarray(s.scores)
  lines = [note] if note else []
  lines.append(f"Ask for, in this order ({question.kernel or 'default'} kernel, "
               f"{question.estimator} estimator, stride {question.stride}; alpha before the "
               "batch: each later pick is scored given the earlier ones):")
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


def as_json(s: Suggestion, question: Question, note: str = "", **inputs) -> dict:
  """The answer with every setting used (`Question.settings`) and `inputs` (files, key)."""
  tolist = lambda x: np.asarray(x).tolist()
  return dict(settings=question.settings(), inputs=inputs, note=note,
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
  """Bad input raises a ValueError before anything compiles or is written (`amf.cli` prints
  one line)."""
  from absl import flags
  from amf import plotting
  del argv
  f = flags.FLAGS
  out = pathlib.Path(f.out)
  if out.exists() and not out.is_dir():
    raise ValueError(f"--out={out} is a file; name a directory (for suggestion.json and "
                     "suggestion.png).")
  start = time.perf_counter()
  policy = load_policy(f.policy)
  streams = keys.streams(jax.random.PRNGKey(f.seed or 0), ("selection", "targets"))
  key = (policy.selection_key if policy.selection_key is not None and f.seed is None
         else streams["selection"])
  question, targets, env = load_question(f.tasks, policy.env, streams["targets"],
                                         policy.question, batch_size=f.batch, kernel=f.kernel,
                                         estimator=f.estimator)
  demos = load_demos(f.demos, env.horizon)
  question = dataclasses.replace(question, kernel=question.kernel or policy.learner.kernels[0])
  loaded = time.perf_counter()
  s = jax.block_until_ready(suggest(env, with_tasks(policy.learner, env), policy.state, demos,
                                    key, question, targets))
  answered = time.perf_counter()
  note = repeats(env, question)
  print(table(s, question, note))
  out.mkdir(parents=True, exist_ok=True)
  result = as_json(s, question, note, policy=str(f.policy), demos=str(f.demos),
                   tasks=str(f.tasks), selection_key=np.asarray(key).tolist(),
                   targets=None if targets is None else np.asarray(targets).tolist())
  (out / "suggestion.json").write_text(json.dumps(result, indent=1))
  figure = plotting.suggestion(result, out / "suggestion.png", env.task_space.size)
  print(f"Wrote {out / 'suggestion.json'} and {figure}.")
  print(f"Time: loading {loaded - start:.1f} s, answering {answered - loaded:.1f} s "
        "(compilation included).")


def _flags() -> None:
  from absl import flags
  flags.DEFINE_string("policy", None, "Directory of a policy saved by amf.suggest.save_policy.")
  flags.DEFINE_string("demos", None, "Demonstrations: a .npz of stacked episodes, a directory "
                      "of one-episode .npz files or a robomimic-style HDF5 file.")
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
