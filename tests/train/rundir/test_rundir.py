"""A run dir holds one run: what finished means, --resume never, bad files, false refusals, train.log."""
import errno
import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from shards.errors import UsageError
from train.loop.fit import fit
from train.rundir.checkpoint import save_checkpoint
from train.rundir.resume import check_resume, open_run_dir

from conftest import tiny_fit


@pytest.fixture
def finished_copy(stage1_run, tmp_path) -> Path:
    """A writable copy of the finished stage-1 run (a copied run dir, at another path)."""
    return Path(shutil.copytree(stage1_run, tmp_path / "copied-run"))


def test_a_copied_run_over_copied_shards_on_another_device_setting_is_still_finished(finished_copy, shards_copy):
    before = (finished_copy / "summary.json").stat().st_mtime_ns
    cfg = tiny_fit(str(shards_copy) + "/", finished_copy, epochs=1, device="cpu")
    assert fit(cfg) == "finished"
    assert (finished_copy / "summary.json").stat().st_mtime_ns == before


def test_a_summary_beside_another_runs_config_is_not_a_finished_run(finished_copy, shards_dir):
    meta = json.loads((finished_copy / "config.json").read_text())
    meta["config"]["epochs"] = 9
    (finished_copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="summary.json does not belong to the config.json .* --resume never"):
        fit(tiny_fit(shards_dir, finished_copy, epochs=1))


def test_a_corrupt_summary_is_one_line_naming_it(finished_copy, shards_dir):
    (finished_copy / "summary.json").write_text('{"balanced_test": ')
    with pytest.raises(UsageError, match=r"summary.json is damaged .*--resume never"):
        fit(tiny_fit(shards_dir, finished_copy, epochs=1))


@pytest.mark.slow
def test_resume_never_moves_a_finished_run_aside_and_an_interrupted_restart_is_not_finished(shards_dir, tmp_path):
    run = tmp_path / "run"
    assert fit(tiny_fit(shards_dir, run, epochs=1)) == "finished"
    assert fit(tiny_fit(shards_dir, run, epochs=1, resume="never"), stop=lambda e, s: s >= 1) == "interrupted"
    (old,) = tmp_path.glob("run.old-*")
    assert (old / "summary.json").exists() and (old / "predictions").exists()
    assert not (run / "summary.json").exists() and not (run / "predictions").exists()
    assert "moved the earlier run" in (run / "train.log").read_text()
    saved = check_resume(tiny_fit(shards_dir, run, epochs=1), run, json.loads((old / "config.json").read_text())
                         ["index_sha256"])
    assert "model" in saved  # the interrupted new run resumes; nothing says "finished already"


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def bad_last_pt(kind: str, path: Path) -> None:
    if kind == "truncated":
        torch.save({"model": {"w": torch.zeros(1000)}, "config": {}}, path)
        path.write_bytes(path.read_bytes()[:500])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong keys":
        torch.save({"weights": torch.zeros(3)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload()))


@pytest.mark.parametrize("kind", ["truncated", "empty", "wrong keys", "pickle payload"])
def test_a_corrupt_or_foreign_checkpoint_is_one_line_naming_it_and_the_fix(kind, shards_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    bad_last_pt(kind, run / "last.pt")
    with pytest.raises(UsageError, match=r"last.pt: .*--resume never") as e:
        fit(tiny_fit(shards_dir, run))
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)
    assert "this ran" not in capsys.readouterr().out


def test_disk_full_while_checkpointing_names_the_path_and_the_space_needed(tmp_path, monkeypatch):
    def full(state, f):
        f.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UsageError, match=r"last.pt: disk full while checkpointing; it needs about 4 MiB free"):
        save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.zeros(2 ** 20)}})
    assert list(tmp_path.iterdir()) == []  # no partial temp file left


def test_a_start_removes_stale_checkpoint_temp_files_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in (".last.pt.tmp4242", ".best.pt.tmp7", ".notes.tmp1", "last.pt.tmp9"):
        (run / name).write_text("x")
    open_run_dir(run, "auto")
    assert sorted(p.name for p in run.iterdir()) == [".notes.tmp1", "last.pt.tmp9"]


