"""`amf/cli.py`: a script's bad input is one line on stderr and exit status 2."""
import pytest

from amf import cli


def test_a_value_error_is_one_line_and_status_2(monkeypatch, capsys):
  monkeypatch.setattr(cli.app, "run", lambda main: main(["prog"]))

  def main(argv):
    raise ValueError("Unknown kernel 'x'; choose one of ['rbf'].")

  with pytest.raises(SystemExit) as exit_:
    cli.run(main)
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert err.strip().endswith("error: Unknown kernel 'x'; choose one of ['rbf'].")
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_other_errors_are_not_hidden(monkeypatch):
  monkeypatch.setattr(cli.app, "run", lambda main: main(["prog"]))
  with pytest.raises(ZeroDivisionError):
    cli.run(lambda argv: 1 / 0)
