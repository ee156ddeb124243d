"""A corrupt image inside a shard: the loaders name the shard and key and say to run ingest verify."""
import pytest

from shards.errors import UsageError
from shards.index import read_index
from train.loop.fit import fit

from conftest import tiny_fit


def corrupt_first_train_image(root) -> tuple[str, str]:
    index, _ = read_index(root / "index.parquet")
    row = index[index["split"] == "train"].iloc[0]
    with open(root / row["shard"], "r+b") as f:
        f.seek(int(row["offset"]))
        f.write(b"\x00" * int(row["size"]))
    return row["shard"], row["key"]


@pytest.mark.parametrize("workers", [0, 1])
def test_the_torch_loader_names_the_shard_and_key_of_a_corrupt_image(shards_copy, tmp_path, workers):
    shard, key = corrupt_first_train_image(shards_copy)
    with pytest.raises(UsageError) as e:
        fit(tiny_fit(shards_copy, tmp_path / "run", epochs=1, workers=workers))
    said = str(e.value)
    assert "\n" not in said and f"{shard}: image {key} cannot be decoded" in said and "ingest verify" in said


@pytest.mark.slow
def test_the_dali_loader_says_an_image_cannot_be_decoded_and_to_run_verify(shards_copy, tmp_path):
    pytest.importorskip("nvidia.dali")
    corrupt_first_train_image(shards_copy)
    with pytest.raises(UsageError) as e:
        fit(tiny_fit(shards_copy, tmp_path / "run", epochs=1, loader="dali", workers=0, device="cpu"))
    assert "\n" not in str(e.value) and "cannot decode an image" in str(e.value) and "ingest verify" in str(e.value)
