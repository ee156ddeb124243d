import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest import IngestError
from ingest.__main__ import parser
from ingest.adapters import NIH_CLASSES, file_sha256
from ingest.build import build_shards
from ingest.verify import verify
from shards.errors import UsageError
from shards.index import read_index
from shards.reader import decode
from shards.writer import read_members

from conftest import SHARD_PX, tiny_options


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_index_has_one_row_per_labelled_image_with_the_format_columns(shards_dir, raw_dir):
    index, meta = read_index(shards_dir / "index.parquet")
    assert meta["class_names"] == NIH_CLASSES and meta["dataset"] == "nih-cxr-lt"
    n = sum(len(pd.read_csv(raw_dir / "labels" / f"nih-cxr-lt_single-label_{s}.csv"))
            for s in ("train", "balanced-val", "test"))
    assert len(index) == n and index["key"].is_unique
    for col in ("key", "image_id", "patient_id", "split", "balanced_test", "label", "labels",
                "shard", "offset", "size", "sha256"):
        assert col in index.columns
    assert set(index["split"]) == {"train", "val", "test"}
    assert (index.loc[index["balanced_test"], "split"] == "test").all()
    assert all(np.argmax(ls) == lab for ls, lab in zip(index["labels"], index["label"]))


def test_bytes_at_each_index_offset_are_the_hashed_resized_image(shards_dir):
    index, _ = read_index(shards_dir / "index.parquet")
    data = {s: (shards_dir / s).read_bytes() for s in index["shard"].unique()}
    for row in index.itertuples():
        blob = data[row.shard][row.offset:row.offset + row.size]
        assert hashlib.sha256(blob).hexdigest() == row.sha256
    img = decode(blob)
    assert img.dtype == np.uint8 and img.shape == (SHARD_PX, SHARD_PX)


def test_shards_hold_image_and_label_per_key_without_dots_in_keys(shards_dir):
    index, _ = read_index(shards_dir / "index.parquet")
    for shard, rows in index.groupby("shard", sort=False):
        names = [m[0] for m in read_members(shards_dir / shard)]
        want = [n for k in rows["key"] for n in (f"{k}.jpg", f"{k}.cls")]
        assert names == want
        assert all(n.count(".") == 1 for n in names)
        assert (shards_dir / shard.replace(".tar", ".idx")).exists()


def test_splits_are_shuffled_at_pack_time(shards_dir):
    index, _ = read_index(shards_dir / "index.parquet")
    train = index[index["split"] == "train"]["image_id"].tolist()
    assert train != sorted(train)


def test_manifest_counts_hashes_and_benchmark_groups(shards_dir, raw_dir):
    m = json.loads((shards_dir / "manifest.json").read_text())
    index, _ = read_index(shards_dir / "index.parquet")
    train = index[index["split"] == "train"]
    assert m["counts"]["train"] == {c: int((train["label"] == i).sum()) for i, c in enumerate(NIH_CLASSES)}
    assert m["images"]["balanced-test"] == int(index["balanced_test"].sum())
    assert m["build"]["label_files"]["nih-cxr-lt_single-label_test.csv"] == \
        file_sha256(raw_dir / "labels" / "nih-cxr-lt_single-label_test.csv")
    # the scaled-down data keeps the benchmark's 7 / 9 / 4 grouping, not one from its own counts
    assert [m["groups"].count(g) for g in ("head", "medium", "tail")] == [7, 9, 4]
    for shard in m["shards"]:
        assert shard["sha256"] == file_sha256(shards_dir / shard["name"])
        assert shard["samples"] == int((index["shard"] == shard["name"]).sum())
    assert m["image"] == {"size": SHARD_PX, "format": "jpeg", "quality": 95, "ext": "jpg"}


def test_rebuild_with_more_workers_is_byte_identical(shards_dir, raw_dir, tmp_path):
    out = tmp_path / "again"
    build_shards(raw_dir, raw_dir / "labels", out, tiny_options(workers=2))
    assert tree_bytes(out) == tree_bytes(shards_dir)


def test_rerun_of_a_finished_build_changes_nothing_and_other_settings_are_refused(shards_copy, raw_dir):
    before = tree_bytes(shards_copy)
    build_shards(raw_dir, raw_dir / "labels", shards_copy, tiny_options())
    assert tree_bytes(shards_copy) == before
    with pytest.raises(IngestError, match="other settings"):
        build_shards(raw_dir, raw_dir / "labels", shards_copy, tiny_options(quality=80))


