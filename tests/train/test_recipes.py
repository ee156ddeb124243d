"""recipes/*.yaml: each parses, the paper's is today's defaults, and each runs with a tiny override."""
import json

import pytest

from train.__main__ import main, parse
from train.config import FitConfig, from_args

from conftest import ROOT, tiny_flags

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
TINY = [*tiny_flags(epochs=1), "--drop-path", "0"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_parses_and_says_what_it_follows(recipe):
    cfg = from_args(parse(["fit", "--config", str(recipe)]))
    assert isinstance(cfg, FitConfig)
    assert recipe.read_text().startswith("#") and ("follows" in recipe.read_text() or recipe.stem == "paper")


def test_the_paper_recipe_is_todays_defaults():
    assert from_args(parse(["fit", "--config", str(ROOT / "recipes" / "paper.yaml")])) == FitConfig()


def test_the_multi_label_recipe_runs_with_a_tiny_override(ml_shards_dir, tmp_path):
    out = tmp_path / "asl"
    assert main(["fit", "--config", str(ROOT / "recipes" / "cxrlt-convnext-asl-512.yaml"),
                 "--shards", str(ml_shards_dir), "--out", str(out), *TINY]) == 0
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["loss_param"] == {"gamma_neg": 4.0, "gamma_pos": 1.0, "clip": 0.05}
    assert (cfg["optimizer"], cfg["schedule"], cfg["ema_decay"]) == ("adamw", "cosine", 0.999)


def test_the_suite_applies_the_single_label_recipe_to_every_method(shards_dir, tmp_path):
    out = tmp_path / "suite"
    assert main(["suite", "--config", str(ROOT / "recipes" / "nih-convnext-single-label.yaml"),
                 "--shards", str(shards_dir), "--out", str(out), "--methods", "ce,focal", *TINY]) == 0
    for method in ("ce", "focal"):
        cfg = json.loads(next(out.glob(f"{method}*/config.json")).read_text())["config"]
        assert (cfg["method"], cfg["optimizer"], cfg["weight_decay"]) == (method, "adamw", 0.05)
