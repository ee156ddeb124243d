"""One run as a user meets it: what it leaves, resume rules, signals, kill -9, bad states."""
import copy
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from eval.predictions import read_predictions
from eval.summary import paper_metrics
from shards.errors import UsageError
from shards.reader import open_shards
from shards.writer import file_sha256
from train.loop.fit import fit
from train.models import WeightsUnavailable, build_model, grey_input
from train.rundir.checkpoint import load_checkpoint
from train.rundir.resume import ResumeRefused

from conftest import tiny_fit, tiny_flags


def test_a_run_leaves_config_metrics_predictions_and_a_summary_that_matches_them(stage1_run, shards_dir):
    meta = json.loads((stage1_run / "config.json").read_text())
    assert meta["index_sha256"] and meta["versions"]["torch"] and meta["config"]["method"] == "ce"
    metrics = pd.read_csv(stage1_run / "metrics.csv")
    assert list(metrics.columns[:8]) == ["epoch", "lr", "train_loss", "train_bacc", "train_auroc", "val_loss",
                                         "val_bacc", "val_auroc"] and len(metrics) == 1
    ss = open_shards(shards_dir)
    for view in ("val", "test", "balanced-test"):
        p = read_predictions(stage1_run / "predictions" / f"{view}.parquet")
        assert sorted(p.keys) == sorted(ss.view(view)["key"]) and p.logits.shape == (len(p.keys), 20)
        assert len(set(p.keys)) == len(p.keys)  # every image exactly once
        assert (p.patients == ss.index.set_index("key").loc[p.keys, "patient_id"].to_numpy()).all()
    bt = read_predictions(stage1_run / "predictions" / "balanced-test.parquet")
    test = read_predictions(stage1_run / "predictions" / "test.parquet")
    want = paper_metrics(bt.labels, bt.logits, test.labels, test.logits, ss.groups, ss.class_names)
    got = json.loads((stage1_run / "summary.json").read_text())
    assert got["balanced_test"]["avg"] == pytest.approx(want["balanced_test"]["avg"], nan_ok=True)
    assert got["test"]["bacc"] == pytest.approx(want["test"]["bacc"])
    assert got["test"]["mf1"] == pytest.approx(want["test"]["mf1"])


def test_a_finished_run_is_not_trained_again(stage1_run, shards_dir):
    before = (stage1_run / "summary.json").stat().st_mtime_ns
    assert fit(tiny_fit(shards_dir, stage1_run, epochs=1)) == "finished"
    assert (stage1_run / "summary.json").stat().st_mtime_ns == before


def test_resume_refuses_a_changed_config_naming_the_change(shards_dir, tmp_path):
    cfg = tiny_fit(shards_dir, tmp_path / "r")
    fit(cfg, stop=lambda e, s: s >= 1)
    with pytest.raises(ResumeRefused, match=r"lr: 0.001 -> 0.01"):
        fit(tiny_fit(shards_dir, tmp_path / "r", lr=0.01))
    with pytest.raises(ResumeRefused, match="method: 'ce' -> 'rw-ce'"):
        fit(tiny_fit(shards_dir, tmp_path / "r", method="rw-ce"))


def test_resume_refuses_a_changed_index(shards_dir, shards_copy, tmp_path):
    fit(tiny_fit(shards_copy, tmp_path / "r"), stop=lambda e, s: s >= 1)
    import pyarrow.parquet as pq

    table = pq.read_table(shards_copy / "index.parquet")
    pq.write_table(table.slice(1), shards_copy / "index.parquet")
    manifest = json.loads((shards_copy / "manifest.json").read_text())  # a rebuilt shards dir: a consistent one
    manifest["index_sha256"] = file_sha256(shards_copy / "index.parquet")
    (shards_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResumeRefused, match="index.parquet changed"):
        fit(tiny_fit(shards_copy, tmp_path / "r"))


def test_paper_bn_bug_freezes_batchnorm_statistics_after_the_first_epoch(shards_dir, tmp_path):
    def bn_mean(run):
        return load_checkpoint(run / "last.pt")["model"]["backbone.features.1.running_mean"]

    for bug in (False, True):
        out = tmp_path / f"bug-{bug}"
        fit(tiny_fit(shards_dir, out, paper_bn_bug=bug), stop=lambda e, s: e == 1 and s == 1)
        mid = bn_mean(out).clone()  # one step into epoch 2
        fit(tiny_fit(shards_dir, out, paper_bn_bug=bug))
        assert torch.equal(mid, bn_mean(out)) == bug


