"""A run dir from someone else: eval never writes through a link planted in it, nor over the run's own files."""
import shutil

import pytest

from eval.__main__ import main
from eval.report import report
from shards.errors import UsageError


@pytest.fixture
def run(stage1_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(stage1_run, dst, ignore=shutil.ignore_patterns("report*"))
    return dst


@pytest.mark.parametrize("name", ["report.md", "summary.json", "per_class.csv", "training_curves.png"])
def test_report_refuses_a_planted_link_in_its_folder(run, tmp_path, name):
    victim = tmp_path / "bashrc"
    victim.write_text("precious")
    (run / "report").mkdir()
    (run / "report" / name).symlink_to(victim)
    with pytest.raises(UsageError, match=f"{name} is a symbolic link"):
        report(run, n_boot=10)
    assert victim.read_text() == "precious"


def test_report_refuses_a_report_folder_that_is_a_link_or_a_file(run, tmp_path, capsys):
    (tmp_path / "home").mkdir()
    (run / "report").symlink_to(tmp_path / "home")
    assert main(["report", str(run), "--resamples", "10"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list((tmp_path / "home").iterdir()) == []
    (run / "report").unlink()
    (run / "report").write_text("")
    assert main(["report", str(run), "--resamples", "10"]) == 2
    assert "is a file where this tool writes a folder" in capsys.readouterr().err


def test_table_refuses_an_out_that_overwrites_a_runs_own_files(run, capsys):
    before = (run / "metrics.csv").read_bytes()
    assert main(["table", str(run), "--out", str(run / "metrics"), "--resamples", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.csv" in err and "destroy the run" in err
    assert (run / "metrics.csv").read_bytes() == before