KILLABLE = """
import sys, time
import ingest.build as b
real = b.convert
def slow(*a):
    time.sleep(0.01)
    return real(*a)
b.convert = slow
from ingest.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_killed_build_resumes_without_redoing_shards_and_ends_byte_identical(shards_dir, raw_dir, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", KILLABLE, "build-shards", "--images", str(raw_dir), "--labels",
           str(raw_dir / "labels"), "--out", str(out), "--size", str(SHARD_PX), "--shard-size", "64", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (out / "train-000001.tar").exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.glob("*.tar"))
    assert finished and not (out / "manifest.json").exists()
    for name in finished:  # what carries a final name is complete
        assert (out / name).read_bytes() == (shards_dir / name).read_bytes()
    stamps = {n: os.stat(out / n).st_mtime_ns for n in finished}
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert {n: os.stat(out / n).st_mtime_ns for n in finished} == stamps
    assert tree_bytes(out) == tree_bytes(shards_dir)


def test_missing_image_is_an_error_and_nothing_is_written(raw_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    victim = sorted(raw_dir.glob("images_*/images/*.png"))[0]
    for p in raw_dir.glob("images_*/images/*.png"):
        if p != victim:
            (images / p.name).symlink_to(p)
    out = tmp_path / "out"
    with pytest.raises(IngestError, match=f"missing under .*{victim.name}"):
        build_shards(images, raw_dir / "labels", out, tiny_options())
    assert not out.exists()


def with_bad_image(raw_dir, tmp_path, content: bytes) -> tuple[Path, str]:
    images = tmp_path / "images"
    images.mkdir()
    victim = sorted(raw_dir.glob("images_*/images/*.png"))[5]
    for p in raw_dir.glob("images_*/images/*.png"):
        (images / p.name).symlink_to(p) if p != victim else (images / p.name).write_bytes(content)
    return images, victim.name


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n truncated"])
def test_bad_image_stops_the_build_naming_the_file_and_writes_no_index(raw_dir, tmp_path, content):
    images, name = with_bad_image(raw_dir, tmp_path, content)
    out = tmp_path / "out"
    with pytest.raises(IngestError, match=f"{name}: .*--skip-bad"):
        build_shards(images, raw_dir / "labels", out, tiny_options())
    assert not (out / "manifest.json").exists() and not (out / "index.parquet").exists()


def test_skip_bad_leaves_the_image_out_and_reports_it(raw_dir, tmp_path):
    images, name = with_bad_image(raw_dir, tmp_path, b"")
    out = tmp_path / "out"
    m = build_shards(images, raw_dir / "labels", out, tiny_options(skip_bad=True))
    report = json.loads((out / "ingest_report.json").read_text())
    assert [r["image_id"] for r in report["skipped"]] == [name] and "empty" in report["skipped"][0]["reason"]
    index, _ = read_index(out / "index.parquet")
    assert name not in set(index["image_id"]) and m["skipped"] == 1
    assert m["synthetic"] is False  # the images are not under synth's out dir
    assert sum(s["samples"] for s in m["shards"]) == len(index)


def test_not_enough_disk_is_refused_up_front(raw_dir, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6, 1000))
    out = tmp_path / "out"
    with pytest.raises(IngestError, match="GB needed .* free"):
        build_shards(raw_dir, raw_dir / "labels", out, tiny_options())
    assert not list(out.glob("*.tar"))


def test_multilabel_dataset_builds_with_multi_hot_labels(raw_dir, tmp_path):
    out = tmp_path / "ml"
    m = build_shards(raw_dir, raw_dir / "labels", out, tiny_options(dataset="nih-cxr-lt-multilabel"))
    index, _ = read_index(out / "index.parquet")
    assert m["multi_label"] and (index["label"] == -1).all()
    assert max(ls.sum() for ls in index["labels"]) > 1
    assert verify(out) == []


def test_a_build_from_synth_output_is_marked_synthetic_and_covers_its_index(shards_dir):
    m = json.loads((shards_dir / "manifest.json").read_text())
    assert m["synthetic"] is True
    assert m["index_sha256"] == file_sha256(shards_dir / "index.parquet")


def test_a_build_removes_only_its_own_stale_temp_files(raw_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    users = [".notes.tmp1", ".train-000000.tar.tmp", ".train-000000.tar.tmpx", "train-000000.tar.tmp12"]
    ours = [".train-000000.tar.tmp999999", ".train-000000.idx.tmp7", ".manifest.json.tmp42"]
    for name in users + ours:
        (out / name).write_text("x")
    build_shards(raw_dir, raw_dir / "labels", out, tiny_options())
    assert all((out / n).exists() for n in users) and not any((out / n).exists() for n in ours)


def test_disk_full_while_writing_is_one_error_naming_the_shard_and_the_space_needed(raw_dir, tmp_path,
                                                                                   monkeypatch):
    import errno

    from shards.writer import ShardWriter

    def full(self, key, components):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ShardWriter, "add", full)
    out = tmp_path / "out"
    with pytest.raises(IngestError, match=rf"{out}/train-000000.tar: disk full \(No space left on device\); "
                                          r"this build needs about \d+\.\d\d GB for \d+ images, .* GB are free"):
        build_shards(raw_dir, raw_dir / "labels", out, tiny_options())
    assert not list(out.glob(".*.tmp*"))


def test_an_out_that_is_a_file_or_read_only_is_one_error_naming_it(raw_dir, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(IngestError, match=f"--out {tmp_path / 'afile'} is a file"):
        build_shards(raw_dir, raw_dir / "labels", tmp_path / "afile", tiny_options())
    monkeypatch.setattr("ingest.build.os.access", lambda path, mode: False)  # as on a read-only file system
    with pytest.raises(IngestError, match=f"--out {tmp_path} is not writable"):
        build_shards(raw_dir, raw_dir / "labels", tmp_path, tiny_options())


def test_a_corrupt_manifest_in_out_is_one_error_naming_it(raw_dir, tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(UsageError, match=f"{tmp_path}/manifest.json: not readable JSON"):
        build_shards(raw_dir, raw_dir / "labels", tmp_path, tiny_options())


@pytest.mark.parametrize("argv,flag", [
    ("build-shards --size 0", "--size"), ("build-shards --quality 101", "--quality"),
    ("build-shards --quality 0", "--quality"), ("build-shards --shard-size 0", "--shard-size"),
    ("build-shards --workers -1", "--workers"), ("build-shards --max-pixels 0", "--max-pixels"),
    ("build-shards --size x", "--size"), ("synth --scale -0.5", "--scale"), ("synth --scale 2", "--scale"),
    ("synth --image-size 0", "--image-size"), ("bench --workers 1,0", "--workers"),
    ("bench --floor-images 0", "--floor-images")])
def test_numeric_flags_are_checked_when_parsed(argv, flag, capsys):
    required = {"build-shards": "--images i --labels l --out o", "synth": "--out o", "bench": "--images i --labels l"}
    cmd = argv.split()[0]
    with pytest.raises(SystemExit) as exit:
        parser().parse_args([cmd, *required[cmd].split(), *argv.split()[1:]])
    assert exit.value.code == 2
    assert f"error: argument {flag}: " in capsys.readouterr().err


def test_help_has_a_line_and_the_default_for_every_flag():
    subs = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions[1:]:  # after --help
            assert action.help, (name, action.dest)
            end = "(required)" if action.required else "" if action.default is None else \
                f"(default: {action.default})"
            assert f"{' '.join(action.help.split())} {end}".strip() in text, (name, action.dest)


def test_a_source_above_the_pixel_limit_stops_the_build_naming_the_file(raw_dir, tmp_path):
    with pytest.raises(IngestError, match=r"images_\d+/images/\S+\.png: 64 x 64 = 0.0 megapixels, above the limit "
                                          r"of 0.0001 megapixels \(build-shards: raise it with --max-pixels"):
        build_shards(raw_dir, raw_dir / "labels", tmp_path / "out", tiny_options(max_pixels=100))


def test_multi_label_tars_hold_the_multi_hot_labels_a_plain_webdataset_reader_reads(ml_shards_dir):
    import webdataset as wds

    index, meta = read_index(ml_shards_dir / "index.parquet")
    want = {k: np.asarray(ls, np.int64) for k, ls in zip(index["key"], index["labels"])}
    seen = 0
    for shard in sorted(set(index["shard"])):
        for sample in wds.WebDataset(str(ml_shards_dir / shard), shardshuffle=False):
            got = np.array(sample["labels"].decode().split(","), np.int64)
            np.testing.assert_array_equal(got, want[sample["__key__"]])
            assert "cls" not in sample and len(got) == len(meta["class_names"])
            seen += 1
    assert seen == len(index) and sum(v.sum() > 1 for v in want.values()) > 0  # some images have several findings
