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
