import pickle

import numpy as np
import pytest

from shards.format import key_for
from shards.reader import NotAShardsDir, open_shards


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
