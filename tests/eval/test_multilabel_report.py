"""Multi-label results and reports on hand-made run dirs (written by train.rundir.results.write_results from known
arrays, no training): every number equals scikit-learn on the same arrays, the report and table read them."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as sk

from eval import metrics as m
from eval.__main__ import main as eval_main
from eval.metrics import bootstrap_ci
from eval.predictions import read_predictions, write_predictions
from eval.report import report
from eval.runs import task_of_run
from eval.summary import multilabel_metrics
from eval.table import collect, render
from eval.tasks import TASKS, sigmoid
from shards.errors import UsageError
from train.rundir.results import write_results

NAMES = ["No Finding", "Effusion", "Nodule", "Mass", "Hernia", "Pneumoperitoneum"]
GROUPS = ["head", "head", "medium", "medium", "tail", "tail"]
PREVALENCE = np.array([0.5, 0.3, 0.15, 0.1, 0.06, 0.04])


def make_arrays(n: int, rng, skill: float = 1.5):
    """Multi-hot labels with every class positive and negative at least once, and logits that rank
    positives higher by ``skill`` on average."""
    labels = (rng.random((n, len(NAMES))) < PREVALENCE).astype(np.float32)
    labels[np.arange(len(NAMES)), np.arange(len(NAMES))] = 1
    labels[-1] = 0
    return labels, skill * labels + rng.normal(size=labels.shape)


class FakeShards:
    """What write_results reads of a multi-label ShardSet."""

    def __init__(self, n_val: int, n_test: int):
        self.manifest = {"multi_label": True}
        self.class_names, self.groups, self.num_classes = NAMES, GROUPS, len(NAMES)
        split = ["val"] * n_val + ["test"] * n_test
        self.index = pd.DataFrame({"key": [f"img{i}" for i in range(len(split))], "split": split,
                                   "patient_id": [f"p{i // 2}" for i in range(len(split))]})

    def view(self, name):
        return self.index[self.index["split"] == name]


def ml_run(root, name="bce", method="bce", seed=0, skill=1.5, n_val=80, n_test=120, synthetic=True,
           no_test_positive=()):
    """A finished multi-label run dir: config.json, metrics.csv, predictions and summary.json; the classes of
    ``no_test_positive`` have no positive in test."""
    rng = np.random.default_rng(seed + 100 * len(name))
    run = root / name
    run.mkdir(parents=True)
    config = {"method": method, "seed": seed, "model": "tiny", "epochs": 3}
    meta = {"config": config, "method": {"name": method, "loss": "bce", "task": "multi-label"},
            "index_sha256": "abc", "dataset": "nih-cxr-lt-multilabel", "synthetic": synthetic,
            "class_names": NAMES, "groups": GROUPS, "train_counts": [500, 300, 60, 40, 8, 5]}
    (run / "config.json").write_text(json.dumps(meta))
    pd.DataFrame({"epoch": [1, 2, 3], "lr": [1e-3] * 3, "train_loss": [0.7, 0.5, 0.4], "train_map": [0.2, 0.3, 0.4],
                  "train_auroc": [0.5, 0.6, 0.7], "val_loss": [0.69, 0.6, 0.62], "val_map": [0.25, 0.35, 0.3],
                  "val_auroc": [0.55, 0.6, 0.58], "skipped_steps": [0] * 3, "images_per_s": [100.0] * 3,
                  "seconds": [1.0] * 3}).to_csv(run / "metrics.csv", index=False)
    preds = {view: (np.arange(n), *make_arrays(n, rng, skill)) for view, n in (("val", n_val), ("test", n_test))}
    preds["test"][1][:, list(no_test_positive)] = 0
    ctx = SimpleNamespace(ss=FakeShards(n_val, n_test), run=run, task=TASKS["multi-label"])  # what it reads of a run
    write_results(ctx, meta, preds, {"best_epoch": 2, "epochs_run": 3})
    return run, preds


def test_every_multilabel_number_of_the_summary_equals_scikit_learn_on_the_same_arrays(tmp_path):
    run, preds = ml_run(tmp_path)
    s = json.loads((run / "summary.json").read_text())
    (_, y_val, z_val), (_, y, z) = preds["val"], preds["test"]
    scores = sigmoid(z)
    thresholds = m.tune_thresholds(y_val, sigmoid(z_val))
    ap = sk.average_precision_score(y, scores, average=None)
    assert s["task"] == "multi-label" and s["method"] == "bce" and s["best_epoch"] == 2
    assert s["test"]["map"] == pytest.approx(sk.average_precision_score(y, scores, average="macro"))
    assert s["test"]["auroc"] == pytest.approx(sk.roc_auc_score(y, scores, average="macro"))
    assert s["test"]["f1"] == pytest.approx(sk.f1_score(y, scores >= 0.5, average="macro", zero_division=0))
    assert s["test"]["f1_tuned"] == pytest.approx(sk.f1_score(y, scores >= thresholds, average="macro",
                                                              zero_division=0))
    for g, classes in (("head", [0, 1]), ("medium", [2, 3]), ("tail", [4, 5])):
        assert s["test"][f"map_{g}"] == pytest.approx(ap[classes].mean())
    assert s["test"]["map_avg"] == pytest.approx(np.mean([ap[[0, 1]].mean(), ap[[2, 3]].mean(), ap[[4, 5]].mean()]))
    assert s["val"]["map"] == pytest.approx(sk.average_precision_score(y_val, sigmoid(z_val), average="macro"))
    for i, name in enumerate(NAMES):
        row = s["per_class"][name]
        assert row["ap"] == pytest.approx(ap[i]) and row["threshold"] == thresholds[i]
        assert row["auroc"] == pytest.approx(sk.roc_auc_score(y[:, i], scores[:, i]))
        assert row["support"] == int(y[:, i].sum()) and row["group"] == GROUPS[i]
    assert s["groups"] == dict(zip(NAMES, GROUPS))


def test_a_class_without_test_positives_is_left_out_of_map_where_scikit_learn_would_count_it_0():
    """Decided: a class with no positive in the split has no AP (NaN) and no AUROC; mAP, group mAP and
    AUROC average the classes that have them. scikit-learn warns and gives such a class AP 0, which would
    score an undefined class as a total failure. F1 counts it (0 unless nothing is predicted), as
    scikit-learn's f1_score(zero_division=0) does."""
    rng = np.random.default_rng(3)
    y, z = make_arrays(60, rng)
    y[:, 4] = 0  # the tail class Hernia: no positive in test
    s = multilabel_metrics(y, z, y, z, GROUPS, NAMES)
    scores = sigmoid(z)
    defined = [0, 1, 2, 3, 5]
    with pytest.warns(UserWarning, match="No positive class found"):
        counted_as_zero = sk.average_precision_score(y, scores, average="macro")
    assert np.isnan(s["per_class"]["Hernia"]["ap"]) and np.isnan(s["per_class"]["Hernia"]["auroc"])
    assert s["per_class"]["Hernia"]["support"] == 0
    assert s["test"]["map"] == pytest.approx(sk.average_precision_score(y[:, defined], scores[:, defined]))
    assert s["test"]["map"] > counted_as_zero
    assert s["test"]["map_tail"] == pytest.approx(sk.average_precision_score(y[:, 5], scores[:, 5]))
    assert s["test"]["auroc"] == pytest.approx(sk.roc_auc_score(y[:, defined], scores[:, defined]))
    assert s["test"]["f1"] == pytest.approx(sk.f1_score(y, scores >= 0.5, average="macro", zero_division=0))


