"""train fit --folds K --fold i and train suite --folds K: patient-grouped folds of the training images."""
import json

import numpy as np
import pytest

from conftest import tiny_fit
from eval.predictions import read_predictions
from eval.table import collect
from shards.errors import UsageError
from shards.folds import FOLD_OUT, patient_folds, with_fold
from shards.reader import open_shards
from train.config import FitConfig
from train.loop.fit import fit
from train.suite import suite


def test_with_fold_validates_one_fold_trains_the_rest_and_leaves_test_alone(shards_dir):
    ss = open_shards(shards_dir)
    train = ss.view("train")
    folds = patient_folds(train["patient_id"], 3, 5)
    f = with_fold(ss, 3, 1, 5)
    assert f.view("val")["key"].tolist() == train["key"][folds == 1].tolist()
    assert f.view("train")["key"].tolist() == train["key"][folds != 1].tolist()
    assert f.view("test")["key"].tolist() == ss.view("test")["key"].tolist()
    assert f.view("balanced-test")["key"].tolist() == ss.view("balanced-test")["key"].tolist()
    assert (f.index["split"] == FOLD_OUT).sum() == len(ss.view("val"))
    assert not set(f.view("val")["patient_id"]) & set(f.view("train")["patient_id"])
    assert ss.view("val")["split"].eq("val").all()  # the shard set it came from is unchanged


@pytest.mark.parametrize("kw, message", [({"folds": 1}, "--folds 1: one fold leaves nothing"),
                                         ({"folds": 3, "fold": 3}, "--fold 3: the folds are 0 to 2"),
                                         ({"fold": 1}, "--fold 1: needs --folds K")])
def test_fold_flag_mistakes_are_one_line(kw, message):
    with pytest.raises(UsageError, match=message):
        FitConfig(shards="s", out="o", **kw)


@pytest.mark.slow
def test_fit_on_a_fold_validates_on_it_and_records_it(shards_dir, tmp_path):
    assert fit(tiny_fit(shards_dir, tmp_path / "run", epochs=1, folds=3, fold=2)) == "finished"
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (meta["config"]["folds"], meta["config"]["fold"], meta["config"]["fold_seed"]) == (3, 2, 0)
    ss = open_shards(shards_dir)
    train = ss.view("train")
    want = train["key"][patient_folds(train["patient_id"], 3, 0) == 2]
    val = read_predictions(tmp_path / "run" / "predictions" / "val.parquet")
    assert sorted(val.keys) == sorted(want)
    test = read_predictions(tmp_path / "run" / "predictions" / "test.parquet")
    assert list(test.keys) == ss.view("test")["key"].tolist()
    trained = train[~train["key"].isin(set(want))]
    assert meta["train_counts"] == np.bincount(trained["label"], minlength=ss.num_classes).tolist()


@pytest.mark.slow
def test_suite_runs_every_fold_and_the_table_gives_their_mean_and_spread(ml_shards_dir, tmp_path):
    out = tmp_path / "suite"
    assert suite(tiny_fit(ml_shards_dir, "", epochs=1, folds=2), out, ["bce"], [0]) == "finished"
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["bce-seed0-fold0", "bce-seed0-fold1"]
    vals = [set(read_predictions(out / r / "predictions" / "val.parquet").keys) for r in runs]
    assert not vals[0] & vals[1]
    table = collect([out / r for r in runs], n_boot=10)
    maps = [json.loads((out / r / "summary.json").read_text())["test"]["map"] for r in runs]
    assert np.isclose(table["map"][0], np.mean(maps)) and np.isclose(table["map_sd"][0], np.std(maps, ddof=1))
    assert table["spread"][0] == "sd over 2 runs: 2 patient-grouped folds x 1 seed(s)" and table["seeds"][0] == 1
    assert "2 patient-grouped folds" in (out / "results.md").read_text()
