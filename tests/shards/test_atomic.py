"""Every write goes through shards.atomic: exclusive unpredictable temp files, no write through a link."""
import os
import stat

import pytest

from shards.atomic import AtomicFile, atomic_file, make_dir, open_log, remove_stale_tmp, write_atomic
from shards.errors import UsageError


def test_a_planted_temp_name_link_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in (f".model.onnx.tmp{os.getpid()}", ".model.onnx.tmp1", ".model.onnx.tmp"):
        (run / name).symlink_to(victim)
    write_atomic(run / "model.onnx", b"model")
    assert victim.read_text() == "precious"
    assert (run / "model.onnx").read_bytes() == b"model"


def test_a_link_at_the_final_name_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "report.md").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        write_atomic(tmp_path / "report.md", "# report")
    assert victim.read_text() == "precious"
    assert (tmp_path / "report.md").is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_folder_at_the_final_name_is_refused(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        write_atomic(tmp_path / "out.csv", "a,b\n")


def test_a_new_file_gets_the_mode_open_would_give(tmp_path):
    mask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "f", b"x")
    finally:
        os.umask(mask)
    # the module reads the umask at import; the test process's umask is what both see
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o666 & ~mask


def test_an_error_while_writing_leaves_the_old_file_and_no_temp_file(tmp_path):
    (tmp_path / "f").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "f", "w") as f:
            f.write("new, half")
            raise RuntimeError("killed")
    assert (tmp_path / "f").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_what_a_killed_writer_left_is_cleaned_and_nothing_else(tmp_path):
    left = AtomicFile(tmp_path / "last.pt")
    left.file.write(b"half")
    left.file.close()  # killed: never committed, never aborted
    assert left.tmp.name.startswith(".last.pt.tmp-")
    (tmp_path / ".notes.tmp-abcdefgh").write_text("mine")
    (tmp_path / "last.pt.tmp-abcdefgh").write_text("mine too")
    remove_stale_tmp(tmp_path, ["last.pt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp-abcdefgh", "last.pt.tmp-abcdefgh"]


def test_a_log_that_is_a_link_is_refused(tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("precious")
    (tmp_path / "train.log").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        open_log(tmp_path / "train.log")
    assert victim.read_text() == "precious"


def test_a_log_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "train.log")
    with pytest.raises(UsageError, match="train.log"):
        open_log(tmp_path / "train.log")


def test_a_log_is_appended_to(tmp_path):
    for line in ("a\n", "b\n"):
        with open_log(tmp_path / "train.log") as f:
            f.write(line)
    assert (tmp_path / "train.log").read_text() == "a\nb\n"


def test_a_folder_that_is_a_link_or_a_file_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "report").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="symbolic link"):
        make_dir(tmp_path / "report")
    (tmp_path / "export").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        make_dir(tmp_path / "export")