def test_predictions_round_trip_for_both_tasks_each_in_its_own_label_column(tmp_path):
    logits = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -3.0]])
    write_predictions(tmp_path / "s.parquet", ["a", "b"], ["p1", "p2"], np.array([2, 0]), logits)
    write_predictions(tmp_path / "m.parquet", ["a", "b"], ["p1", "p2"],
                      np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32), logits)
    single, multi = read_predictions(tmp_path / "s.parquet"), read_predictions(tmp_path / "m.parquet")
    assert str(pq.read_schema(tmp_path / "s.parquet").field("label").type) == "int16"
    assert str(pq.read_schema(tmp_path / "m.parquet").field("labels").type) == "fixed_size_list<element: int8>[3]"
    assert single.labels.tolist() == [2, 0] and single.labels.dtype == np.int64 and not single.multi_label
    assert multi.labels.tolist() == [[1, 0, 1], [0, 0, 0]] and multi.labels.dtype == np.int64 and multi.multi_label
    for p in (single, multi):
        assert p.keys.tolist() == ["a", "b"] and p.patients.tolist() == ["p1", "p2"]
        assert np.array_equal(p.logits, logits)  # these values are exact in float32
    assert single.predicted.tolist() == [2, 0]
    with pytest.raises(ValueError, match="single-label"):
        multi.predicted


