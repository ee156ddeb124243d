import json

from ingest.verify import verify
from shards.index import read_index


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
