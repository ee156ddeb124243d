"""``--dataset csv --spec SPEC.yaml``: any labelled CSV, described by a small YAML next to it.

    labels: chexpert.csv        # the CSV, relative to the spec
    path: Path                  # the image column, relative to --images
    patient: PatientID          # every image of a patient lands in one split
    id: ImageID                 # optional: the image id column (default: the path)
    study: StudyID              # optional; view: ViewPosition  (optional)
    split: Split                # optional: values train / val / test; without it, a seeded patient-grouped
    fractions: {val: 0.1, test: 0.1}   # split of every row with these fractions (the default),
    seed: 0                     # and this seed
    classes: [Atelectasis, Edema]      # the class columns, in order ...
    labels_column: Finding Labels      # ... or one column of "|"-separated class names (then classes: the names)
    multi_label: true           # false: exactly one class per row
    uncertain: ignore           # zeros | ones | ignore: what -1 (uncertain) means; a blank cell is a negative

Every key is checked; a wrong one is a one-line error naming the spec, the key and what it takes.
"""
from pathlib import Path

import yaml

from .. import IngestError
from .release import UNCERTAIN, Release

KEYS = {"labels": "the CSV, relative to the spec", "path": "the image path column", "patient": "the patient column",
        "id": "the image id column", "study": "the study column", "view": "the view column",
        "split": "the split column", "fractions": "{val: F, test: F}", "seed": "an integer",
        "classes": "a list of class names", "labels_column": "a column of |-separated class names",
        "multi_label": "true or false", "uncertain": "zeros, ones or ignore", "name": "the dataset's name"}
REQUIRED = ("labels", "path", "patient")


def _fail(spec: Path, text: str) -> IngestError:
    return IngestError(f"--spec {spec}: {text}")


def _load(spec: Path) -> dict:
    try:
        data = yaml.safe_load(spec.read_text())
    except OSError as e:
        raise _fail(spec, f"cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise _fail(spec, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise _fail(spec, "not a mapping of keys (labels:, path:, patient:, classes: ...)")
    for key in data:
        if key not in KEYS:
            raise _fail(spec, f"unknown key {key!r}; the keys are {', '.join(KEYS)}")
    for key in REQUIRED:
        if key not in data:
            raise _fail(spec, f"no {key!r} ({KEYS[key]}); {', '.join(REQUIRED)} are required")
    for key in ("labels", "path", "patient", "id", "study", "view", "split", "labels_column", "name"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise _fail(spec, f"{key}: {data[key]!r} is not {KEYS[key]} (a non-empty string)")
    return data


def _classes(spec: Path, data: dict) -> list[str]:
    classes = data.get("classes")
    if classes is None:
        raise _fail(spec, "no 'classes': list the class columns in order (with labels_column: the class names)")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise _fail(spec, f"classes: {classes!r} is not a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise _fail(spec, f"classes: {sorted({c for c in classes if classes.count(c) > 1})} listed twice")
    return classes


def _fractions(spec: Path, data: dict) -> tuple[float, float]:
    fr = data.get("fractions", {"val": 0.1, "test": 0.1})
    if not isinstance(fr, dict) or set(fr) - {"val", "test"}:
        raise _fail(spec, f"fractions: {fr!r} is not {KEYS['fractions']}")
    val, test = fr.get("val", 0.0), fr.get("test", 0.0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1 for v in (val, test)) \
            or val + test >= 1:
        raise _fail(spec, f"fractions: {fr!r}: each in [0, 1), their sum below 1 (the rest trains)")
    return float(val), float(test)


def read_spec(spec: Path) -> Release:
    """The Release a spec describes; its label file is read relative to the spec's folder."""
    spec = Path(spec)
    data = _load(spec)
    classes = _classes(spec, data)
    if not isinstance(data.get("multi_label", True), bool):
        raise _fail(spec, f"multi_label: {data['multi_label']!r} is not true or false")
    if data.get("uncertain") is not None and data["uncertain"] not in UNCERTAIN:
        raise _fail(spec, f"uncertain: {data['uncertain']!r} is not one of {', '.join(UNCERTAIN)}")
    if data.get("uncertain") == "ignore" and not data.get("multi_label", True):
        raise _fail(spec, "uncertain: ignore needs multi_label: true (one class per image has no label to leave out)")
    if data.get("labels_column") and data.get("uncertain"):
        raise _fail(spec, "uncertain: applies to class columns, not to a labels_column of names")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _fail(spec, f"seed: {seed!r} is not an integer")
    val, test = _fractions(spec, data)
    if "split" in data and "fractions" in data:
        raise _fail(spec, "give split (a column) or fractions (a made split), not both")
    return Release(
        data.get("name", "csv"), {data["labels"]: None if "split" in data else "train"}, classes,
        data.get("id", data["path"]), data["patient"], path_col=data["path"], study_col=data.get("study"),
        view_col=data.get("view"), split_col=data.get("split"), labels_column=data.get("labels_column"),
        multi_label=data.get("multi_label", True), uncertain=data.get("uncertain"),
        val_fraction=0.0 if "split" in data else val, test_fraction=0.0 if "split" in data else test,
        split_seed=seed, key_from_path="id" not in data, spec=str(spec), strict_columns=False)
