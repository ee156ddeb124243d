"""The model card an export writes beside the model (README.md): data, method, preprocessing, metrics, intended
use, limitations; the metrics with 95% intervals when the run has a report (``cxr-lt eval report RUN``)."""
from pathlib import Path

from eval.runs import is_number, read_json

SECTIONS = {"balanced_test": "balanced test set", "test": "test set", "val": "validation set"}


def _number(v) -> str | None:
    """A point estimate, or a report's {value, ci95}, as the card prints it; None for anything else (a damaged
    file's entry is left out of the card, not a traceback)."""
    if is_number(v):
        return f"{v:.4f}"
    ci = v.get("ci95") if isinstance(v, dict) else None
    if is_number(v.get("value") if isinstance(v, dict) else None) and isinstance(ci, list) and len(ci) == 2 \
            and all(map(is_number, ci)):
        return f"{v['value']:.4f} (95% CI {ci[0]:.4f} to {ci[1]:.4f})"
    return None


def metrics_lines(run: Path) -> list[str]:
    """One line per metric of the run: its report's numbers with intervals, else summary.json's points."""
    report = Path(run) / "report" / "summary.json"
    source = report if report.is_file() else Path(run) / "summary.json"
    if not source.is_file():
        return ["No metrics: the run has no summary.json."]
    summary = read_json(source)  # a JSON object, or a UsageError naming the file
    lines = []
    for section, words in SECTIONS.items():
        values = summary.get(section)
        for name, v in (values.items() if isinstance(values, dict) else ()):
            if (text := _number(v)) is not None:
                lines.append(f"- {words}, {name}: {text}")
    if source == report:
        b = summary["bootstrap"] if isinstance(summary.get("bootstrap"), dict) else {}
        lines.append(f"\nIntervals: {b.get('interval', '95% percentile')} bootstrap over {b.get('resamples')} "
                     f"resamples of {b.get('unit', 'image')}s (`cxr-lt eval report`).")
    else:
        lines.append("\nPoint estimates only: `cxr-lt eval report RUN` adds 95% bootstrap intervals, and a new "
                     "export then shows them here.")
    return lines


def model_card(meta: dict, run: Path, files: list[str]) -> str:
    """The card's markdown; ``meta`` is the export's metadata (``TrainedModel.metadata``)."""
    synthetic = meta.get("synthetic")
    arch, prep = meta["architecture"], meta["preprocessing"]
    origin = "real images" if synthetic is False else "images of unknown origin"
    data = (f"**Synthetic pixels**: trained on `{meta.get('dataset')}` labels with generated images; the numbers "
            f"below say nothing about chest X-rays." if synthetic else
            f"Trained on `{meta.get('dataset')}` ({origin}).")
    lines = [f"# Model card: {meta['method']} on {meta.get('dataset')}", "",
             f"A {arch.get('model')} ({arch.get('head')} head, {meta['channels']} input channel(s)) trained by "
             f"cxr-lt with the method `{meta['method']}`: {meta['task']}, {len(meta['class_names'])} classes. "
             f"Files: {', '.join(f'`{f}`' for f in files)}.", "",
             "## Data", "", data, f"Shards index sha256 `{meta.get('index_sha256')}`; code at git commit "
             f"`{meta.get('git_commit')}`.", "", "Classes (output order): " + ", ".join(meta["class_names"]) + ".", "",
             "## Input and output", "",
             f"Input: float32 (N, {meta['channels']}, {meta['image_size']}, {meta['image_size']}). Output: logits; "
             f"{'a sigmoid per class' if meta['task'] == 'multi-label' else 'softmax'} gives probabilities."
             + (" Each class's threshold tuned on val: `thresholds` in the metadata." if meta.get("thresholds")
                else ""), "",
             "## Preprocessing (the model's results depend on every step)", "",
             *[f"{i}. {step}" for i, step in enumerate(prep["steps"], 1)], "",
             "`preprocess.py` here does exactly these with numpy and Pillow only: `from preprocess import "
             "preprocess; x = preprocess('image.png')`. Another resize (OpenCV's, a bilinear one) or a missing JPEG "
             "step changes the probabilities.", "",
             "## Metrics", "", *metrics_lines(run), "",
             "## Intended use", "",
             "Research on long-tailed chest X-ray classification: comparing methods, reproducing the benchmark. "
             "Not a medical device; not for diagnosis or triage of patients.", "",
             "## Limitations", "",
             "- The labels were mined from radiology reports by text rules: they are noisy, and so is the model.",
             "- Tail classes have few training images: their numbers are the least certain (see the intervals).",
             "- Trained on one source's images: expect worse results on another hospital's scanners and "
             "populations.",
             "- Frontal views, one image at a time: no lateral views, no priors, no report text."]
    if synthetic:
        lines.append("- Synthetic pixels: a test of the software, not a model of disease.")
    return "\n".join(lines) + "\n"
