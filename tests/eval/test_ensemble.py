import json
import shutil

import numpy as np
import pytest

from eval.__main__ import main as eval_main
from eval.ensemble import ensemble
from eval.metrics import tune_thresholds
from eval.predictions import read_predictions, write_predictions
from eval.report import report
from eval.table import collect
from eval.tasks import sigmoid, softmax
from shards.errors import UsageError

from test_multilabel_report import ml_run


def probs(run, split, scores):
    return scores(read_predictions(run / "predictions" / f"{split}.parquet").logits)


def test_a_multilabel_ensembles_probabilities_equal_the_hand_computed_mean_and_its_thresholds_are_tuned_on_them(
        tmp_path):
    a, _ = ml_run(tmp_path, "a")
    b, c = tmp_path / "b", tmp_path / "cc"
    for run in (b, c):
        shutil.copytree(a, run)  # the same images and labels, other logits below
    rng = np.random.default_rng(5)
    logits = {}
    for run in (a, b, c):
        for split in ("val", "test"):
            p = read_predictions(run / "predictions" / f"{split}.parquet")
            z = rng.normal(size=p.logits.shape) * 2
            write_predictions(run / "predictions" / f"{split}.parquet", p.keys, p.patients, p.labels, z)
            logits[run.name, split] = z.astype(np.float32).astype(np.float64)  # as saved
    out = ensemble([a, b, c], tmp_path / "ens")
    for split in ("val", "test"):
        want = (sigmoid(logits["a", split]) + sigmoid(logits["b", split]) + sigmoid(logits["cc", split])) / 3
        assert probs(out, split, sigmoid) == pytest.approx(want, rel=1e-5, abs=1e-7)
    s = json.loads((out / "summary.json").read_text())
    val = read_predictions(a / "predictions" / "val.parquet")
    thresholds = tune_thresholds(val.labels, probs(out, "val", sigmoid))
    assert [r["threshold"] for r in s["per_class"].values()] == thresholds.tolist()
    rep = json.loads((report(out, n_boot=5) / "summary.json").read_text())
    assert rep["test"]["map"]["value"] == pytest.approx(s["test"]["map"])
    table = collect([a, out], n_boot=5)
    assert set(table["method"]) == {"bce", "ensemble-mean"}
    logit_mean = ensemble([a, b], tmp_path / "lm", combine="logit-mean")
    geometric = ensemble([a, b], tmp_path / "geo", combine="geometric")
    want = sigmoid((logits["a", "test"] + logits["b", "test"]) / 2)
    assert probs(logit_mean, "test", sigmoid) == pytest.approx(want, rel=1e-5, abs=1e-7)
    g = np.sqrt(sigmoid(logits["a", "test"]) * sigmoid(logits["b", "test"]))
    g_not = np.sqrt((1 - sigmoid(logits["a", "test"])) * (1 - sigmoid(logits["b", "test"])))
    assert probs(geometric, "test", sigmoid) == pytest.approx(g / (g + g_not), rel=1e-5, abs=1e-7)


def test_a_single_label_ensemble_of_one_run_twice_is_that_run(stage1_run, tmp_path, capsys):
    twin = tmp_path / "twin"
    shutil.copytree(stage1_run, twin, ignore=shutil.ignore_patterns("*.pt", "report*"))
    assert eval_main(["ensemble", str(stage1_run), str(twin), "--out", str(tmp_path / "ens")]) == 0
    for split in ("val", "balanced-test", "test"):
        assert probs(tmp_path / "ens", split, softmax) == pytest.approx(probs(stage1_run, split, softmax), abs=1e-6)
    s, logged = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "ens", stage1_run))
    assert s["test"]["bacc"] == logged["test"]["bacc"] and s["balanced_test"]["avg"] == logged["balanced_test"]["avg"]
    assert "python -m eval report" in capsys.readouterr().out


def test_runs_that_predict_on_other_things_are_refused_in_one_line(stage1_run, tmp_path, capsys):
    a, _ = ml_run(tmp_path, "a")
    assert eval_main(["ensemble", str(stage1_run), str(a), "--out", str(tmp_path / "e1")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differ in task" in err and "classes" in err
    b, _ = ml_run(tmp_path, "bb")  # same classes, other labels
    with pytest.raises(UsageError, match="differ in the labels of val"):
        ensemble([a, b], tmp_path / "e2")
    with pytest.raises(UsageError, match="two runs or more"):
        ensemble([a], tmp_path / "e3")
    with pytest.raises(UsageError, match="own predictions"):
        ensemble([a, a], a / "predictions" / "x")
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
