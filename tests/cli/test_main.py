"""The command line's error handling for a command whose optional dependencies are not installed."""

from allseeing.cli import main
from allseeing.cli import rec as rec_cli


def test_a_missing_optional_package_is_one_line(monkeypatch, capsys):
    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(rec_cli, "run_convert_box", needs_torch)
    assert (
        main(["rec", "convert-box", "--from", "raw100", "--to", "pixel", "--size", "5", "5", "1", "1", "2", "2"]) == 1
    )
    assert capsys.readouterr().err == (
        "allseeing rec: error: this command needs the package 'torch'; "
        "install the extras: pip install torch==2.13.0 -e '.[model,eval]'\n"
    )
