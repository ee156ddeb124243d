"""--loss-param NAME=VALUE: checked against what the method's loss takes, used, recorded, refused on resume."""
import json

import numpy as np
import pytest

from shards.errors import UsageError
from train.__main__ import main
from train.config import FitConfig
from train.loop.fit import fit
from train.methods.registry import METHODS, method_params
from train.methods.weighting import class_weights
from train.rundir.resume import ResumeRefused

from conftest import tiny_fit, tiny_flags


def test_a_given_parameter_overrides_the_methods_own_and_the_weighting_takes_beta():
    assert method_params(METHODS["focal"], {"gamma": 3.0}) == ({"gamma": 3.0}, {})
    assert method_params(METHODS["ldam"], {"max_m": 0.3}) == ({"max_m": 0.3, "s": 30.0}, {})
    assert method_params(METHODS["cb-ce"], {"beta": 0.999}) == ({}, {"beta": 0.999})
    assert method_params(METHODS["ce"], {}) == ({}, {})


def test_a_name_the_loss_does_not_take_is_one_line_naming_the_valid_ones():
    with pytest.raises(UsageError, match=r"--loss-param gama: the focal method's loss \(focal\) takes gamma$"):
        method_params(METHODS["focal"], {"gama": 3.0})
    with pytest.raises(UsageError, match="takes none"):
        method_params(METHODS["ce"], {"gamma": 3.0})
    with pytest.raises(UsageError, match="NAME=VALUE"):
        FitConfig(loss_param=["gamma"])
    with pytest.raises(UsageError, match="not a number"):
        FitConfig(loss_param=["gamma=high"])


def test_the_flag_repeats_and_a_config_file_mapping_works(tmp_path):
    from train.__main__ import parse
    from train.config import from_args

    cfg = from_args(parse(["fit", "--loss-param", "gamma_neg=4", "--loss-param", "clip=0.05"]))
    assert cfg.loss_param == {"gamma_neg": 4.0, "clip": 0.05}
    (tmp_path / "r.yaml").write_text("loss_param: {gamma: 3}\n")
    assert from_args(parse(["fit", "--config", str(tmp_path / "r.yaml")])).loss_param == {"gamma": 3.0}


def test_a_run_uses_records_and_refuses_to_resume_with_a_changed_parameter(shards_dir, tmp_path):
    run = tmp_path / "cb"
    fit(tiny_fit(shards_dir, run, "cb-focal", epochs=1, loss_param={"gamma": 3.0, "beta": 0.99}))
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["loss_param"] == {"gamma": 3.0, "beta": 0.99}
    with pytest.raises(ResumeRefused, match="loss_param"):
        fit(tiny_fit(shards_dir, run, "cb-focal", epochs=1, loss_param={"gamma": 2.0, "beta": 0.99}))
    assert not np.allclose(class_weights("cb", [100, 10, 1], beta=0.99), class_weights("cb", [100, 10, 1]))


def test_the_trainer_builds_the_loss_with_the_given_values(shards_dir, tmp_path, monkeypatch):
    import train.loop.trainer as trainer

    seen = {}
    real = trainer.make_loss

    def spy(name, counts, weights=None, **params):
        seen.update(params)
        return real(name, counts, weights, **params)

    monkeypatch.setattr(trainer, "make_loss", spy)
    fit(tiny_fit(shards_dir, tmp_path / "ldam", "ldam", epochs=1, loss_param={"s": 10.0, "max_m": 0.3}))
    assert seen["s"] == 10.0 and seen["max_m"] == 0.3
    from train import load_model
    assert load_model(tmp_path / "ldam").model.head.scale == 10.0  # the cosine head carries the same s


def test_an_unknown_parameter_on_the_command_line_is_exit_2_and_no_run_dir(shards_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--shards", str(shards_dir), "--out", str(out), *tiny_flags(),
                 "--method", "focal", "--loss-param", "beta=0.9"]) == 2
    assert "--loss-param beta: the focal method's loss (focal) takes gamma" in capsys.readouterr().err
    assert not out.exists()
