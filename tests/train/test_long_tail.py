"""On the synthetic demo data the long tail is visible, and re-balancing moves it (fixed seed, CPU): single-label
(the paper's benchmark) and multi-label (the MICCAI 2023 files over the same images)."""
import json

import pytest

from ingest.build import BuildOptions, build_shards
from ingest.synth import synth
from train.loop.fit import fit

from conftest import tiny_fit


COMMON = dict(image_size=64, epochs=24, patience=24, batch_size=64, deterministic=False)


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory):
    raw = tmp_path_factory.mktemp("demo-raw")
    synth(raw, scale=0.02, image_size=256, seed=0, workers=2)
    return raw


def demo_shards_of(raw, out, dataset):
    build_shards(raw, raw / "labels", out, BuildOptions(dataset=dataset, size=64, workers=2))
    return out


@pytest.fixture(scope="module")
def demo_shards(demo_raw, tmp_path_factory):
    return demo_shards_of(demo_raw, tmp_path_factory.mktemp("demo") / "shards", "nih-cxr-lt")


@pytest.mark.slow
def test_rebalancing_beats_ce_on_balanced_accuracy_and_the_tail(demo_shards, tmp_path):
    assert fit(tiny_fit(demo_shards, tmp_path / "ce", "ce", **COMMON)) == "finished"
    assert fit(tiny_fit(demo_shards, tmp_path / "crt", "crt", init_from=str(tmp_path / "ce"), crt_features=True,
                        **COMMON)) == "finished"
    ce, crt = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("ce", "crt"))
    # the long tail bites: ce learns the head and misses the tail
    assert ce["balanced_test"]["head"] > 0.3 and ce["balanced_test"]["tail"] == 0.0
    assert ce["test"]["auroc"] > 0.75
    # decoupled re-balancing moves it
    assert crt["test"]["bacc"] > ce["test"]["bacc"] and crt["balanced_test"]["tail"] > ce["balanced_test"]["tail"]


@pytest.mark.slow
def test_class_aware_sampling_beats_bce_on_tail_map_of_the_multi_label_release(demo_raw, tmp_path):
    shards = demo_shards_of(demo_raw, tmp_path / "shards", "nih-cxr-lt-multilabel")
    for method in ("bce", "ca-bce"):
        assert fit(tiny_fit(shards, tmp_path / method, method, **COMMON)) == "finished"
    bce, ca = (json.loads((tmp_path / r / "summary.json").read_text())["test"] for r in ("bce", "ca-bce"))
    # the long tail bites: bce ranks head findings far better than tail ones
    assert bce["map_head"] > 0.4 and bce["map_tail"] < 0.5 * bce["map_head"]
    # class-aware sampling moves the tail, and mAP with it
    assert ca["map_tail"] > bce["map_tail"] + 0.05 and ca["map"] > bce["map"]