def test_a_multilabel_run_saves_val_and_test_predictions_only_with_their_multi_hot_labels(tmp_path):
    run, preds = ml_run(tmp_path)
    assert sorted(p.name for p in (run / "predictions").iterdir()) == ["test.parquet", "val.parquet"]
    test = read_predictions(run / "predictions" / "test.parquet")
    assert np.array_equal(test.labels, preds["test"][1]) and test.keys[0] == "img80" and test.patients[0] == "p40"
    assert task_of_run(run) == "multi-label"


def test_the_task_of_a_run_comes_from_its_summary_else_its_config_else_is_single_label(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": {"task": "multi-label"}}))
    assert task_of_run(run) == "multi-label"
    (run / "config.json").write_text(json.dumps({"method": {"loss": "ce"}}))
    assert task_of_run(run) == "single-label"
    (run / "summary.json").write_text(json.dumps({"task": "multi-label"}))
    assert task_of_run(run) == "multi-label"


def test_the_report_of_a_multilabel_run_equals_its_summary_with_intervals_around_each_number(tmp_path):
    run, _ = ml_run(tmp_path)
    logged = json.loads((run / "summary.json").read_text())
    s = json.loads((report(run, n_boot=100) / "summary.json").read_text())
    assert s["task"] == "multi-label" and s["images"] == {"val": 80, "test": 120}
    for key in ("map", "map_head", "map_medium", "map_tail", "map_avg", "auroc", "f1", "f1_tuned"):
        entry = s["test"][key]
        assert entry["value"] == pytest.approx(logged["test"][key]), key
        assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1] and entry["ci95"][0] < entry["ci95"][1], key
    for name, row in s["per_class"].items():
        assert row["ap"]["value"] == pytest.approx(logged["per_class"][name]["ap"])
        assert row["ap"]["ci95"][0] <= row["ap"]["value"] <= row["ap"]["ci95"][1]
        assert row["support"] == logged["per_class"][name]["support"]
        assert row["threshold"] == logged["per_class"][name]["threshold"]
    assert s["bootstrap"] == {"resamples": 100, "seed": 0, "unit": "image", "interval": "95% percentile"}