def test_non_finite_loss_stops_with_the_batch_keys(shards_dir, tmp_path, monkeypatch):
    from train.loop import trainer

    real = trainer.make_loss

    def poisoned(*a, **kw):
        loss = real(*a, **kw)
        loss.loss = lambda logits, target: (logits * float("nan")).sum()
        return loss

    monkeypatch.setattr(trainer, "make_loss", poisoned)
    with pytest.raises(trainer.NonFiniteLoss, match="nonfinite_batch.json"):
        fit(tiny_fit(shards_dir, tmp_path / "nan"))
    report = json.loads((tmp_path / "nan" / "nonfinite_batch.json").read_text())
    assert len(report["keys"]) == 32 and set(report["keys"]) <= set(open_shards(shards_dir).view("train")["key"])


def test_pretrained_offline_names_both_ways_out_and_a_local_file_loads(tmp_path):
    with pytest.raises(WeightsUnavailable, match="--pretrained PATH .* --pretrained none"):
        build_model("resnet18", 20, "imagenet")
    reference = build_model("resnet18", 20, "none")
    torch.save({k[len("backbone."):]: v for k, v in reference.state_dict().items() if k.startswith("backbone.")},
               tmp_path / "r18.pth")
    loaded = build_model("resnet18", 20, str(tmp_path / "r18.pth"))
    assert torch.equal(loaded.backbone.conv1.weight, reference.backbone.conv1.weight)
    with pytest.raises(WeightsUnavailable, match="no such file"):
        build_model("resnet18", 20, str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_a_grey_input_network_gives_what_the_rgb_one_gives_for_the_grey_image_in_each_channel(name):
    rgb = build_model(name, 5, "none").eval()
    grey = grey_input(copy.deepcopy(rgb))  # what --channels 1 does to the loaded ImageNet weights
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4)
        assert build_model(name, 5, "none", channels=1).eval()(x).shape == (2, 5)


def test_a_grey_input_run_trains_and_its_stage_two_must_match_it(shards_dir, stage1_run, tmp_path):
    assert fit(tiny_fit(shards_dir, tmp_path / "grey", epochs=1, channels=1, loader="dali")) == "finished"
    with pytest.raises(UsageError, match="--channels 1: the stage-1 run .* --channels 3"):
        fit(tiny_fit(shards_dir, tmp_path / "crt", method="crt", init_from=str(stage1_run), channels=1))


def fit_cmd(shards_dir, out, *extra):
    return [sys.executable, "-m", "train", "fit", "--shards", str(shards_dir), "--out", str(out),
            *tiny_flags(batch_size=16, epochs=60, patience=15), *extra]


def wait_for(path, proc, timeout=120):
    start = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < timeout
        time.sleep(0.02)


@pytest.mark.slow
def test_sigterm_checkpoints_at_the_next_step_and_the_same_command_finishes(shards_dir, tmp_path):
    out = tmp_path / "run"
    cmd = fit_cmd(shards_dir, out, "--epochs", "4")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(out / "last.pt", proc)  # the end of epoch 1
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75 and "rerun the same command to resume" in stdout
    state = load_checkpoint(out / "last.pt")["state"]
    assert (state["epoch"], state["step"]) < (4, 0) and not (out / "summary.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and (out / "summary.json").exists()
    assert len(pd.read_csv(out / "metrics.csv")) == 4


@pytest.mark.slow
def test_a_changed_command_is_refused_on_the_command_line(stage1_run, shards_dir):
    r = subprocess.run(fit_cmd(shards_dir, stage1_run, "--epochs", "1", "--lr", "0.5"), capture_output=True,
                       text=True)
    assert r.returncode == 2 and "lr: 0.001 -> 0.5" in r.stderr and "Traceback" not in r.stderr


MODERN_FLAGS = ("--optimizer", "adamw", "--weight-decay", "0.05", "--schedule", "cosine", "--warmup-epochs", "0.5",
                "--ema-decay", "0.9", "--grad-clip", "1", "--head-lr-factor", "10", "--freeze-backbone-epochs", "1")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), MODERN_FLAGS], ids=["paper", "adamw-cosine-warmup-ema-clip-freeze"])
