"""The ``cxr-lt`` console command: dispatch, --version, and running from a folder that holds a train.py."""
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cxr_lt
from conftest import ROOT
from cxr_lt.cli import main

USER_SCRIPTS = {"train.py": "raise SystemExit('the user script ran')\n",
                "eval.py": "raise SystemExit('the user script ran')\n"}


def console_script(bin_dir: Path) -> Path:
    """The launcher pip writes for ``[project.scripts]`` (its folder, not the working one, leads sys.path)."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["cxr-lt"]
    module, func = target.split(":")
    bin_dir.mkdir()
    path = bin_dir / "cxr-lt"
    path.write_text(f"import sys\nfrom {module} import {func}\nsys.exit({func}())\n")
    return path


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    for name, text in USER_SCRIPTS.items():
        (folder / name).write_text(text)
    return folder


def project_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, not another install of the project


def test_version_is_pyprojects(capsys):
    want = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cxr_lt.__version__ == want
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cxr-lt {want}"


def test_subcommands_dispatch_to_the_packages_mains_with_the_commands_name(capsys):
    assert main(["train", "methods"]) == 0
    assert "rw-ldam-drw" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert capsys.readouterr().out.startswith("usage: cxr-lt eval")
    with pytest.raises(SystemExit):
        main(["ingest", "build-shards", "--help"])
    assert "usage: cxr-lt ingest build-shards" in capsys.readouterr().out


def test_an_unknown_command_is_one_error_line_and_exit_2(capsys):
    assert main(["fit"]) == 2
    err = capsys.readouterr().err
    assert "error: 'fit' is not a command; one of ingest, train, eval" in err and "Traceback" not in err


def test_console_script_runs_the_project_from_a_folder_with_a_train_py(tmp_path):
    folder = user_folder(tmp_path)
    script = console_script(tmp_path / "bin")
    for argv, want in ((["train", "methods"], "rw-ldam-drw"), (["eval", "--help"], "usage: cxr-lt eval")):
        done = subprocess.run([sys.executable, str(script), *argv], cwd=folder, env=project_env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert want in done.stdout and "user script" not in done.stdout + done.stderr
    # what the console command avoids: python -m train there runs the user's script
    done = subprocess.run([sys.executable, "-m", "train", "methods"], cwd=folder, env=project_env(),
                          capture_output=True, text=True, timeout=120)
    assert "the user script ran" in done.stderr


def test_python_m_cxr_lt_also_runs_the_project_from_that_folder(tmp_path):
    folder = user_folder(tmp_path)
    done = subprocess.run([sys.executable, "-m", "cxr_lt", "train", "methods"], cwd=folder, env=project_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rw-ldam-drw" in done.stdout


def test_the_installed_cxr_lt_executable(tmp_path):
    exe = Path(sys.executable).with_name("cxr-lt")
    if not exe.is_file():
        pytest.skip(f"no {exe}: the project is not installed in this environment with its console command "
                    f"(pip install -e . or scripts/setup.sh)")
    done = subprocess.run([str(exe), "--version"], cwd=user_folder(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("cxr-lt "), done.stderr
