"""Writes settings added to the configs into a plan's committed records, so nothing reruns.

  python -m launch.migrate --workdir=docs/ablations_paper
  python -m launch.migrate --workdir=docs/ablations_paper --add=new_setting=0,other='"name"'

A process is done when its `config.json` equals the config the plan resolves now
(`launch.studies.holds`), and an arm is found by a key hashed from every setting
(`amf.arms.key`). Adding a setting to a config therefore makes every record written before
it differ. When the records' outputs are what the new setting computes at some value (the
value that reproduces the old code), this command writes the setting at that value into them,
once, instead of rerunning anything:

- every `config.json` under `--workdir` whose experiment config has the setting and which
  lacks it gets it, where a fresh run of that config would write it (key order, indent). The
  experiment config is the `--config` file named by the process's `launch.json`; a record
  without one is left as it is and named;
- every entry of the arm index `<workdir>/arms/` gets it in its `identity` on the same terms
  (unless it is among the settings that identify no arm, `amf.arms.ARM_SET`), and is then
  written under its identity's key (`amf.arms.digest`) in place of its old file.

`study.json` holds the studies' overrides, not resolved configs, and needs nothing. Running it
again changes nothing. Values are JSON (`0`, `"fixed_std"`, `[1, 2]`); a value that does not
parse as JSON is a string.
"""
import json
import os
from typing import Optional

from absl import flags, logging

from amf import arms, checkpoint, cli
from experiments import arm_index
from launch import studies

# The settings added after the committed processes ran, at the values they computed with:
# evaluation as before batching episodes, the fixed-std Gaussian head, an arm's runs in one call.
ADDED = ("eval_episode_batch=0", 'head="fixed_std"', "max_runs_per_call=0")


def additions(entries) -> dict:
  """`key=value` entries -> `{key: value}`, values parsed as JSON (else kept as strings)."""
  out = {}
  for entry in entries:
    key, sep, value = entry.partition("=")
    if not sep or not key:
      raise ValueError(f"--add takes key=value entries, got {entry!r}.")
    try:
      out[key] = json.loads(value)
    except ValueError:
      out[key] = value
  return out


def experiment_config(workdir: str) -> Optional[dict]:
  """The config file (defaults, no overrides) of the process in `workdir`, as JSON, from the
  `--config` its `launch.json` records; None where no record names one."""
  argv = studies.launch_record(workdir).get("argv", [])
  spec = next((a.removeprefix("--config=") for a in argv if a.startswith("--config=")), None)
  return json.loads(studies.config_file(spec).to_json()) if spec else None


def add(record: dict, schema: dict, key: str, value) -> bool:
  """Writes `value` at the dotted `key` into `record` where `schema` has the key and `record`
  lacks it, after the key that precedes it in `schema` (as a fresh run writes it); True if it
  did. A float setting given as an integer is written as a float, as the config writes it;
  another type is refused."""
  first, _, rest = key.partition(".")
  if first not in schema:
    return False
  if rest:
    return (isinstance(record.get(first), dict) and isinstance(schema[first], dict)
            and add(record[first], schema[first], rest, value))
  if first in record:
    return False
  default = schema[first]
  if isinstance(default, float) and type(value) is int:
    value = float(value)
  if default is not None and type(value) is not type(default):
    raise ValueError(f"--add={key}: {value!r} is a {type(value).__name__}; the config's {key} "
                     f"is a {type(default).__name__} ({default!r}).")
  order = list(schema)
  previous = [k for k in order[:order.index(first)] if k in record]
  items = list(record.items())
  at = list(record).index(previous[-1]) + 1 if previous else 0
  items.insert(at, (first, value))
  record.clear()
  record.update(items)
  return True


def _config_files(root: str):
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in ("arms", "checkpoints"))
    if "config.json" in files:
      yield folder


def migrate(root: str, settings: dict) -> dict:
  """Writes `settings` (`{dotted key: value}`) into the records under `root` (module
  docstring); returns counts of what it changed, per setting and in all, and the workdirs it
  could not read a config file for."""
  counts = {"config.json": 0, "arm entries": 0, "arm keys changed": 0,
            "duplicate arm entries dropped": 0, **{k: 0 for k in settings}, "left as is": []}
  schemas = {}

  def schema(workdir: str) -> Optional[dict]:
    if workdir not in schemas:
      schemas[workdir] = experiment_config(workdir)
      if schemas[workdir] is None:
        counts["left as is"].append(os.path.relpath(workdir, root))
    return schemas[workdir]

  for workdir in _config_files(root):
    config = studies.stored_config(workdir)
    if config is None or schema(workdir) is None:
      continue
    added = [k for k, v in settings.items() if add(config, schemas[workdir], k, v)]
    for k in added:
      counts[k] += 1
    if added:
      counts["config.json"] += 1
      checkpoint.save_json(os.path.join(workdir, "config.json"), config, indent=2)
  store = os.path.join(root, "arms")
  for name in sorted(os.listdir(store)) if os.path.isdir(store) else []:
    if not name.endswith(".json"):
      continue
    with open(os.path.join(store, name)) as f:
      entry = json.load(f)
    if set(entry) != {"workdir", "method", "identity"}:
      raise ValueError(f"{store}/{name} is no arm entry (keys {sorted(entry)}).")
    workdir = os.path.normpath(os.path.join(store, entry["workdir"]))
    identity = entry["identity"]
    known = schema(workdir)
    held = arms.settings(known) if known is not None else {}
    changed = [k for k, v in settings.items() if add(identity, held, k, v)]
    new = arms.digest(identity)
    if new == name.removesuffix(".json"):
      continue
    counts["arm entries"] += bool(changed)
    counts["arm keys changed"] += 1
    if os.path.exists(os.path.join(store, f"{new}.json")):
      counts["duplicate arm entries dropped"] += 1  # the arm is indexed under its key already
    else:
      arm_index.Folder(store, workdir).record(new, identity, entry["method"])
    os.remove(os.path.join(store, name))
  return counts


def main(argv):
  del argv
  root = flags.FLAGS.workdir
  if not os.path.isdir(root):
    raise ValueError(f"--workdir={root} is no folder.")
  counts = migrate(root, additions(flags.FLAGS.add))
  left = counts.pop("left as is")
  print(f"{root}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + (
      " (nothing to change)" if not any(counts.values()) else ""))
  if left:
    logging.warning("no launch.json names the config of %s: left as is", left)


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A plan's root (e.g. docs/ablations_paper): its "
                      "processes' records and its arms/ index are rewritten in place.")
  flags.DEFINE_list("add", list(ADDED), "key=value: a setting added to the configs, at the "
                    "value the committed outputs were computed with (JSON).")
  flags.mark_flag_as_required("workdir")
  cli.run(main)
