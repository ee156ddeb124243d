"""DALI's own webdataset reader (CPU-only mode) reads our shards: every key, non-empty images."""
import json

import numpy as np
from nvidia.dali import fn, pipeline_def, types

from shards.index import read_index


def test_dali_webdataset_reader_reads_every_shard_with_the_right_keys(shards_dir):
    m = json.loads((shards_dir / "manifest.json").read_text())
    tars = [str(shards_dir / s["name"]) for s in m["shards"]]
    idxs = [t[:-4] + ".idx" for t in tars]
    total = sum(s["samples"] for s in m["shards"])

    @pipeline_def(batch_size=16, num_threads=1, device_id=None, seed=0)
    def pipe():
        jpg, cls = fn.readers.webdataset(paths=tars, index_paths=idxs, ext=["jpg", "cls"],
                                         missing_component_behavior="error", dtypes=[types.UINT8, types.UINT8],
                                         name="r", random_shuffle=False, pad_last_batch=False)
        return fn.decoders.image(jpg, device="cpu", output_type=types.GRAY), cls, jpg

    p = pipe()
    p.build()
    assert p.reader_meta("r")["epoch_size"] == total
    keys, labels = [], []
    while len(keys) < total:
        images, cls, raw = p.run()
        for i in range(len(images)):
            img = np.asarray(images.at(i))
            assert img.shape == (32, 32, 1) and img.std() > 0
            keys.append(raw[i].source_info().rsplit(":", 1)[1].split(".")[0])
            labels.append(int(bytes(np.asarray(cls.at(i))).decode()))
    index, _ = read_index(shards_dir / "index.parquet")
    # the index is in pack order, shard by shard as the manifest lists them, and DALI reads that order
    assert keys[:total] == index["key"].tolist()
    assert labels[:total] == index["label"].tolist()