def test_kill_9_mid_epoch_then_rerun_equals_an_uninterrupted_run(shards_dir, tmp_path, extra):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = ("--method", "rw-ldam-drw", "--epochs", "3", "--checkpoint-minutes", "0", *extra)
    assert subprocess.run(fit_cmd(shards_dir, whole, *args), capture_output=True).returncode == 0
    proc = subprocess.Popen(fit_cmd(shards_dir, killed, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(killed / "metrics.csv", proc)  # past the first epoch; checkpoints land every step from here
    proc.kill()
    proc.wait()
    state = load_checkpoint(killed / "last.pt")["state"]
    assert not (killed / "summary.json").exists() and state["epoch"] < 3
    assert subprocess.run(fit_cmd(shards_dir, killed, *args), capture_output=True).returncode == 0
    a, b = load_checkpoint(whole / "last.pt"), load_checkpoint(killed / "last.pt")
    for part in ("model", "ema") if extra else ("model",):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    drop = ["images_per_s", "seconds"]
    pd.testing.assert_frame_equal(pd.read_csv(whole / "metrics.csv").drop(columns=drop),
                                  pd.read_csv(killed / "metrics.csv").drop(columns=drop))


def test_tensorboard_has_grouped_tags_the_step_loss_and_the_hyperparameters(shards_dir, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")  # the test extra installs it; the package is optional for users
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    import train.rundir.events as events

    monkeypatch.setattr(events, "STEP_LOSS_EVERY", 2)
    run = tmp_path / "tb"
    assert fit(tiny_fit(shards_dir, run, epochs=2, tensorboard=True)) == "finished"
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "metric/val_bacc", "metric/train_bacc", "opt/lr", "loss/train_step"} <= scalars
    assert not {"train_loss", "val_loss"} & scalars  # no flat tags
    metrics = pd.read_csv(run / "metrics.csv")
    np.testing.assert_allclose([e.value for e in acc.Scalars("loss/val")], metrics["val_loss"], rtol=1e-6)
    assert [e.step for e in acc.Scalars("metric/val_bacc")] == [1, 2]
    per_epoch = math.ceil(len(open_shards(shards_dir).view("train")) / 32)  # tiny_fit's batch: 32
    steps = [e.step for e in acc.Scalars("loss/train_step")]
    assert steps == [k for e in (0, 1) for k in range(e * per_epoch + 2, (e + 1) * per_epoch + 1, 2)]
    losses = [e.value for e in acc.Scalars("loss/train_step")][:per_epoch // 2]  # epoch 1's windows
    assert len(losses) >= 2 and min(losses) - 1e-6 <= metrics["train_loss"][0] <= max(losses) + 1e-6
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["method"].string_value == "ce" and hp["epochs"].number_value == 2 and "out" not in hp
    summary = json.loads((run / "summary.json").read_text())
    assert acc.Scalars("final/test_bacc")[0].value == pytest.approx(summary["test"]["bacc"], rel=1e-6)


@pytest.mark.slow
def test_compile_trains_the_same_parameters(shards_dir, tmp_path):
    """--compile wraps the train step only; the weights it trains are the model's (checkpointed as usual)."""
    from torch._dynamo.utils import counters

    counters.clear()
    cfg = tiny_fit(shards_dir, tmp_path / "c", epochs=1, compile=True, deterministic=False)
    assert fit(cfg, stop=lambda e, s: s >= 1) == "interrupted"
    assert counters["stats"]["unique_graphs"] > 0  # the step did run through torch.compile
    state = load_checkpoint(tmp_path / "c" / "last.pt")["model"]
    assert not any(k.startswith("_orig_mod") for k in state) and "head.weight" in state


def test_the_log_tells_the_story_and_config_json_records_what_ran(shards_dir, tmp_path, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "story"
    assert fit(tiny_fit(shards_dir, out, method="rw-ldam-drw", epochs=2, drw_epoch=1)) == "finished"
    text = caplog.text
    assert "rw-ldam-drw on cpu | torch loader, 0 workers" in text and "| fp32 |" in text
    assert "tiny, 24,976 parameters (24,976 trained)" in text and "images: train 166, val 60, test 85" in text
    assert "epoch 1: new best val balanced accuracy" in text and "(the first): best.pt" in text
    assert "epoch 2: DRW switches on: rw" in text
    summary = json.loads((out / "summary.json").read_text())
    assert f"done: best epoch {summary['best_epoch']} of 2" in text and f"{summary['test']['bacc']:.4f}" in text
    meta = json.loads((out / "config.json").read_text())
    assert meta["loader"] == "torch" and meta["device"] == "cpu" and meta["device_name"]
    assert "cuda" in meta and "cudnn" in meta and meta["synthetic"] is True


def test_early_stopping_says_so(shards_dir, tmp_path, caplog):
    caplog.set_level("INFO")
    from train.rundir.checkpoint import save_checkpoint

    cfg = tiny_fit(shards_dir, tmp_path / "r", epochs=3, patience=5)
    assert fit(cfg, stop=lambda e, s: e == 1 and s == 1) == "interrupted"
    ckpt = load_checkpoint(tmp_path / "r" / "last.pt")
    ckpt["state"].update(best=1.0, since_best=4)  # as if four epochs had not beaten a perfect one
    save_checkpoint(tmp_path / "r" / "last.pt", ckpt)
    assert fit(cfg) == "finished"
    assert "early stop: val balanced accuracy not better for 5 epochs (best 1.0000" in caplog.text
    assert len(pd.read_csv(tmp_path / "r" / "metrics.csv")) == 2


def signal_self_when(monkeypatch, target, name, condition=lambda *a, **kw: True):
    """Patch ``target.name`` to SIGTERM this process (the run's handler is installed) when called."""
    real = getattr(target, name)

    def patched(*args, **kw):
        if condition(*args, **kw):
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kw)

    monkeypatch.setattr(target, name, patched)


def test_sigterm_during_start_up_is_an_interruption_and_the_rerun_trains(shards_dir, tmp_path, monkeypatch):
    from train.loop import fit as fit_module

    cfg = tiny_fit(shards_dir, tmp_path / "r", epochs=1)
    with monkeypatch.context() as m:
        signal_self_when(m, fit_module, "make_loader")
        assert fit(cfg) == "interrupted"
    assert not (tmp_path / "r" / "metrics.csv").exists()
    assert fit(cfg) == "finished" and (tmp_path / "r" / "summary.json").exists()


def test_sigterm_during_the_final_evaluation_leaves_no_summary_and_the_rerun_finishes(shards_dir, tmp_path,
                                                                                     monkeypatch):
    from train.loop.trainer import Trainer

    cfg = tiny_fit(shards_dir, tmp_path / "r", epochs=1)
    with monkeypatch.context() as m:
        signal_self_when(m, Trainer, "predict", lambda self, view, *_: view == "test")
        assert fit(cfg) == "interrupted"
    assert not (tmp_path / "r" / "summary.json").exists()
    assert fit(cfg) == "finished" and (tmp_path / "r" / "summary.json").exists()
    assert len(pd.read_csv(tmp_path / "r" / "metrics.csv")) == 1  # not trained again


@pytest.mark.parametrize("name", ["cuda", "cuda:5", "foo"])
def test_a_device_this_machine_lacks_is_a_usage_error_naming_what_exists(name, monkeypatch):
    from shards.errors import UsageError
    from train.device import resolve_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=rf"--device {name}: .*this machine has cpu"):
        resolve_device(name)
    assert resolve_device("auto") == torch.device("cpu")


def test_cudnn_autotunes_unless_deterministic():
    from train.device import configure_kernels

    configure_kernels(False)
    assert torch.backends.cudnn.benchmark
    configure_kernels(True)
    assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()


def test_the_train_state_survives_its_checkpoint_form():
    from train.loop.state import EpochTotals, TrainState

    cpu = torch.device("cpu")
    state = TrainState(EpochTotals.zero(cpu), epoch=2, step=3, best=0.5, best_epoch=2, since_best=1, skipped=4,
                       history=[{"epoch": 1}])
    state.totals.add(torch.tensor(2.0), torch.ones(3, 5), torch.tensor([0, 1, 2]), torch.tensor(1))
    back = TrainState.from_checkpoint(state.to_checkpoint(), cpu)
    assert back.to_checkpoint()["accum"]["loss_sum"] == 6.0 and back.totals.n == 3 and back.skipped == 4
    assert int(back.totals.skipped) == 1 and torch.equal(torch.cat(back.totals.logits), torch.ones(3, 5))
    assert (back.epoch, back.step, back.best, back.best_epoch, back.since_best) == (2, 3, 0.5, 2, 1)


@pytest.mark.gpu
def test_a_run_on_cuda_trains_in_fp16_with_fused_adam_and_records_the_gpu(shards_dir, tmp_path):
    out = tmp_path / "cuda"
    assert fit(tiny_fit(shards_dir, out, epochs=1, device="cuda", deterministic=False)) == "finished"
    meta = json.loads((out / "config.json").read_text())
    assert meta["device"] == "cuda:0" and meta["precision"] == "fp16" and meta["cudnn"]
    assert load_checkpoint(out / "last.pt")["optimizer"]["param_groups"][0]["fused"]
