"""`pip install ./clients/python` works offline in a fresh venv, and the package
runs on the oldest Python it supports."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import CLIENT_DIR, Service

sys.path.insert(0, str(CLIENT_DIR / "build_backend"))
import zoe_local_build  # noqa: E402

DELIVER = """
import sys, zoe_local
with zoe_local.Client(sys.argv[1], mode="live", spool_path=sys.argv[2]) as zoe:
    for i in range(50):
        zoe.emit("T", "S", f"{sys.argv[3]} {i}")
    assert zoe.flush(20) == 0, zoe.stats()
print(zoe_local.__file__)
"""


def test_pip_installs_the_package_offline_into_a_fresh_venv(tmp_path: Path, service: Service):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # --no-index: no package index at all; the in-tree backend needs nothing.
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-index", str(CLIENT_DIR)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run(
        [python, "-c", DELIVER, service.url, str(tmp_path / "spool.db"), "venv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert str(venv) in run.stdout  # imported from the venv, not from src/
    assert [e["body"] for e in service.stored()] == [f"venv {i}" for i in range(50)]


def test_the_wheel_holds_the_typed_package_and_metadata_matching_pyproject(tmp_path: Path):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
    assert (project["name"], project["version"], project["description"], project["requires-python"]) == (
        zoe_local_build.NAME,
        zoe_local_build.VERSION,
        zoe_local_build.SUMMARY,
        zoe_local_build.REQUIRES_PYTHON,
    )
    assert project["classifiers"] == zoe_local_build.CLASSIFIERS and project["dependencies"] == []
    import zoe_local

    assert zoe_local.__version__ == zoe_local_build.VERSION
    wheel = tmp_path / zoe_local_build.build_wheel(str(tmp_path))
    names = zipfile.ZipFile(wheel).namelist()
    assert "zoe_local/py.typed" in names and "zoe_local/client.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    sdist = zoe_local_build.build_sdist(str(tmp_path))
    assert sdist == f"zoe_local-{zoe_local_build.VERSION}.tar.gz"


def oldest_python() -> str:
    for candidate in [
        shutil.which("python3.9"),
        *glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")),
    ]:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"], capture_output=True, text=True
        )
        if probe.stdout.strip() == "True":  # a pyenv shim without the version active is no interpreter
            return candidate
    pytest.skip("no Python 3.9 on this machine")


def test_the_package_delivers_under_python_3_9(tmp_path: Path, service: Service):
    python = oldest_python()
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR / "src")}
    run = subprocess.run(
        [python, "-c", DELIVER, service.url, str(tmp_path / "spool.db"), "py39"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert [e["body"] for e in service.stored()] == [f"py39 {i}" for i in range(50)]