def test_the_patient_bootstrap_of_a_multilabel_run_resamples_the_test_images_by_their_patients(tmp_path,
                                                                                              monkeypatch):
    run, _ = ml_run(tmp_path)
    by_image = json.loads((report(run, n_boot=60) / "summary.json").read_text())
    seen = []

    def spy(metric, *arrays, clusters=None, **kw):
        seen.append((len(arrays[0]), None if clusters is None else list(clusters)))
        return bootstrap_ci(metric, *arrays, clusters=clusters, **kw)

    monkeypatch.setattr(m, "bootstrap_ci", spy)
    by_patient = json.loads((report(run, n_boot=60, by_patient=True) / "summary.json").read_text())
    assert by_patient["bootstrap"]["unit"] == "patient"
    # the test images 80..199 of the fake shards, two per patient; val only tunes the thresholds
    assert seen == [(120, [f"p{i // 2}" for i in range(80, 200)])]
    assert by_patient["test"]["map"]["value"] == by_image["test"]["map"]["value"]
    assert by_patient["test"]["map"]["ci95"] != by_image["test"]["map"]["ci95"]


def test_a_class_without_test_positives_reads_as_undefined_in_the_report_and_nan_in_its_csv(tmp_path):
    run, _ = ml_run(tmp_path, no_test_positive=[4])
    out = report(run, n_boot=30)
    text = (out / "report.md").read_text()
    hernia = next(line for line in text.splitlines() if line.startswith("| Hernia |"))
    assert hernia.startswith("| Hernia | tail | 8 | 0 | — | — | — | — | ") and "nan" not in text
    assert "—: not defined (AP needs a positive in test, AUROC a positive and a negative)" in text
    assert "(5 of 6; a class without one has no AP and is left out)" in text
    per_class = pd.read_csv(out / "per_class.csv").set_index("class")
    assert per_class.loc["Hernia", ["test_ap", "ap_lo", "ap_hi", "test_auroc"]].isna().all()
    assert per_class.drop("Hernia")["test_ap"].notna().all()


def test_the_multilabel_report_lists_each_classs_ap_auroc_support_and_group_and_draws_its_figures(tmp_path):
    run, preds = ml_run(tmp_path)
    out = report(run, n_boot=30)
    text = (out / "report.md").read_text()
    logged = json.loads((run / "summary.json").read_text())
    assert text.startswith("# Report: bce on nih-cxr-lt-multilabel, model tiny, seed 0 (run bce) - SYNTHETIC")
    assert "| mAP | Head mAP | Medium mAP | Tail mAP | Avg mAP | AUROC | F1@0.5 | F1@tuned |" in text
    assert "over the classes with a positive in test (6 of 6;" in text and "tuned for F1 on val (80 images)" in text
    per_class = pd.read_csv(out / "per_class.csv")
    assert per_class["class"].tolist() == NAMES and per_class["group"].tolist() == GROUPS
    assert per_class.columns[:4].tolist() == ["class", "group", "train_positives", "test_positives"]
    assert "| class | group | train_positives | test_positives | test_ap |" in text
    assert per_class["test_positives"].tolist() == preds["test"][1].sum(0).astype(int).tolist()
    assert np.allclose(per_class["test_ap"], [logged["per_class"][n]["ap"] for n in NAMES])
    assert np.allclose(per_class["test_auroc"], [logged["per_class"][n]["auroc"] for n in NAMES])
    hernia = per_class.iloc[4]
    assert f"| Hernia | tail | 8 | {hernia['test_positives']} | {hernia['test_ap']:.3f} |" in text
    for png in ("training_curves.png", "per_class_ap.png", "pr_curves.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG") and f"]({png})" in text
    assert "confusion" not in text and not (out / "confusion_balanced_test.png").exists()


