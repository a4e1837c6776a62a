"""A PEP 517 / PEP 660 build backend for zoe-local, standard library only.

Why not setuptools: pip builds in an isolated environment and would fetch the
backend from an index first, which fails offline (the bot box, CI) and in a
fresh Python 3.12+ venv (no setuptools). This backend needs nothing, so
``pip install ./clients/python`` works anywhere pip does. It builds a pure
``py3-none-any`` wheel of src/zoe_local, an sdist, and editable wheels.

The metadata lives here (a TOML parser is only in the standard library from
3.11); tests/test_packaging.py checks it matches [project] in pyproject.toml.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile
from typing import Any, Dict, List, Optional, Tuple

NAME = "zoe-local"
DIST = "zoe_local"
VERSION = "0.1.0"
SUMMARY = "Python client for zoe-local: non-blocking emit, durable spool, batching, retries, dead letters, SSE follow."
REQUIRES_PYTHON = ">=3.9"
CLASSIFIERS = ["Programming Language :: Python :: 3", "Typing :: Typed"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "src", DIST)
TAG = "py3-none-any"
# Zip entries get a fixed time, so one source tree always builds the same wheel.
EPOCH = (1980, 1, 1, 0, 0, 0)


def metadata() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {VERSION}",
        f"Summary: {SUMMARY}",
        f"Requires-Python: {REQUIRES_PYTHON}",
        *(f"Classifier: {c}" for c in CLASSIFIERS),
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(lines) + "\n\n" + readme


def _wheel_file() -> str:
    return f"Wheel-Version: 1.0\nGenerator: zoe_local_build {VERSION}\nRoot-Is-Purelib: true\nTag: {TAG}\n"


def _package_files() -> List[Tuple[str, str]]:
    """(path in the archive, path on disk) of the package, sorted."""
    out = []
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            out.append((os.path.relpath(path, os.path.join(ROOT, "src")).replace(os.sep, "/"), path))
    return out


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _write_wheel(directory: str, files: List[Tuple[str, bytes]]) -> str:
    dist_info = f"{DIST}-{VERSION}.dist-info"
    files = files + [
        (f"{dist_info}/METADATA", metadata().encode("utf-8")),
        (f"{dist_info}/WHEEL", _wheel_file().encode()),
        (f"{dist_info}/top_level.txt", f"{DIST}\n".encode()),
    ]
    record = [_record_line(name, data) for name, data in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    filename = f"{DIST}-{VERSION}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return filename


# -- PEP 517 hooks ------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    dist_info = f"{DIST}-{VERSION}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for name, text in (("METADATA", metadata()), ("WHEEL", _wheel_file()), ("top_level.txt", f"{DIST}\n")):
        with open(os.path.join(metadata_directory, dist_info, name), "w", encoding="utf-8") as f:
            f.write(text)
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(
    wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None
) -> str:
    files = []
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            files.append((arcname, f.read()))
    return _write_wheel(wheel_directory, files)


def build_editable(
    wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None
) -> str:
    """A wheel holding only a .pth file that puts src/ on sys.path (PEP 660)."""
    pth = (os.path.join(ROOT, "src") + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [(f"__editable__.{DIST}-{VERSION}.pth", pth)])


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    base = f"{DIST}-{VERSION}"
    filename = f"{base}.tar.gz"
    members: List[Tuple[str, bytes]] = [("PKG-INFO", metadata().encode("utf-8"))]
    for rel in ("pyproject.toml", "README.md", "build_backend/zoe_local_build.py"):
        with open(os.path.join(ROOT, rel), "rb") as f:
            members.append((rel, f.read()))
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            members.append((f"src/{arcname}", f.read()))
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in members:
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 315532800  # 1980-01-01, as in the wheel
            tar.addfile(info, io.BytesIO(data))
    return filename