def test_an_out_dir_that_is_a_file_or_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="--out .*f: is a file, not a directory"):
        open_run_dir(tmp_path / "f", "auto")

    def read_only(self, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(UsageError, match=r"--out .*new: cannot create it \(Read-only file system\)"):
        open_run_dir(tmp_path / "new", "auto")


@pytest.mark.slow
def test_init_from_an_unfinished_stage_one_run_is_refused_unless_allowed_and_then_said(shards_dir, tmp_path):
    stage1 = tmp_path / "ce"
    assert fit(tiny_fit(shards_dir, stage1), stop=lambda e, s: e == 1) == "interrupted"  # best.pt of epoch 1
    cfg = tiny_fit(shards_dir, tmp_path / "tau", method="tau-norm", init_from=str(stage1))
    with pytest.raises(UsageError, match="--init-from .*ce: the stage-1 run has not finished.*--allow-unfinished"):
        fit(cfg)
    assert not (tmp_path / "tau").exists()
    import dataclasses

    assert fit(dataclasses.replace(cfg, allow_unfinished=True)) == "finished"
    summary = json.loads((tmp_path / "tau" / "summary.json").read_text())
    assert "had not finished" in summary["stage1_unfinished"]


def test_fit_from_python_logs_to_train_log_and_a_crash_leaves_its_traceback_there(shards_dir, tmp_path,
                                                                                monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.WARNING)  # as in a script that set up no logging
    monkeypatch.setattr(logging.getLogger("train"), "level", logging.NOTSET)
    root.manager._clear_cache()
    assert fit(tiny_fit(shards_dir, tmp_path / "ok", epochs=1)) == "finished"
    assert "epoch 1: train loss" in (tmp_path / "ok" / "train.log").read_text()

    import train.loop.fit

    def boom(*a, **kw):
        raise RuntimeError("boom in the trainer")

    monkeypatch.setattr(train.loop.fit, "check_resume", boom)
    with pytest.raises(RuntimeError, match="boom"):
        fit(tiny_fit(shards_dir, tmp_path / "crash", epochs=1))
    log = (tmp_path / "crash" / "train.log").read_text()
    assert "Traceback" in log and "RuntimeError: boom in the trainer" in log


def test_a_missing_predictions_file_is_written_again_the_way_its_error_says(shards_dir, tmp_path):
    from eval.report import report

    run = tmp_path / "run"
    assert fit(tiny_fit(shards_dir, run, epochs=1)) == "finished"
    before = (run / "predictions" / "test.parquet").read_bytes()
    metrics = (run / "metrics.csv").read_bytes()
    (run / "predictions" / "test.parquet").unlink()
    with pytest.raises(UsageError, match=f"move {run / 'summary.json'} aside and rerun the run's fit command"):
        report(run)
    (run / "summary.json").rename(tmp_path / "summary.json")
    assert fit(tiny_fit(shards_dir, run, epochs=1)) == "finished"
    assert (run / "predictions" / "test.parquet").read_bytes() == before
    assert (run / "metrics.csv").read_bytes() == metrics and (run / "summary.json").exists()


def test_a_two_stage_method_without_init_from_names_the_flag_and_the_stage_one_method(ml_shards_dir, tmp_path):
    with pytest.raises(UsageError, match=r"--method crt-bce starts from a finished stage-1 run: give --init-from "
                                         r"RUN, where RUN is the --out of `python -m train fit --method bce"):
        fit(tiny_fit(ml_shards_dir, tmp_path / "crt", "crt-bce"))
    assert not (tmp_path / "crt").exists()


def test_a_train_log_that_is_a_link_is_refused_and_its_target_untouched(shards_dir, tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").symlink_to(victim)
    with pytest.raises(UsageError, match="train.log is a symbolic link"):
        fit(tiny_fit(shards_dir, run, epochs=1))
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("run_fixture", ["stage1_run", "ml_stage1_run"])
def test_every_predictions_parquet_names_its_classes_in_its_schema(run_fixture, request):
    import pyarrow.parquet as pq

    run = request.getfixturevalue(run_fixture)
    names = json.loads((run / "config.json").read_text())["class_names"]
    files = sorted((run / "predictions").glob("*.parquet"))
    assert len(files) >= 2
    for path in files:
        schema = pq.read_schema(path)
        assert json.loads(schema.metadata[b"class_names"]) == names, path
        assert schema.field("logits").type.list_size == len(names)


def test_hparams_take_each_loss_param_as_its_own_entry_and_leave_out_what_tensorboard_cannot_show():
    from train.rundir.events import hparams

    got = hparams({"method": "focal", "loss_param": {"gamma": 3.0, "alpha": 0.25}, "pretrained": None,
                   "epochs": 2, "folds": [1, 2]})
    assert got == {"method": "focal", "loss_param.gamma": 3.0, "loss_param.alpha": 0.25, "pretrained": "none",
                   "epochs": 2}
