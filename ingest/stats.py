"""stats: per-split, per-class counts, head/medium/tail groups and the imbalance ratio, as text."""
import numpy as np

from shards.index import label_counts
from shards.reader import VIEWS, ShardSet


def describe(ss: ShardSet, head_above: int, tail_below: int) -> str:
    """Multi-label shards count each class's positives (an image in several classes) and have no balanced-test."""
    views = [v for v in VIEWS if not (ss.multi_label and v == "balanced-test")]
    counts = {v: label_counts(ss.view(v), ss.num_classes) for v in views}
    by_count = ss.count_groups(head_above, tail_below)
    width = max(len(c) for c in ss.class_names)
    head = f"{'class':<{width}}  " + "  ".join(f"{v:>13}" for v in views) + "  group(count)  group(manifest)"
    task = "multi-label: positives per class" if ss.multi_label else "single-label"
    lines = [f"{ss.manifest['dataset']}: {len(ss.index)} images, {ss.num_classes} classes ({task}), "
             f"{ss.manifest['image']['size']} px {ss.manifest['image']['format']}", head, "-" * len(head)]
    order = np.argsort(-counts["train"], kind="stable")
    for c in order:
        lines.append(f"{ss.class_names[c]:<{width}}  " + "  ".join(f"{counts[v][c]:>13}" for v in views)
                     + f"  {by_count[c]:>12}  {ss.groups[c]:>15}")
    lines.append(f"{'images':<{width}}  " + "  ".join(f"{len(ss.view(v)):>13}" for v in views))
    for rule, groups in ((f"by count (>{head_above}, {tail_below}-{head_above}, <{tail_below})", by_count),
                         (f"manifest ({ss.manifest.get('group_rule', 'rule not recorded')})", ss.groups)):
        sizes = ", ".join(f"{g} {groups.count(g)}" for g in ("head", "medium", "tail"))
        lines.append(f"groups {rule}: {sizes}")
    train = counts["train"]
    ratio = train.max() / train[train > 0].min() if (train > 0).any() else float("nan")
    lines.append(f"imbalance ratio (largest / smallest train class): {ratio:.1f}")
    return "\n".join(lines)
