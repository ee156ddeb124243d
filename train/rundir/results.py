"""What a finished run leaves: predictions per split and summary.json.

Single-label: predictions for val, balanced-test and test, and the paper's numbers. Multi-label: predictions
for val and test (no balanced-test subset there), and the CXR-LT numbers (eval.summary.multilabel_metrics).
"""
from eval.metrics import balanced_accuracy
from eval.predictions import write_predictions
from eval.summary import multilabel_metrics, paper_metrics

from .files import write_json


def write_results(ctx, meta: dict, preds: dict, extra: dict) -> dict:
    """predictions/{val,[balanced-test,]test}.parquet and summary.json (written last: the run is done) of the
    run ``ctx`` (``train.context.RunContext``).

    ``preds[view]`` is (rows of the view, labels, logits); labels are multi-hot (N, C) on a multi-label
    shards dir."""
    ss, run, multi = ctx.ss, ctx.run, ctx.task.name == "multi-label"
    out = {}
    for view in ("val", "test"):
        rows, labels, logits = preds[view]
        view_rows = ss.view(view).iloc[rows]
        keys, patients = view_rows["key"].to_numpy(), view_rows["patient_id"].to_numpy()
        write_predictions(run / "predictions" / f"{view}.parquet", keys, patients, labels, logits, ss.class_names)
        if view == "test" and not multi:
            bt = view_rows["balanced_test"].to_numpy()
            write_predictions(run / "predictions" / "balanced-test.parquet", keys[bt], patients[bt],
                              labels[bt], logits[bt], ss.class_names)
            out["bt"] = (labels[bt], logits[bt])
        out[view] = (labels, logits)
    if multi:
        summary = multilabel_metrics(*out["val"], *out["test"], ss.groups, ss.class_names)
    else:
        summary = paper_metrics(*out["bt"], *out["test"], ss.groups, ss.class_names)
        summary["val"] = {"bacc": balanced_accuracy(out["val"][0], out["val"][1].argmax(1), ss.num_classes)}
    summary.update(extra, method=meta["config"]["method"], config=meta["config"], index_sha256=meta["index_sha256"])
    write_json(run / "summary.json", summary)
    return summary
