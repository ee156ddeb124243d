"""Session fixtures: our own synth + build-shards, run once on tiny images."""
import shutil
from pathlib import Path

import pytest

from ingest.build import BuildOptions, build_shards
from ingest.synth import synth

SCALE, SOURCE_PX, SHARD_PX, SHARD_SIZE = 0.002, 64, 32, 64


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def tiny_options(**kw) -> BuildOptions:
    return BuildOptions(**{"size": SHARD_PX, "shard_size": SHARD_SIZE, "workers": 1, **kw})


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    """A synthetic NIH-CXR-LT in the real layout: images_NNN/images/*.png and labels/."""
    out = tmp_path_factory.mktemp("raw")
    synth(out, scale=SCALE, image_size=SOURCE_PX, seed=0, workers=1)
    return out


@pytest.fixture(scope="session")
def shards_dir(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "nih"
    build_shards(raw_dir, raw_dir / "labels", out, tiny_options())
    return out


@pytest.fixture
def labels_copy(raw_dir, tmp_path) -> Path:
    """A writable copy of the fixture's label files, for tests that break them."""
    dst = tmp_path / "labels"
    shutil.copytree(raw_dir / "labels", dst)
    return dst


@pytest.fixture
def shards_copy(shards_dir, tmp_path) -> Path:
    dst = tmp_path / "shards"
    shutil.copytree(shards_dir, dst)
    return dst