def test_the_multilabel_table_has_the_cxr_lt_columns_sd_over_seeds_or_an_interval_and_no_published_column(tmp_path):
    runs = [ml_run(tmp_path, f"bce-{i}", "bce", i, skill=1.0)[0] for i in range(2)]
    runs.append(ml_run(tmp_path, "asl", "asl", 0, skill=3.0)[0])
    table = collect(runs, n_boot=40)
    out = render(table)
    header = next(line for line in out["md"].splitlines() if line.startswith("| Method"))
    assert header == "| Method | mAP | Head mAP | Medium mAP | Tail mAP | AUROC | F1@0.5 | F1@tuned |"
    maps = [json.loads((r / "summary.json").read_text())["test"]["map"] for r in runs]
    bce = table.set_index("method").loc["bce"]
    assert bce["map"] == pytest.approx(np.mean(maps[:2])) and bce["map_sd"] == pytest.approx(np.std(maps[:2], ddof=1))
    rows = {line.split("|")[1].strip(): line for line in out["md"].splitlines() if line.startswith("| ")}
    assert f"**{maps[2]:.3f} [" in rows["asl"]  # the better method, one seed: bold, with its interval
    assert f"{np.mean(maps[:2]):.3f} ± {np.std(maps[:2], ddof=1):.3f}" in rows["bce"]
    assert "published_bacc" not in table and "bAcc" not in out["md"] and "paper" not in out["md"]
    assert r"\multicolumn{7}{c}{test}" in out["tex"] and "map_head" in out["csv"].splitlines()[0]
    assert "All on test (120 images). mAP: macro average precision" in out["md"]


def test_a_table_mixing_single_and_multilabel_runs_is_refused_naming_a_few_of_each(tmp_path):
    from test_table import fake_run

    singles = [fake_run(tmp_path, f"ce{i}", "ce", i, 0.2, synthetic=True) for i in range(5)]
    multi, _ = ml_run(tmp_path)
    with pytest.raises(UsageError, match=f"the runs mix multi-label \\({multi}\\) with single-label ones "
                       f"\\({singles[0]}, {singles[1]}, {singles[2]} and 2 more\\); their numbers differ"):
        collect([*singles, multi])


def test_the_table_command_writes_every_format_for_multilabel_runs(tmp_path, capsys):
    run, _ = ml_run(tmp_path)
    assert eval_main(["table", str(run), "--out", str(tmp_path / "t"), "--resamples", "20"]) == 0
    for ext in ("md", "tex", "csv"):
        assert (tmp_path / f"t.{ext}").stat().st_size > 0
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    assert "| bce |" in capsys.readouterr().out
    assert eval_main(["table", str(run), "--out", str(tmp_path / "p"), "--resamples", "20", "--by-patient"]) == 0
    assert "[low, high]: 95% percentile bootstrap, 20 resamples of patients (seed 0)." in capsys.readouterr().out


@pytest.mark.slow
def test_a_trained_multilabel_run_reports_the_numbers_scikit_learn_gives_on_its_saved_predictions(ml_shards_dir,
                                                                                                  tmp_path):
    from conftest import tiny_fit
    from train.loop.fit import fit

    run = tmp_path / "bce"
    assert fit(tiny_fit(ml_shards_dir, run, method="bce", epochs=1)) == "finished"
    logged = json.loads((run / "summary.json").read_text())
    val = read_predictions(run / "predictions" / "val.parquet")
    test = read_predictions(run / "predictions" / "test.parquet")
    assert sorted(p.name for p in (run / "predictions").iterdir()) == ["test.parquet", "val.parquet"]
    assert test.multi_label and test.labels.shape == test.logits.shape == (88, 20) and len(val.labels) == 50
    scores = sigmoid(test.logits)
    has = test.labels.sum(0) > 0
    assert logged["task"] == "multi-label" and not has.all()  # the fixture leaves some test classes empty
    assert logged["test"]["map"] == pytest.approx(sk.average_precision_score(test.labels[:, has], scores[:, has]))
    assert logged["test"]["f1"] == pytest.approx(sk.f1_score(test.labels, scores >= 0.5, average="macro",
                                                             zero_division=0))
    s = json.loads((report(run, n_boot=30) / "summary.json").read_text())
    assert s["test"]["map"]["value"] == pytest.approx(logged["test"]["map"])
    assert s["test"]["f1_tuned"]["value"] == pytest.approx(logged["test"]["f1_tuned"])
    assert (run / "report" / "pr_curves.png").exists() and (run / "report" / "training_curves.png").exists()
