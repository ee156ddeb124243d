"""The Dockerfile installs what pyproject.toml declares, and nothing it does not."""
import re
import sys

from packaging.requirements import Requirement

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_every_package_of_the_project_is_copied_and_installed_with_dali():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = dockerfile()
    for pkg in project["tool"]["setuptools"]["packages"]:
        assert re.search(rf"^COPY {pkg} {pkg}$", text, re.M), pkg
    assert 'pip install ".[dali]"' in text  # every dependency and the dali extra, from pyproject itself
    assert "nvidia-dali-cuda130" in " ".join(project["project"]["optional-dependencies"]["dali"])


def test_packages_pinned_in_the_dockerfile_are_dependencies_whose_ranges_admit_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {Requirement(r).name: Requirement(r) for r in project["project"]["dependencies"]}
    pins = re.findall(r'"([A-Za-z0-9_.-]+)==([0-9][^"]*)"', dockerfile())
    assert pins, "the Dockerfile pins torch and torchvision"
    for name, version in pins:
        assert name in declared, f"{name} is installed by the Dockerfile but not declared in pyproject.toml"
        assert declared[name].specifier.contains(version), f"{name}=={version} outside {declared[name].specifier}"


def test_image_runs_as_a_non_root_user_with_python_m_entry_and_a_sigterm_stop():
    text = dockerfile()
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'ENTRYPOINT ["python", "-m"]' in text and "STOPSIGNAL SIGTERM" in text
    assert "BAKE_WEIGHTS" in text


def test_dockerignore_keeps_data_and_runs_out_of_the_context():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".venv", "demo", "runs", "**/*.tar", "**/*.pt"):
        assert pattern in ignored
