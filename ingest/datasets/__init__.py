"""Every dataset build-shards packs, by name: the adapters of the 2022-2023 benchmarks, the CXR-LT 2024 and 2026
releases, and ``csv`` (any labelled CSV described by a spec). ``get_dataset`` gives a ``Source``: its classes,
how its images are found, ``read`` (records, label-file hashes, the facts its manifest records) and ``groups``."""
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from shards.index import class_counts

from .. import IngestError
from ..adapters import ADAPTERS, Adapter, read_labels
from .cxr_lt import RELEASES
from .spec import read_spec


@dataclass(frozen=True)
class AdapterSource:
    """An ``ingest.adapters`` dataset as a Source: its files name their splits, nothing is made."""
    adapter: Adapter

    def __getattr__(self, name):
        return getattr(self.adapter, name)

    def read(self, labels_dir: Path) -> tuple[pd.DataFrame, dict, dict]:
        records, hashes = read_labels(self.adapter, labels_dir)
        return records, hashes, {}

    def groups(self, index: pd.DataFrame, facts: dict) -> list[str]:
        return self.adapter.groups(class_counts(index, len(self.adapter.class_names), "train"))

    @property
    def group_rule(self) -> str:
        return "published training counts" if self.adapter.published_counts else "training counts"


NAMES = [*ADAPTERS, *RELEASES, "csv"]
WINDOWS = {"cxr-lt-2026": "percentile"}  # the 16-bit conversion a dataset packs with unless --window says


def get_dataset(name: str, spec: Path | None = None, val_fraction: float | None = None,
                test_fraction: float | None = None, split_seed: int | None = None):
    """The Source of ``name``; a release's split fractions and seed replaced where given."""
    if name in ADAPTERS:
        return AdapterSource(ADAPTERS[name])
    if name == "csv":
        if spec is None:
            raise IngestError("--dataset csv needs --spec SPEC.yaml (the YAML that describes the CSV; see README)")
        release = read_spec(spec)
    elif name in RELEASES:
        release = RELEASES[name]
    else:
        raise IngestError(f"unknown dataset {name!r}; one of: {', '.join(NAMES)}")
    given = {"val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed}
    return replace(release, **{k: v for k, v in given.items() if v is not None})
