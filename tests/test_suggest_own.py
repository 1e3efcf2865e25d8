"""`amf.suggest` on a lab's own flax network (`amf.flax_policy`): the protocol gives the
testbed's answer on the testbed's network, and works on a network unlike it (LayerNorm,
residual, `@nn.compact`, last layer `out`) through the library and the command."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data, envs, flax_policy, nn_learner, suggest
from amf.nn_policy import FixedStd
from configs import active_finetune
from examples import own_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def lab():
  """The integrator's 12 goals as the lab's task space; demonstrations of goals 0, 1 and 2;
  the example's network trained on them by the example's own BC loop."""
  env = envs.make("integrator")
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 0, 1, 1, 2, 2]))
  policy = own_network.make(env.observation_size, 2, env.action_size, width=32)
  params, _ = jax.jit(lambda k: own_network.train(policy, env.task_features, demos.obs,
                                                  demos.actions, demos.task, 300, k))(
      jax.random.PRNGKey(1))
  return env, demos, policy, params


def test_the_features_of_a_compact_network_are_its_last_layers_input(lab):
  env, demos, policy, params = lab
  x = jnp.ones(4)
  phi = policy.features(params, x)
  assert phi.shape == (32,)
  out = params["params"]["out"]
  np.testing.assert_allclose(phi @ out["kernel"] + out["bias"], policy.outputs(params, x),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("change,match", [
    (dict(kernels=("dropout",)), r"kernels \['dropout'\] are not available for an own network"),
    (dict(kernels=("ntk_inf", "last_layer")), r"kernels \['ntk_inf'\]"),
    (dict(policy=lambda p: p._replace(last_layer="head")), "no layer 'head' among its direct"),
    (dict(policy=lambda p: p._replace(head=FixedStd(3, 0.05))), "acts in 3 dimensions"),
])
def test_policies_the_protocol_cannot_serve_are_refused(lab, change, match):
  env, demos, policy, params = lab
  policy = change.pop("policy", lambda p: p)(policy)
  with pytest.raises(ValueError, match=match):
    flax_policy.learner(policy, env, **{"kernels": ("last_layer",), **change})


@pytest.mark.slow  # compiles two suggestions
def test_the_protocol_on_the_testbeds_network_gives_the_testbeds_answer():
  c = active_finetune.get_config("integrator,quick")
  c.update(dict(pretrain_steps=50, hidden=(16, 16), forgetting="replay",
                kernels=("loss_gradient", "last_layer")))
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(nn_learner.Spec.from_config(c), env)
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 1, 2, 5]))
  state = jax.jit(learner.init)(demos, jax.random.PRNGKey(1))
  own = flax_policy.learner(flax_policy.FlaxPolicy(learner.policy.module, "head",
                                                   learner.policy.head),
                            env, learner.kernels, learner.noise)
  q = suggest.Question(batch_size=3, stride=2, occupancy_samples=2, kernel="loss_gradient")
  key = jax.random.PRNGKey(2)
  ref = suggest.suggest(env, learner, state, demos, key, q)
  s = suggest.suggest(env, own, state.params, demos, key, q)
  np.testing.assert_array_equal(s.ids, ref.ids)
  np.testing.assert_allclose(s.scores, ref.scores, rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # a subprocess
def test_an_own_network_through_the_library_and_the_command(lab, tmp_path):
  env, demos, policy, params = lab
  own_network.write_hdf5(tmp_path / "demos.hdf5", *(np.asarray(x) for x in (
      demos.obs, demos.actions, demos.task)))
  suggest.save_flax_policy(tmp_path / "policy", "examples.own_network:make", params,
                           own_network.TASK_SPACE, env.horizon, env.observation_size,
                           env.action_size, kernels=("last_layer", "loss_gradient"),
                           selection_key=jax.random.PRNGKey(5), width=32)
  (tmp_path / "tasks.json").write_text(json.dumps(dict(batch_size=2, stride=2)))
  loaded = suggest.load_policy(tmp_path / "policy")
  assert isinstance(loaded.learner, flax_policy.FlaxLearner)
  question, targets, tasks = suggest.load_question(tmp_path / "tasks.json", loaded.env,
                                                   jax.random.PRNGKey(0), loaded.question)
  s = suggest.suggest(tasks, loaded.learner, loaded.state,
                      suggest.load_demos(tmp_path / "demos.hdf5"), loaded.selection_key,
                      question, targets)
  # Trained on goals 0-2 only, it asks for others first.
  assert not set(np.asarray(s.ids).tolist()) & {0, 1, 2}
  run = subprocess.run(
      [sys.executable, "-m", "amf.suggest", f"--policy={tmp_path / 'policy'}",
       f"--demos={tmp_path / 'demos.hdf5'}", f"--tasks={tmp_path / 'tasks.json'}",
       f"--out={tmp_path / 'answer'}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-2000:]
  answer = json.loads((tmp_path / "answer" / "suggestion.json").read_text())
  assert [a["id"] for a in answer["asked"]] == np.asarray(s.ids).tolist()
  assert answer["settings"]["kernels"] == ["last_layer"] and answer["settings"]["stride"] == 2
