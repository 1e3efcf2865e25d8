"""Running a script as an absl app whose bad input is one line, not a traceback.

Every script's bad input (unknown names, impossible settings, unreadable files) raises a
ValueError before long work starts. `run(main)` prints it as `<program>: error: <message>` on
stderr and exits with status 2; the traceback goes to the log at `--verbosity=1`.
"""
import os
import sys
from typing import Callable

from absl import app, logging


def run(main: Callable) -> None:
  """`absl.app.run(main)`, with a ValueError reported in one line (exit status 2)."""
  spec = getattr(sys.modules["__main__"], "__spec__", None)
  program = spec.name if spec else os.path.basename(sys.argv[0])

  def main_(argv):
    try:
      return main(argv)
    except ValueError as e:
      logging.debug("%s failed:", program, exc_info=True)
      print(f"{program}: error: {e}", file=sys.stderr, flush=True)
      sys.exit(2)

  app.run(main_)
