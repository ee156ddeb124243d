"""The figures are checked through their matplotlib artists: what each axis says, what the cells hold."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from sklearn.metrics import average_precision_score

from eval.figures import (GROUP_COLOURS, confusion, per_class_bars, pr_curves, pr_examples, suite_comparison,
                          training_curves)


def _legend_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [legend.get_window_extent(renderer) for legend in legends], renderer


def _legends_clear_of_the_data(fig, axes) -> bool:
    boxes, renderer = _legend_boxes(fig)
    return bool(boxes) and not any(b.overlaps(ax.get_window_extent(renderer)) for b in boxes for ax in axes)


@pytest.fixture
def ldam_history():
    # LDAM's loss (s = 30) is about ten times the validation cross-entropy
    return pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "train_loss": [20.1, 19.4, 18.9, 18.2, 17.9],
                         "val_loss": [2.99, 2.95, 2.93, 2.96, 2.97], "train_bacc": [0.05, 0.08, 0.1, 0.12, 0.13],
                         "val_bacc": [0.05, 0.07, 0.11, 0.09, 0.1], "train_auroc": [0.5, 0.55, 0.6, 0.62, 0.64],
                         "val_auroc": [0.5, 0.54, 0.58, 0.57, 0.58]})


def test_training_curves_put_the_methods_loss_and_the_val_cross_entropy_on_their_own_labelled_axes(ldam_history):
    fig = training_curves(ldam_history, 3, "ldam", "ldam on nih-cxr-lt - SYNTHETIC pixels")
    train, val, bacc, auroc = fig.axes
    assert train.get_ylabel() == "train loss (ldam, as optimised)" and val.get_ylabel() == "val cross-entropy"
    assert [line.get_ydata().tolist() for line in train.lines if len(line.get_xdata()) == 5] == \
        [ldam_history["train_loss"].tolist()]
    assert [line.get_ydata().tolist() for line in val.lines if len(line.get_xdata()) == 5] == \
        [ldam_history["val_loss"].tolist()]
    assert bacc.get_ylabel() == "balanced accuracy" and auroc.get_ylabel().startswith("macro AUROC")
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch"
        assert [line.get_xdata() for line in ax.lines if len(line.get_xdata()) == 2] == [[3, 3]]  # best epoch
        assert all(float(t).is_integer() for t in ax.get_xticks())
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "best epoch (3, by val bAcc)" in labels and "val (balanced-val)" in labels
    assert "SYNTHETIC" in fig._suptitle.get_text()
    assert _legends_clear_of_the_data(fig, fig.axes)
    plt.close(fig)


def test_the_confusion_matrix_is_row_normalised_in_the_given_order_with_empty_cells_blank_and_counts_on_demand():
    cm = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 5]])
    order = [2, 0, 1]  # c, a, b: by training frequency
    fig = confusion(cm, ["a", "b", "c"], "ce on nih-cxr-lt", order)
    ax, bar = fig.axes
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    shown = cm[np.ix_(order, order)]
    percent = 100 * shown / shown.sum(1, keepdims=True)
    assert cells == {(i, j): f"{percent[i, j]:.0f}" for i in range(3) for j in range(3) if shown[i, j]}
    assert (0, 1) in cells and (0, 2) not in cells and (1, 0) not in cells  # c->b, a->c empty: blank, no "0"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c (n=6)", "a (n=4)", "b (n=4)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "a", "b"]
    assert ax.get_ylabel() == "true class (n images)" and ax.get_xlabel() == "predicted class"
    assert bar.get_ylabel() == "fraction of the true class's images (row-normalised)"
    assert np.allclose(ax.images[0].get_array(), shown / shown.sum(1, keepdims=True))
    plt.close(fig)
    fig = confusion(cm, ["a", "b", "c"], "ce", counts=True)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in fig.axes[0].texts}
    assert cells == {(i, j): str(cm[i, j]) for i in range(3) for j in range(3) if cm[i, j]}
    plt.close(fig)


def test_per_class_ap_bars_mark_each_classs_prevalence_and_name_their_interval():
    groups = {"a": "head", "b": "tail"}
    ap = {"per_class": {"a": 0.5, "b": 0.25}, "per_class_ci95": {"a": [0.3, 0.7], "b": [0.0, 0.5]}}
    fig = per_class_bars(ap, {"a": 30, "b": 3}, groups, "bce", ylabel="AP", interval="95% bootstrap interval",
                         prevalence={"a": 0.3, "b": 0.02})
    ax = fig.axes[0]
    (marks,) = ax.collections[-1:]
    assert marks.get_offsets().tolist() == [[0, 0.3], [1, 0.02]]
    assert "prevalence (AP of a random ranking)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_per_class_bars_are_recall_with_their_intervals_and_n_and_a_legend_off_the_bars():
    groups = {"a": "head", "b": "tail", "c": "medium"}
    bt = {"per_class": {"a": 0.5, "b": 0.25, "c": float("nan")},
          "per_class_ci95": {"a": [0.3, 0.7], "b": [0.0, 0.5], "c": [float("nan")] * 2}}
    fig = per_class_bars(bt, {"a": 30, "b": 30, "c": 0}, groups, "ce on nih-cxr-lt")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "recall on balanced-test (per-class accuracy)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a (n=30)", "c (n=0)", "b (n=30)"]  # head, medium, tail
    assert [p.get_height() for p in ax.patches] == [0.5, 0.0, 0.25]
    (errors,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = errors.lines[2][0].get_segments()
    assert [s.round(6).tolist() for s in segments if len(s)] == [[[0, 0.3], [0, 0.7]], [[2, 0.0], [2, 0.5]]]
    assert "95% bootstrap interval" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert _legends_clear_of_the_data(fig, [ax])
    plt.close(fig)


def test_multilabel_training_curves_show_map_and_the_binary_cross_entropy_and_the_best_epoch_by_val_map():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "val_loss": [0.69, 0.6, 0.62],
                            "train_map": [0.2, 0.3, 0.4], "val_map": [0.25, 0.35, 0.3],
                            "train_auroc": [0.5, 0.6, 0.7], "val_auroc": [0.55, 0.6, 0.58]})
    fig = training_curves(history, 2, "asl", "asl on nih-cxr-lt-multilabel", "multi-label")
    train, val, map_, auroc = fig.axes
    assert val.get_ylabel() == "val binary cross-entropy" and map_.get_ylabel() == "mean average precision (mAP)"
    assert [line.get_ydata().tolist() for line in map_.lines if len(line.get_xdata()) == 3] == \
        [[0.2, 0.3, 0.4], [0.25, 0.35, 0.3]]
    assert auroc.get_ylabel() == "macro AUROC (per class)"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "best epoch (2, by val mAP)" in labels and "val" in labels
    plt.close(fig)


def test_the_pr_example_of_each_group_is_its_class_with_the_most_test_positives_and_an_empty_group_has_none():
    labels = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 1, 0, 0, 0]])
    # positives per class: 2, 3, 0, 3, 0; head: classes 0, 1; medium: 2, 3 (3 has positives); tail: 4 (none)
    assert pr_examples(labels, ["head", "head", "medium", "medium", "tail"]) == {"head": 1, "medium": 3}
    assert pr_examples(labels, ["head", "head", "tail", "tail", "tail"]) == {"head": 1, "tail": 3}
    assert pr_examples(labels[:, [0, 1]], ["head", "head"]) == {"head": 1}
    assert pr_examples(np.array([[1, 1]]), ["tail", "tail"]) == {"tail": 0}  # a tie: the first


def test_pr_curves_draw_one_step_curve_per_group_example_whose_area_is_its_average_precision():
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 4)) < [0.5, 0.3, 0.2, 0.0]).astype(int)
    scores = labels * 0.4 + rng.random((50, 4))
    groups = ["head", "medium", "tail", "tail"]
    examples = pr_examples(labels, groups)
    fig = pr_curves(labels, scores, examples, ["a", "b", "c", "d"], "asl on nih-cxr-lt-multilabel")
    ax = fig.axes[0]
    curves, baselines = ax.lines[::2], ax.lines[1::2]
    assert examples == {"head": 0, "medium": 1, "tail": 2} and len(curves) == len(baselines) == 3
    for line, (group, c) in zip(baselines, examples.items()):  # the prevalence: a random ranking's precision
        assert list(line.get_ydata()) == pytest.approx([labels[:, c].mean()] * 2) and line.get_linestyle() == ":"
        assert to_hex(line.get_color()) == GROUP_COLOURS[group]
    for line, (group, c) in zip(curves, examples.items()):
        recall, precision = line.get_xdata(), line.get_ydata()
        assert line.get_drawstyle() == "steps-pre" and to_hex(line.get_color()) == GROUP_COLOURS[group]
        assert np.sum(np.diff(recall) * precision[1:]) == pytest.approx(average_precision_score(labels[:, c],
                                                                                               scores[:, c]))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    tail_ap = average_precision_score(labels[:, 2], scores[:, 2])
    assert legend[4] == f"c (tail, AP {tail_ap:.3f}, n={labels[:, 2].sum()})"
    assert legend[5] == f"c: prevalence {labels[:, 2].mean():.3f} (random ranking)"
    assert ax.get_xlabel() == "recall" and ax.get_ylabel() == "precision"
    assert _legends_clear_of_the_data(fig, [ax])
    plt.close(fig)


def test_per_class_ap_bars_mark_a_class_without_positives_n_a_instead_of_a_bar_of_0():
    groups = {"a": "head", "b": "tail"}
    ap = {"per_class": {"a": 0.8, "b": float("nan")}, "per_class_ci95": {"a": [0.7, 0.9], "b": [float("nan")] * 2}}
    fig = per_class_bars(ap, {"a": 12, "b": 0}, groups, "bce on nih-cxr-lt-multilabel", ylabel="AP on test")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "AP on test"
    assert [(t.get_text(), t.get_position()[0]) for t in ax.texts] == [("n/a", 1)]
    plt.close(fig)


LONG_TITLE = ("distribution-balanced on nih-cxr-lt-multilabel, model resnet50, seed 0 (run distribution-balanced-seed0)"
              " - SYNTHETIC pixels, not comparable with published results")


def _inside(fig, artist) -> bool:
    fig.canvas.draw()
    box = artist.get_window_extent()
    return fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


def test_a_long_method_name_keeps_the_training_curves_title_in_the_figure_and_the_loss_label_by_its_panel():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "val_loss": [0.69, 0.6, 0.62],
                            "train_map": [0.2, 0.3, 0.4], "val_map": [0.25, 0.35, 0.3],
                            "train_auroc": [0.5, 0.6, 0.7], "val_auroc": [0.55, 0.6, 0.58]})
    fig = training_curves(history, 2, "distribution-balanced", LONG_TITLE, "multi-label")
    assert _inside(fig, fig._suptitle) and " ".join(fig._suptitle.get_text().split()) == LONG_TITLE
    train = fig.axes[0]
    label, panel = train.yaxis.label.get_window_extent(), train.get_window_extent()
    assert _inside(fig, train.yaxis.label) and panel.y0 <= label.y0 and label.y1 <= panel.y1
    assert " ".join(train.get_ylabel().split()) == "train loss (distribution-balanced, as optimised)"
    plt.close(fig)


def test_a_long_run_title_stays_inside_every_other_figure():
    labels = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    groups = {"a": "head", "b": "medium", "c": "tail"}
    bt = {"per_class": {"a": 0.5, "b": 0.25, "c": 0.75}, "per_class_ci95": {k: [0.1, 0.9] for k in groups}}
    table = pd.DataFrame({"method": ["distribution-balanced"], "map": [0.3], "map_head": [0.4], "map_medium": [0.3],
                          "map_tail": [0.2]})
    table.attrs["task"] = "multi-label"
    figs = [(pr_curves(labels, labels * 0.5, pr_examples(labels, list(groups.values())), list(groups), LONG_TITLE),
             lambda f: f.axes[0].title),
            (per_class_bars(bt, {k: 4 for k in groups}, groups, LONG_TITLE), lambda f: f.axes[0].title),
            (confusion(np.eye(3, dtype=int), list(groups), LONG_TITLE), lambda f: f.axes[0].title),
            (suite_comparison(table, LONG_TITLE), lambda f: f._suptitle)]
    for fig, title in figs:
        assert _inside(fig, title(fig)), title(fig).get_text()
        assert " ".join(title(fig).get_text().split()).startswith(LONG_TITLE)
        plt.close(fig)
