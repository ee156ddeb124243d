"""A shards dir from someone else: the shard names in its manifest and index never lead outside it."""
import hashlib
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from ingest.verify import verify
from shards.errors import UsageError
from shards.reader import open_shards


def rewrite_index(root, change):
    """index.parquet with ``change`` applied to its table, and the manifest's index hash made to match."""
    path = root / "index.parquet"
    table = pq.read_table(path)
    df = change(table.to_pandas())
    import pyarrow as pa

    pq.write_table(pa.Table.from_pandas(df, schema=table.schema, preserve_index=False), path)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["index_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("bad", ["/etc/passwd", "../../../../dev/zero", "train-000000.tar/../../x.tar"])
def test_an_index_shard_outside_the_dir_is_refused_naming_the_file_and_value(shards_copy, tmp_path, bad):
    outside = tmp_path / "outside.tar"
    outside.write_bytes((shards_copy / "train-000000.tar").read_bytes())

    def change(df):
        df.loc[df.index[0], "shard"] = str(outside) if bad == "/etc/passwd" else bad
        return df

    rewrite_index(shards_copy, change)
    with pytest.raises(UsageError, match=r"index.parquet: shard '.*' is not a shard file of this dir"):
        open_shards(shards_copy)
    assert any("is not a shard file of this dir" in p for p in verify(shards_copy))


def test_a_manifest_shard_pointing_at_dev_zero_is_refused_at_once(shards_copy):
    manifest = json.loads((shards_copy / "manifest.json").read_text())
    manifest["shards"][0]["name"] = "../../../../../../../../dev/zero"
    (shards_copy / "manifest.json").write_text(json.dumps(manifest))
    r = subprocess.run([sys.executable, "-m", "ingest", "verify", str(shards_copy)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "'../../../../../../../../dev/zero' is not a shard file" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_a_shard_that_is_a_link_to_a_device_is_refused_without_reading_it(shards_copy):
    shard = shards_copy / "train-000000.tar"
    shard.unlink()
    shard.symlink_to("/dev/zero")
    with pytest.raises(UsageError, match="train-000000.tar: not a plain file"):
        open_shards(shards_copy)
    assert "train-000000.tar: not a plain file (a device, FIFO or folder)" in verify(shards_copy)


def test_a_manifest_that_is_a_fifo_or_huge_is_one_line(shards_copy):
    import os

    (shards_copy / "manifest.json").unlink()
    os.mkfifo(shards_copy / "manifest.json")
    with pytest.raises(UsageError, match="not a plain file"):
        open_shards(shards_copy)
