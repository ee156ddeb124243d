import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.__main__ import main
from ingest.verify import verify
from shards.errors import UsageError
from shards.index import read_index
from shards.reader import open_shards


def test_intact_shards_verify_clean(shards_dir):
    assert verify(shards_dir) == []


def test_a_flipped_byte_in_an_image_is_found(shards_copy):
    index, _ = read_index(shards_copy / "index.parquet")
    row = index.iloc[3]
    path = shards_copy / row["shard"]
    data = bytearray(path.read_bytes())
    data[row["offset"] + row["size"] // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = verify(shards_copy)
    assert any(f"{row['key']}.jpg sha256 differs" in p for p in problems)
    assert any(f"{row['shard']}: sha256 differs from the manifest" in p for p in problems)


def test_missing_idx_and_missing_shard_are_each_listed(shards_copy):
    m = json.loads((shards_copy / "manifest.json").read_text())
    first, last = m["shards"][0]["name"], m["shards"][-1]["name"]
    (shards_copy / first.replace(".tar", ".idx")).unlink()
    (shards_copy / last).unlink()
    problems = verify(shards_copy)
    assert f"{first.replace('.tar', '.idx')}: missing" in problems and f"{last}: missing" in problems


def test_wrong_idx_content_is_found(shards_copy):
    m = json.loads((shards_copy / "manifest.json").read_text())
    idx = shards_copy / m["shards"][0]["name"].replace(".tar", ".idx")
    idx.write_text(idx.read_text().replace(" 512 ", " 1024 ", 1))
    assert any("does not match its tar" in p for p in verify(shards_copy))


def test_unfinished_dir_is_a_problem(tmp_path):
    assert "no manifest.json" in verify(tmp_path)[0]


def rewrite_index(root, edit):
    """Rewrite index.parquet with pyarrow, rows edited, schema and its class-name metadata kept."""
    table = pq.read_table(root / "index.parquet")
    df = edit(table.to_pandas())
    pq.write_table(pa.Table.from_pandas(df, schema=table.schema, preserve_index=False), root / "index.parquet")
    return df


def edit_manifest(root, edit):
    m = json.loads((root / "manifest.json").read_text())
    edit(m)
    (root / "manifest.json").write_text(json.dumps(m, indent=1))


def test_a_flipped_label_in_the_index_is_found_and_refused_by_open_shards(shards_copy):
    row = {}

    def flip(df):
        i = int(np.flatnonzero(df["split"] == "train")[0])
        row.update(key=df.at[i, "key"], old=int(df.at[i, "label"]), new=(int(df.at[i, "label"]) + 1) % 20)
        df.at[i, "label"] = row["new"]
        df["labels"] = [np.eye(20, dtype=np.int8)[row["new"]] if k == i else ls for k, ls in enumerate(df["labels"])]
        return df

    rewrite_index(shards_copy, flip)
    problems = verify(shards_copy)
    assert "index.parquet: sha256 differs from the manifest's index_sha256" in problems
    assert any(f"{row['key']}.cls holds label {row['old']}, index.parquet says {row['new']}" in p for p in problems)
    assert any(p.startswith("index.parquet: train class counts differ from the manifest") for p in problems)
    with pytest.raises(UsageError, match=f"{shards_copy}/index.parquet is not the index .*python -m ingest verify"):
        open_shards(shards_copy)


def test_a_test_row_moved_into_train_is_found(shards_copy):
    def move(df):
        i = int(np.flatnonzero(df["split"] == "test")[0])
        df.loc[i, ["split", "balanced_test"]] = ["train", False]
        return df

    df = rewrite_index(shards_copy, move)
    moved = df[(df["split"] == "train") & df["shard"].str.startswith("test")].iloc[0]
    problems = verify(shards_copy)
    assert f"index.parquet: 1 rows whose split is not their shard's (first: {moved['key']}, split train, " \
           f"{moved['shard']})" in problems
    assert any(p.startswith("index.parquet: train class counts differ") for p in problems)
    n_train = (df["split"] == "train").sum()
    assert any(p.startswith(f"index.parquet: {n_train} train images, manifest says") for p in problems)


def test_edited_manifest_groups_and_class_names_are_found(shards_copy):
    def swap(m):
        hernia = m["class_names"].index("Hernia")
        m["groups"][hernia] = "medium"  # published: 49 training images, tail
        m["class_names"][0] = "Atelectasis?"

    edit_manifest(shards_copy, swap)
    problems = verify(shards_copy)
    assert any(p.startswith("manifest.json: groups differ from the rule (head > 1000, medium 100-1000, tail < 100 "
                            "published training counts): Hernia medium (rule: tail)") for p in problems)
    assert any(p.startswith("manifest.json: class_names differ from index.parquet's") for p in problems)
    assert any(p.startswith("manifest.json: class_names are not nih-cxr-lt's") for p in problems)


def test_a_manifest_from_before_the_index_hash_still_opens(shards_copy):
    edit_manifest(shards_copy, lambda m: m.pop("index_sha256"))
    assert len(open_shards(shards_copy).index) > 0 and verify(shards_copy) == []


def test_a_corrupt_manifest_is_one_line_naming_it(shards_copy, capsys):
    (shards_copy / "manifest.json").write_text('{"format_version": 1, "shards": [')
    assert verify(shards_copy)[0].startswith(f"{shards_copy}/manifest.json: not readable JSON")
    assert main(["stats", str(shards_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shards_copy}/manifest.json: not readable JSON") and err.count("\n") == 1


def test_a_multi_label_tars_labels_member_is_checked_against_the_index(ml_shards_dir, tmp_path):
    import shutil

    root = tmp_path / "ml"
    shutil.copytree(ml_shards_dir, root)
    assert verify(root) == []
    row = {}

    def flip(df):
        i = int(np.flatnonzero(df["split"] == "train")[0])
        old = np.asarray(df.at[i, "labels"], np.int8)
        new = old.copy()
        new[0] = 1 - new[0]
        row.update(key=df.at[i, "key"], old=",".join(map(str, old)), new=",".join(map(str, new)))
        df["labels"] = [new if k == i else ls for k, ls in enumerate(df["labels"])]
        return df

    rewrite_index(root, flip)
    assert any(f"{row['key']}.labels holds label {row['old']}, index.parquet says {row['new']}" in p
               for p in verify(root))
