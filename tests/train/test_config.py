"""The run configuration: one check of every setting for flags, --config files and Python callers."""
import json

import pytest

from shards.errors import UsageError
from train.__main__ import parse, parser
from train.config import FitConfig, from_args

OUT_OF_RANGE = [("image_size", 0, "--image-size 0: must be >= 1"), ("image_size", -64, "--image-size -64"),
                ("batch_size", 0, "--batch-size 0"), ("epochs", 0, "--epochs 0: must be >= 1"),
                ("patience", 0, "--patience 0"), ("rrc_scale", 0.0, r"--rrc-scale 0.0: must be > 0"),
                ("rrc_scale", 1.5, r"--rrc-scale 1.5: must be <= 1"), ("mixup_alpha", 0.0, "--mixup-alpha 0.0"),
                ("workers", -1, "--workers -1: must be >= 0"), ("lr", 0.0, "--lr 0.0: must be > 0"),
                ("lr", float("nan"), "--lr nan"), ("checkpoint_minutes", -1.0, "--checkpoint-minutes -1.0"),
                ("drw_epoch", -1, "--drw-epoch -1"), ("method", "softmax", "--method 'softmax': not one of ce, "),
                ("precision", "fp8", "--precision 'fp8': not one of auto, fp16"), ("epochs", 2.5, "not an int"),
                ("epochs", True, "--epochs True: not an int"), ("hflip", "yes", "--hflip 'yes': not a bool")]


@pytest.mark.parametrize("name, value, message", OUT_OF_RANGE, ids=lambda x: str(x)[:20])
def test_a_setting_out_of_range_is_one_usage_error_naming_its_flag(name, value, message):
    with pytest.raises(UsageError, match=message):
        FitConfig(**{name: value})


def test_a_flag_out_of_range_is_refused_when_parsed():
    with pytest.raises(UsageError, match="--image-size 0: must be >= 1"):
        from_args(parse(["fit", "--shards", "s", "--out", "o", "--image-size", "0"]))


def test_an_int_where_a_float_goes_is_taken_as_that_float():
    assert FitConfig(lr=1, rrc_scale=1).lr == 1.0 and isinstance(FitConfig(lr=1).lr, float)


def test_a_runs_record_a_plain_mapping_and_yaml_give_the_same_config(tmp_path):
    want = FitConfig(shards="s", out="o", epochs=3, lr=1e-5, model="tiny", hflip=False)
    record, plain, yml = tmp_path / "config.json", tmp_path / "plain.json", tmp_path / "c.yaml"
    record.write_text(json.dumps({"config": want.to_dict(), "versions": {"torch": "2"}, "index_sha256": "x"}))
    plain.write_text(json.dumps({"shards": "s", "out": "o", "epochs": 3, "lr": 1e-5, "model": "tiny",
                                 "hflip": False}))
    yml.write_text("shards: s\nout: o\nepochs: 3\nlr: 1e-5   # YAML reads this as a string\nmodel: tiny\n"
                   "hflip: false\n")
    for path in (record, plain, yml):
        assert from_args(parse(["fit", "--config", str(path)])) == want, path


def test_flags_given_override_the_config_file_and_the_rest_comes_from_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("shards: s\nout: o\nepochs: 3\nlr: 0.01\n")
    cfg = from_args(parse(["fit", "--config", str(path), "--epochs", "5", "--out", "new"]))
    assert (cfg.epochs, cfg.lr, cfg.out, cfg.shards, cfg.image_size) == (5, 0.01, "new", "s", 256)


@pytest.mark.parametrize("text, message", [
    ('{"epoch": 3}', "unknown setting 'epoch'"), ('{"epochs": "three"}', "--epochs 'three': not an int"),
    ('{"epochs": 0}', "--epochs 0: must be >= 1"), ("[1, 2]", "not a mapping"), ("{", "not valid JSON")])
def test_a_config_file_with_an_unknown_or_bad_key_is_refused_naming_it(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        from_args(parse(["fit", "--config", str(path)]))


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(UsageError, match="--config .*nope.yaml: No such file"):
        from_args(parse(["fit", "--config", str(tmp_path / "nope.yaml")]))


@pytest.mark.parametrize("cmd", ["fit", "suite", "bench"])
def test_help_shows_every_default_and_a_help_line_for_every_flag(cmd, capsys):
    sub = next(a for a in parser()._actions if a.choices and cmd in a.choices).choices[cmd]
    for action in sub._actions:
        assert action.help, action.option_strings
    with pytest.raises(SystemExit):
        sub.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    lr = ("learning rate (the peak, with a schedule) (default: 0.0001)",) if cmd != "bench" else ()  # training-only
    for shown in ("--image-size IMAGE_SIZE pixels, square (the paper: 256, no crop) (default: 256)", *lr,
                  "(default: True)", "(default: auto)"):
        assert shown in text
    assert "--shards SHARDS shards dir (python -m ingest build-shards) (required" in text


def test_the_batch_size_help_says_it_is_per_rank_and_how_the_learning_rate_goes():
    from dataclasses import fields

    from train.config import FitConfig

    text = next(f for f in fields(FitConfig) if f.name == "batch_size").metadata["help"]
    assert "each process" in text and "N x this" in text and "--lr is not scaled" in text
    assert "over all GPUs" not in text
