import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from shards.errors import UsageError
from shards.format import key_for
from shards.index import read_index
from shards.reader import NotAShardsDir, open_shards

SHARD = "train-000001.tar"  # a shard in the middle of the fixture's train split


def test_samples_follow_the_index_in_pack_order(shards_dir):
    ss = open_shards(shards_dir)
    got = list(ss.samples("val"))
    rows = ss.view("val")
    assert [k for k, _, _ in got] == rows["key"].tolist()
    assert [lab for _, _, lab in got] == rows["label"].tolist()
    assert all(img.dtype == np.uint8 and img.shape == (32, 32) and img.std() > 0 for _, img, _ in got)


def test_views_counts_and_groups(shards_dir):
    ss = open_shards(shards_dir)
    assert len(ss.view("balanced-test")) == ss.manifest["images"]["balanced-test"]
    assert ss.train_counts().tolist() == list(ss.manifest["counts"]["train"].values())
    assert len(ss.groups) == ss.num_classes == 20
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        ss.view("dev")


def test_a_shardset_pickles_for_worker_processes(shards_dir):
    ss = open_shards(shards_dir)
    next(ss.samples("val"))
    clone = pickle.loads(pickle.dumps(ss))
    assert next(clone.samples("val"))[0] == next(ss.samples("val"))[0]


def test_unfinished_dir_says_how_to_finish_it(tmp_path):
    with pytest.raises(NotAShardsDir, match="python -m ingest build-shards"):
        open_shards(tmp_path)


def test_keys_drop_the_extension_and_refuse_dots():
    assert key_for("00000583_003.png") == "00000583_003"
    assert key_for("files/p10/p1/s5/ab12-cd34.jpg") == "ab12-cd34"
    with pytest.raises(ValueError, match="keys may hold only"):
        key_for("a.b.png")


def last_image(shards_dir, shard):
    """(key, offset, size) of the image that ends last in a shard."""
    index, _ = read_index(shards_dir / "index.parquet")
    rows = index[index["shard"] == shard]
    last = rows.loc[(rows["offset"] + rows["size"]).idxmax()]
    return last["key"], int(last["offset"]), int(last["size"])


def test_a_truncated_shard_is_named_with_its_last_image_when_the_dir_is_opened(shards_copy):
    key, offset, size = last_image(shards_copy, SHARD)
    os.truncate(shards_copy / SHARD, offset + size - 1)  # one byte short
    with pytest.raises(UsageError) as e:
        open_shards(shards_copy)
    assert str(e.value) == (f"{shards_copy / SHARD}: {offset + size - 1} bytes, but the index places image {key} "
                            f"at bytes {offset}..{offset + size}: the shard is truncated or not this dir's; check "
                            f"the dir with `python -m ingest verify {shards_copy}` and rebuild what it names with "
                            "`python -m ingest build-shards`")


def test_a_missing_shard_is_named_when_the_dir_is_opened(shards_copy):
    (shards_copy / SHARD).unlink()
    with pytest.raises(UsageError, match=f"{SHARD}: missing, but the index lists image .*`python -m ingest verify"):
        open_shards(shards_copy)


def test_a_shard_cut_after_opening_fails_the_read_with_its_name(shards_copy):
    ss = open_shards(shards_copy)
    _, offset, size = last_image(shards_copy, SHARD)
    assert len(ss.read_bytes(SHARD, offset, size)) == size
    os.truncate(shards_copy / SHARD, offset + 10)
    with pytest.raises(UsageError, match=rf"{SHARD}: 10 of the {size} bytes at {offset} read: .*ingest verify"):
        ss.read_bytes(SHARD, offset, size)


def test_the_reader_and_the_dali_batch_source_import_neither_torch_nor_pandas_where_they_need_not():
    """DALI's source workers import ``shards.dali_source`` (and so ``shards.tars``, ``augment``, ``samplers``)."""
    code = ("import sys, shards.dali_source; lean = {'torch', 'pandas', 'nvidia.dali'} & set(sys.modules); "
            "import shards.reader; print(sorted(lean), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "False"]
