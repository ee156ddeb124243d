import json
import subprocess
import sys


def test_bench_prints_the_table_and_writes_the_same_numbers_as_json(shards_dir, raw_dir, tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "train", "bench", "--shards", str(shards_dir), "--model", "tiny",
                        "--image-size", "32", "--batch-size", "16", "--steps", "3", "--warmup", "1", "--loader",
                        "dali", "--workers", "0", "--json", str(out), "--baseline-png", str(raw_dir)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    numbers = json.loads(out.read_text())
    for key in ("loader_img_s", "model_img_s", "end_to_end_img_s", "paper_path_img_s"):
        assert numbers[key] > 0
    assert numbers["saturation"] == numbers["end_to_end_img_s"] / numbers["model_img_s"]
    assert numbers["loader"] == "DaliLoader" and numbers["mean_jpeg_kb"] > 0
    assert f"| end to end | {numbers['end_to_end_img_s']:,.1f} |" in r.stdout
    assert "loader / paper's input path" in r.stdout
