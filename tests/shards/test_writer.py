import json
import tarfile

import webdataset as wds
from wds2idx import IndexCreator  # shipped with DALI

from shards.atomic import write_atomic
from shards.writer import ShardWriter, read_members


def write_shard(path, samples):
    w = ShardWriter(path)
    placed = [w.add(k, comps) for k, comps in samples]
    info = w.finish()
    w.commit()
    return placed, info


SAMPLES = [("a_1", {"jpg": b"\xff\xd8" + b"x" * 700, "cls": b"3"}), ("b-2", {"jpg": b"y" * 5, "cls": b"12"})]


def test_offsets_point_at_each_member_and_headers_are_reproducible(tmp_path):
    placed, info = write_shard(tmp_path / "s.tar", SAMPLES)
    data = (tmp_path / "s.tar").read_bytes()
    for (key, comps), where in zip(SAMPLES, placed):
        for ext, blob in comps.items():
            off, size = where[ext]
            assert data[off:off + size] == blob
    with tarfile.open(tmp_path / "s.tar") as tar:
        m = tar.getmembers()[0]
        assert (m.mtime, m.mode, m.uid, m.uname, m.pax_headers) == (0, 0o444, 0, "", {})
    _, again = write_shard(tmp_path / "t.tar", SAMPLES)
    assert again["sha256"] == info["sha256"] and info["samples"] == 2


def test_idx_equals_what_dalis_wds2idx_writes(tmp_path):
    write_shard(tmp_path / "s.tar", SAMPLES)
    with IndexCreator(str(tmp_path / "s.tar"), str(tmp_path / "ref.idx"), verbose=False) as ic:
        ic.create_index()
    assert (tmp_path / "s.idx").read_text() == (tmp_path / "ref.idx").read_text()


def test_webdataset_reads_the_samples_back(tmp_path):
    write_shard(tmp_path / "s.tar", SAMPLES)
    got = [(s["__key__"], s["cls"]) for s in wds.WebDataset(str(tmp_path / "s.tar"), shardshuffle=False)]
    assert got == [("a_1", b"3"), ("b-2", b"12")]


def test_nothing_appears_under_the_final_name_before_commit(tmp_path):
    w = ShardWriter(tmp_path / "s.tar")
    w.add(*SAMPLES[0])
    w.finish()
    assert not (tmp_path / "s.tar").exists() and not (tmp_path / "s.idx").exists()
    w.commit()
    assert [m[0] for m in read_members(tmp_path / "s.tar")] == ["a_1.jpg", "a_1.cls"]


def test_abort_leaves_no_files(tmp_path):
    w = ShardWriter(tmp_path / "s.tar")
    w.add(*SAMPLES[0])
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_replaces_whole_files_only(tmp_path):
    target = tmp_path / "m.json"
    write_atomic(target, json.dumps({"v": 1}).encode())
    write_atomic(target, json.dumps({"v": 2}).encode())
    assert json.loads(target.read_text()) == {"v": 2} and [p.name for p in tmp_path.iterdir()] == ["m.json"]
