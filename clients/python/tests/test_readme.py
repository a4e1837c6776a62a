"""The README examples run as written (with the test service's URL and a temp spool)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import CLIENT_DIR, REPO, Service, run_python

ROOT_README = (REPO / "README.md").read_text()
HTTP_API_DOC = (REPO / "docs" / "http-api.md").read_text()
PACKAGE_README = (CLIENT_DIR / "README.md").read_text()


def python_block(text: str, after: str) -> str:
    at = text.index(after)
    m = re.compile(r"```python\n(.*?)```", re.S).search(text, at)
    assert m, f"no python block after {after!r}"
    return m.group(1)


def run_example(code: str, service: Service, tmp_path: Path) -> str:
    code = code.replace("http://127.0.0.1:8765", service.url)
    code = code.replace('"/var/lib/bot/zoe-spool.db"', '"zoe-spool.db"')
    child = run_python(code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return out


def test_the_first_screen_example_delivers_the_fill_and_the_state(service: Service, tmp_path: Path):
    out = run_example(python_block(ROOT_README, "From the bot (Python 3.9+"), service, tmp_path)
    assert out.strip() == "0 2"  # the fill and the state snapshot
    [fill] = service.stored()
    assert (fill["subtype"], fill["symbol"], fill["body"]) == ("BUY_FILLED", "AAPL", "Bought 10 AAPL @ 187.50")


def test_the_posting_example_stores_the_fill_under_its_key(service: Service, tmp_path: Path):
    out = run_example(python_block(HTTP_API_DOC, "Python: use the client package"), service, tmp_path)
    assert "'idempotency_key': 'order-4711-fill'" in out
    assert [e["idempotency_key"] for e in service.stored()] == ["order-4711-fill"]


def test_the_package_readme_quick_start_runs(service: Service, tmp_path: Path):
    out = run_example(python_block(PACKAGE_README, "pip install ./clients/python"), service, tmp_path)
    assert "ClientStats(" in out
    assert [e["subtype"] for e in service.stored()] == ["BUY_FILLED", "PRICE"]


def test_the_package_readme_asyncio_example_runs(service: Service, tmp_path: Path):
    out = run_example(python_block(PACKAGE_README, "## asyncio"), service, tmp_path)
    assert out.strip().splitlines()[-1] == "0"
    assert [e["subtype"] for e in service.stored()] == ["STARTED"]


def test_the_package_readme_settings_example_runs(service: Service, tmp_path: Path):
    run_example(python_block(PACKAGE_README, "## Options"), service, tmp_path)
    assert (tmp_path / "paper-spool.db").exists()


def test_the_package_readme_api_reference_names_exactly_the_public_api():
    import zoe_local

    section = PACKAGE_README.split("## API reference", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)[`(]", section))
    exported = set(zoe_local.__all__)
    assert exported - named == set()
    # Every class or constant it names is exported (or a builtin it derives from).
    builtins = {"ValueError", "RuntimeError", "ConnectionError", "Literal"}
    assert {n for n in named if n[0].isupper()} - exported - builtins == set()
