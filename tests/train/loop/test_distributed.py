"""torchrun with 2 CPU processes (gloo): the run completes, ranks split every epoch, the checkpoint resumes."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from shards.augment import AugmentSpec
from shards.reader import open_shards
from shards.torch_loader import TorchLoader
from train.rundir.checkpoint import load_checkpoint

from conftest import tiny_flags


def torchrun_cmd(shards_dir, out, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "train", "fit", "--shards", str(shards_dir), "--out", str(out),
            *tiny_flags(batch_size=16, epochs=3, drw_epoch=10), "--checkpoint-minutes", "0", *extra]


def test_ranks_take_disjoint_equal_slices_that_cover_the_epoch(shards_dir):
    ss = open_shards(shards_dir)
    seen = []
    for rank in range(2):
        loader = TorchLoader(ss, "instance", AugmentSpec(32), 16, 0, 0, torch.device("cpu"), False, rank=rank,
                             world_size=2)
        seen.append(np.concatenate([b["rows"].numpy() for b in loader.train(0, 0)]))
        evaluated = np.concatenate([b["rows"].numpy() for b in loader.evaluate("test")])
        assert set(evaluated) == set(range(rank, len(ss.view("test")), 2))
    assert len(seen[0]) == len(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(len(ss.view("train"))))


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_all_with_one_checkpoint_and_the_resume_is_exact(shards_dir, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    r = subprocess.run(torchrun_cmd(shards_dir, whole), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((whole / "config.json").read_text())["world_size"] == 2
    preds = pd.read_parquet(whole / "predictions" / "test.parquet")
    assert sorted(preds["key"]) == sorted(open_shards(shards_dir).view("test")["key"])  # every image exactly once
    assert r.stdout.count("finished; see") == 1  # rank 0 alone talks

    agent = subprocess.Popen(torchrun_cmd(shards_dir, cut), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while not (cut / "metrics.csv").exists():  # the first epoch is done; checkpoints land every step now
        assert agent.poll() is None and time.monotonic() - start < 240, agent.communicate()
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(agent.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(sorted(workers)[-1]), signal.SIGTERM)  # one rank only
    _, err = agent.communicate(timeout=240)
    assert agent.returncode != 0 and not (cut / "summary.json").exists()
    assert err.count("SIGTERM received") == 1  # the rank that got it; the others followed its lead
    state = load_checkpoint(cut / "last.pt")["state"]
    assert state["epoch"] < 3
    r = subprocess.run(torchrun_cmd(shards_dir, cut), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load_checkpoint(whole / "last.pt"), load_checkpoint(cut / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.slow
def test_a_multi_label_run_under_torchrun_scores_every_image_once_with_its_multi_hot_labels(ml_shards_dir, tmp_path):
    out = tmp_path / "ml"
    r = subprocess.run(torchrun_cmd(ml_shards_dir, out, "--method", "ca-bce", "--epochs", "2"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    preds = pd.read_parquet(out / "predictions" / "test.parquet")
    test = open_shards(ml_shards_dir).view("test")
    assert sorted(preds["key"]) == sorted(test["key"])
    by_key = dict(zip(test["key"], test["labels"]))
    assert all(np.array_equal(labels, by_key[key]) for key, labels in zip(preds["key"], preds["labels"]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "multi-label" and 0 <= summary["test"]["map"] <= 1
