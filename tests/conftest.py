"""Session fixtures: our own synth + build-shards, run once on tiny images."""
import shutil
from pathlib import Path

import pytest

from ingest.build import BuildOptions, build_shards
from ingest.synth import synth

SCALE, SOURCE_PX, SHARD_PX, SHARD_SIZE = 0.002, 64, 32, 64
TESTS = Path(__file__).resolve().parent  # tests/ mirrors the packages: tests/train/loop/test_fit.py, ...
ROOT, DATA = TESTS.parent, TESTS / "data"


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


@pytest.fixture(scope="session")
def ml_shards_dir(raw_dir, tmp_path_factory) -> Path:
    """The same images as multi-label shards (the MICCAI 2023 release's files, synthetic)."""
    out = tmp_path_factory.mktemp("shards") / "nih-ml"
    build_shards(raw_dir, raw_dir / "labels", out, tiny_options(dataset="nih-cxr-lt-multilabel"))
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


# The tiny-run settings, written once: tiny CNN, 32 px, short epochs on CPU, deterministic.
TINY_RUN = dict(model="tiny", pretrained="none", image_size=32, epochs=2, patience=5, batch_size=32, lr=1e-3,
                loader="torch", workers=0, deterministic=True, drw_epoch=1, tensorboard=False)


def tiny_fit(shards, out, method="ce", **kw):
    """A FitConfig for tests with the tiny-run settings; ``kw`` overrides them."""
    from train.config import FitConfig

    return FitConfig(**{**TINY_RUN, "shards": str(shards), "out": str(out), "method": method, **kw})


def tiny_flags(**kw) -> list[str]:
    """The tiny-run settings as command-line flags (``--no-x`` for a False bool); ``kw`` overrides them."""
    flags = []
    for name, value in {**TINY_RUN, **kw}.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


def _stage1(shards, tmp_path_factory, method) -> Path:
    from train.loop.fit import fit

    out = tmp_path_factory.mktemp("stage1") / method
    assert fit(tiny_fit(shards, out, method, epochs=1)) == "finished"
    return out


@pytest.fixture(scope="session")
def stage1_run(shards_dir, tmp_path_factory) -> Path:
    """A finished ce run, the starting point of crt and tau-norm."""
    return _stage1(shards_dir, tmp_path_factory, "ce")


@pytest.fixture(scope="session")
def ml_stage1_run(ml_shards_dir, tmp_path_factory) -> Path:
    """A finished bce run on the multi-label shards, the starting point of crt-bce."""
    return _stage1(ml_shards_dir, tmp_path_factory, "bce")


def shards_and_start(request, method) -> tuple[Path, dict]:
    """The shards dir of a method's task, and for a two-stage method the stage-1 run it starts from."""
    ml = method.task == "multi-label"
    shards = request.getfixturevalue("ml_shards_dir" if ml else "shards_dir")
    if method.stage == "train":
        return shards, {}
    return shards, {"init_from": str(request.getfixturevalue("ml_stage1_run" if ml else "stage1_run"))}
