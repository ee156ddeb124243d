import json
import os
import subprocess
import sys

import pytest
import torch

from shards.errors import UsageError
from train.bench import BASELINE_BATCHES, paper_path

from conftest import ROOT, tiny_fit


@pytest.mark.slow
def test_bench_counts_delivered_images_and_prints_the_json_numbers(shards_dir, raw_dir, tmp_path):
    """166 training images in batches of 4: 42 steps an epoch, the last one of 2 images. One warm-up and
    41 timed steps of the loader deliver 162 images, not 41 x 4."""
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "train", "bench", "--shards", str(shards_dir), "--model", "tiny",
                        "--image-size", "32", "--batch-size", "4", "--steps", "41", "--warmup", "1", "--loader",
                        "dali", "--workers", "0", "--repeat", "2", "--json", str(out), "--baseline-png",
                        str(raw_dir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    numbers = json.loads(out.read_text())
    assert numbers["loader_images"] == numbers["end_to_end_images"] == 162 and numbers["model_images"] == 164
    assert numbers["paper_path_images"] == BASELINE_BATCHES * 4
    for key in ("loader", "model", "end_to_end", "paper_path"):
        runs = numbers[f"{key}_img_s_runs"]
        assert len(runs) == 2 and min(runs) <= numbers[f"{key}_img_s"] <= max(runs) and min(runs) > 0
    assert numbers["saturation"] == numbers["end_to_end_img_s"] / numbers["model_img_s"]
    assert numbers["loader"] == "dali" and numbers["mean_jpeg_kb"] > 0 and numbers["repeat"] == 2
    assert f"| end to end | {numbers['end_to_end_img_s']:,.1f} |" in r.stdout
    assert "loader / paper's input path" in r.stdout and "(its datasets.py: cv2, PNG every epoch) |" in r.stdout


def test_too_few_pngs_for_the_paper_path_are_refused_naming_the_count(shards_dir, raw_dir, tmp_path):
    cfg = tiny_fit(shards_dir, tmp_path, batch_size=64)
    with pytest.raises(UsageError, match=rf"--baseline-png {raw_dir}: \d+ PNGs; .* needs {51 * 64}"):
        paper_path(str(raw_dir), cfg, 1, 1, torch.device("cpu"))


@pytest.mark.slow
def test_gpu_check_stops_when_nvidia_smi_sees_a_gpu_that_torch_does_not(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("torch sees the GPU here")
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\ncase "$1" in -L) echo "GPU 0: Tesla T4 (UUID: GPU-0)";; '
                    '*) echo "Tesla T4, 535.104.05";; esac\n')
    fake.chmod(0o755)
    r = subprocess.run(["bash", "scripts/gpu-check.sh"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT,
                       env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "OUT": str(tmp_path / "o")})
    assert r.returncode == 1 and "nvidia-smi sees a GPU but torch does not" in r.stderr
    assert "Tesla T4, 535.104.05" in r.stderr and "R580" in r.stderr and "dali-cuda12" in r.stderr
    assert "== gpu-marked tests" not in r.stdout  # nothing ran on the CPU in the GPU's place


def test_bench_on_multi_label_shards_times_the_bce_step_on_multi_hot_targets(ml_shards_dir, tmp_path, monkeypatch):
    import train.bench as b

    losses, targets = [], []
    real_make_loss, real_step = b.make_loss, b.train_step
    monkeypatch.setattr(b, "make_loss", lambda name, *a, **kw: losses.append(name) or real_make_loss(name, *a, **kw))
    monkeypatch.setattr(b, "train_step", lambda parts, batch, *a: targets.append(batch["y"]) or
                        real_step(parts, batch, *a))
    numbers = b.bench(tiny_fit(ml_shards_dir, tmp_path, batch_size=16), steps=3, warmup=1)
    assert losses == ["bce"] and numbers["end_to_end_images"] == numbers["model_images"] == 48
    assert all(y.dtype == torch.float32 and y.shape == (16, 20) for y in targets) and len(targets) == 8
