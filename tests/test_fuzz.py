"""Seeded fuzz of what users share: run dirs, shards manifests and label CSVs, each mutated at random.

Whatever the damage, a command either works or says what is wrong in one line (exit 2): never a traceback, and
nothing is written outside --out.
"""
import copy
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest import IngestError
from ingest.__main__ import main as ingest_main
from ingest.adapters import ADAPTERS, read_labels

VALUES = [None, -1, 0, 1, 2.5, 60000, 1e308, math.nan, math.inf, "", "x", "64", "../../../../etc/passwd",
          "/dev/zero", [], {}, [1, 2], True, "a\nb"]


def mutate_json(data, rng):
    """One random change: a value replaced (by one of VALUES, or of another type) or a key dropped."""
    data = copy.deepcopy(data)
    node, key = None, None
    here = data
    for _ in range(int(rng.integers(1, 4))):
        if isinstance(here, dict) and here:
            key = list(here)[int(rng.integers(len(here)))]
        elif isinstance(here, list) and here:
            key = int(rng.integers(len(here)))
        else:
            break
        node, here = here, here[key]
    if node is None:
        return VALUES[int(rng.integers(len(VALUES)))]
    if isinstance(node, dict) and rng.random() < 0.3:
        del node[key]
    else:
        node[key] = VALUES[int(rng.integers(len(VALUES)))]
    return data


def mutate_bytes(data: bytes, rng) -> bytes:
    how = int(rng.integers(3))
    if how == 0 or not data:
        return data[: int(rng.integers(len(data) + 1))]  # truncated
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        data[int(rng.integers(len(data)))] = int(rng.integers(256))
    return bytes(data) if how == 1 else bytes(data) + bytes(rng.integers(0, 256, 64, dtype=np.uint8))


def snapshot(root: Path, skip: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if skip not in p.parents and p != skip}


def one_line_or_ok(rc: int, err: str, allowed=(0, 2)) -> None:
    assert rc in allowed, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    if rc == 2:
        assert len(lines) == 1 and "Traceback" not in err, err


RUN_FILES = ["config.json", "config.json", "config.json", "summary.json", "metrics.csv", "best.pt",
             "predictions/test.parquet", "predictions/balanced-test.parquet"]


@pytest.mark.slow
def test_fuzzed_run_dirs_give_a_result_or_one_line(stage1_run, raw_dir, tmp_path, capsys):
    from eval.__main__ import main as eval_main
    from train.__main__ import main as train_main

    rng = np.random.default_rng(2024)
    image = str(next(raw_dir.rglob("*.png")))
    for case in range(150):
        run = tmp_path / f"case{case}" / "run"
        shutil.copytree(stage1_run, run, ignore=shutil.ignore_patterns("report*", "export"))
        name = RUN_FILES[int(rng.integers(len(RUN_FILES)))]
        path = run / name
        if name.endswith(".json"):
            path.write_text(json.dumps(mutate_json(json.loads(path.read_text()), rng)))
        else:
            path.write_bytes(mutate_bytes(path.read_bytes(), rng))
        out = tmp_path / f"case{case}" / "out"
        before = snapshot(tmp_path / f"case{case}", out)
        kind = case % 3
        if kind == 0:
            rc = train_main(["predict", str(run), "--images", image, "--out", str(out / "p.csv"), "--workers", "0"])
        elif kind == 1:
            rc = train_main(["export", str(run), "--format", "safetensors", "--out", str(out / "m.safetensors")])
        else:
            rc = eval_main(["table", str(run), "--out", str(out / "t"), "--resamples", "2"])
        said = capsys.readouterr()
        one_line_or_ok(rc, said.err)
        assert snapshot(tmp_path / f"case{case}", out) == before, (case, name)
        shutil.rmtree(tmp_path / f"case{case}")


@pytest.mark.slow
def test_fuzzed_manifests_and_indexes_give_a_result_or_one_line(shards_copy, capsys):
    rng = np.random.default_rng(7)
    pristine = {n: (shards_copy / n).read_bytes() for n in ("manifest.json", "index.parquet")}
    for case in range(100):
        for n, data in pristine.items():
            (shards_copy / n).write_bytes(data)
        if case % 4:
            manifest = mutate_json(json.loads(pristine["manifest.json"]), rng)
            (shards_copy / "manifest.json").write_text(json.dumps(manifest))
        else:
            (shards_copy / "index.parquet").write_bytes(mutate_bytes(pristine["index.parquet"], rng))
        before = snapshot(shards_copy, shards_copy / "none")
        rc = ingest_main(["stats", str(shards_copy)])
        one_line_or_ok(rc, capsys.readouterr().err)
        rc = ingest_main(["verify", str(shards_copy)])
        one_line_or_ok(rc, capsys.readouterr().err, (0, 1, 2))
        assert snapshot(shards_copy, shards_copy / "none") == before


@pytest.mark.slow
def test_fuzzed_label_csvs_are_read_or_refused_in_one_line(labels_copy):
    rng = np.random.default_rng(11)
    adapter = ADAPTERS["nih-cxr-lt"]
    name = adapter.files[next(iter(adapter.files))] if isinstance(adapter.files, dict) else None
    files = sorted(p.name for p in labels_copy.iterdir() if p.name.startswith("nih-cxr-lt_single-label"))
    pristine = {f: (labels_copy / f).read_bytes() for f in files}
    for case in range(100):
        for f, data in pristine.items():
            (labels_copy / f).write_bytes(data)
        f = files[int(rng.integers(len(files)))]
        df = pd.read_csv(io.BytesIO(pristine[f]), dtype=str, keep_default_na=False)
        how = int(rng.integers(5))
        if how == 0:  # a header renamed, cased or duplicated
            cols = list(df.columns)
            i = int(rng.integers(len(cols)))
            cols[i] = [cols[i].upper(), cols[i].replace("_", " "), cols[(i + 1) % len(cols)], "", "x"][
                int(rng.integers(5))]
            df.columns = cols
        elif how == 1:  # a cell changed
            r, c = int(rng.integers(len(df))), int(rng.integers(df.shape[1]))
            df.iat[r, c] = str(VALUES[int(rng.integers(len(VALUES)))])
        elif how == 2:  # rows duplicated or dropped
            df = pd.concat([df, df.sample(3, random_state=case)]) if rng.random() < 0.5 else df.iloc[: len(df) // 2]
        elif how == 3:  # a column dropped
            df = df.drop(columns=df.columns[int(rng.integers(df.shape[1]))])
        if how == 4:
            (labels_copy / f).write_bytes(mutate_bytes(pristine[f], rng))
        else:
            df.to_csv(labels_copy / f, index=False)
        try:
            read_labels(adapter, labels_copy)
        except IngestError as e:
            assert "\n" not in str(e) and str(labels_copy) in str(e), str(e)
