from ingest.stats import describe
from shards.reader import open_shards


def test_stats_counts_groups_and_imbalance_ratio(shards_dir):
    ss = open_shards(shards_dir)
    text = describe(ss, head_above=50, tail_below=5)
    counts = ss.train_counts()
    assert f"imbalance ratio (largest / smallest train class): {counts.max() / counts.min():.1f}" in text
    by_count = ss.count_groups(50, 5)
    sizes = ", ".join(f"{g} {by_count.count(g)}" for g in ("head", "medium", "tail"))
    assert f"groups by count (>50, 5-50, <5): {sizes}" in text
    assert "groups manifest (published training counts): head 7, medium 9, tail 4" in text
    nf = ss.class_names.index("No Finding")
    line = next(line for line in text.splitlines() if line.startswith("No Finding"))
    assert line.split()[2] == str(counts[nf])


def test_multi_label_stats_count_positives_per_class_and_leave_out_balanced_test(ml_shards_dir):
    ss = open_shards(ml_shards_dir)
    text = describe(ss, head_above=50, tail_below=5)
    assert "(multi-label: positives per class)" in text and "balanced-test" not in text
    rows = {line.split("  ")[0].strip(): line.split() for line in text.splitlines()[3:23]}
    for name, positives in zip(ss.class_names, ss.train_counts()):
        assert rows[name][len(name.split())] == str(positives)
    images = next(line for line in text.splitlines() if line.startswith("images"))
    assert images.split()[1:] == [str(len(ss.view(v))) for v in ("train", "val", "test")]
