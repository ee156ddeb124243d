"""The synthetic CXR-LT 2024 and 2026 releases train end to end, and predict on the 2026 release's 16-bit
originals repeats the shards' percentile window."""
import dataclasses
import json

import numpy as np
import pytest

from conftest import tiny_fit, tiny_options
from eval.predictions import read_predictions
from ingest.build import build_shards
from ingest.synth_release import synth_release
from train import load_model
from train.loop.fit import fit
from train.use.predict import predict_logits

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dataset", ["cxr-lt-2024", "cxr-lt-2024-task2", "cxr-lt-2026"])
def test_a_synthetic_release_trains_end_to_end(tmp_path, dataset):
    release = "cxr-lt-2024" if dataset.startswith("cxr-lt-2024") else dataset
    synth_release(release, tmp_path / "raw", scale=0.0004, image_size=48, seed=0)
    images = tmp_path / "raw" / ("mimic-cxr-jpg" if release == "cxr-lt-2024" else "")
    build_shards(images, tmp_path / "raw" / "labels", tmp_path / "s", tiny_options(dataset=dataset))
    assert fit(tiny_fit(tmp_path / "s", tmp_path / "run", "bce", epochs=1)) == "finished"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["dataset"] == dataset and len(meta["class_names"]) == {"cxr-lt-2024": 40, "cxr-lt-2024-task2": 26,
                                                                       "cxr-lt-2026": 30}[dataset]
    assert np.isfinite(summary["test"]["map"]) and summary["test"]["map"] > 0


def test_predict_on_16_bit_originals_repeats_the_recorded_percentile_window(tmp_path):
    synth_release("cxr-lt-2026", tmp_path / "raw", scale=0.0004, image_size=48, seed=0)
    build_shards(tmp_path / "raw", tmp_path / "raw" / "labels", tmp_path / "s",
                 tiny_options(dataset="cxr-lt-2026", format="png"))
    assert fit(tiny_fit(tmp_path / "s", tmp_path / "run", "bce", epochs=1)) == "finished"
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["shards_image"]["window16"] == "percentile"
    model = load_model(tmp_path / "run")
    assert model.preprocess.window16 == "percentile"
    saved = read_predictions(tmp_path / "run" / "predictions" / "test.parquet")
    where = {p.stem: p for p in (tmp_path / "raw").rglob("*.png")}
    files = [where[k] for k in saved.keys]
    logits, kept, bad = predict_logits(model, files, workers=0)
    assert bad == [] and len(kept) == len(files)
    np.testing.assert_allclose(logits, saved.logits, atol=1e-4)
    sbit = dataclasses.replace(model, preprocess=dataclasses.replace(model.preprocess, window16="sbit"))
    wrong, _, _ = predict_logits(sbit, files, workers=0)
    assert np.abs(wrong - saved.logits).max() > 1e-2  # the window matters: the other one does not reproduce


def test_a_csv_with_ignored_uncertain_labels_trains_and_its_predictions_keep_them_ignored(tmp_path):
    import pandas as pd
    import yaml
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for k in range(90):
        path = f"img/{k:03d}.png"
        (tmp_path / "images" / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "images" / path)
        rows.append([path, f"P{k // 2}", *rng.choice(["1", "0", "-1", ""], size=3, p=[0.3, 0.4, 0.2, 0.1])])
    pd.DataFrame(rows, columns=["path", "patient", "A", "B", "C"]).to_csv(tmp_path / "labels.csv", index=False)
    spec = {"labels": "labels.csv", "path": "path", "patient": "patient", "classes": ["A", "B", "C"],
            "uncertain": "ignore", "fractions": {"val": 0.2, "test": 0.2}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    build_shards(tmp_path / "images", None, tmp_path / "s",
                 tiny_options(dataset="csv", spec=str(tmp_path / "spec.yaml")))
    assert fit(tiny_fit(tmp_path / "s", tmp_path / "run", "bce", epochs=1)) == "finished"
    saved = read_predictions(tmp_path / "run" / "predictions" / "test.parquet")
    cells = pd.read_csv(tmp_path / "labels.csv", dtype=str, keep_default_na=False).set_index("path")
    paths = [k.replace("img_", "img/", 1) + ".png" for k in saved.keys]
    want = cells.loc[paths, ["A", "B", "C"]].replace({"": "0"}).astype(int)
    assert np.array_equal(saved.labels, want.to_numpy()) and (saved.labels == -1).any()
