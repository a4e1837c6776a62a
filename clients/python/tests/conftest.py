"""Fixtures: the real zoe-local service (``bun src/main.ts``, the command of
``bun start``) as a child process on a free port with a temp database, which
tests kill -9, restart on the same port, stop and continue."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
CLIENT_DIR = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"zoe-local listening on (http://[^\s\"]+)")


def service_command() -> List[str]:
    """What `bun start` runs (package.json), without the `bun run` wrapper
    process, so a signal reaches the service itself."""
    scripts = json.loads((REPO / "package.json").read_text())["scripts"]
    return shlex.split(scripts["start"])


class Service:
    def __init__(self, db_path: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.db_path = db_path
        self.env = dict(env or {})
        self.port = 0
        self.url = ""
        self.proc: Optional[subprocess.Popen] = None
        self.output: List[str] = []

    def start(self, env: Optional[Dict[str, str]] = None, timeout: float = 30.0) -> "Service":
        """Starts it (again on the same port once it had one); waits for the listening line."""
        if env is not None:
            self.env = dict(env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._start_once(deadline)
            except RuntimeError as error:
                # A just-killed process's port can take a moment to be free again.
                if "EADDRINUSE" not in str(error) and "in use" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _start_once(self, deadline: float) -> "Service":
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "ZOE_DB_PATH": str(self.db_path),
            "ZOE_LOG_LEVEL": "warn",
            **self.env,
        }
        proc = subprocess.Popen(
            service_command(),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        listening = threading.Event()
        lines: List[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                m = LISTENING.search(line)
                if m:
                    self.url = m.group(1)
                    listening.set()

        threading.Thread(target=pump, daemon=True).start()
        while not listening.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"zoe-local did not start (exit {proc.returncode}):\n{''.join(lines)}")
        self.proc = proc
        self.output = lines
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> Optional[int]:
        """Sends ``sig`` and waits for the exit (SIGKILL: no shutdown of any kind)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def range_starts(self, mode: str) -> List[int]:
        """The first seq of each seq range of ``mode`` (one per start of the store that stored events), ascending."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT start_seq FROM local_seq_ranges WHERE mode = ? ORDER BY start_seq", (mode,))
            return [r[0] for r in rows.fetchall()]
        finally:
            db.close()

    def stored(self, mode: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every event in the service's SQLite file, by mode and seq (read-only)."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            where, args = ("WHERE mode = ?", (mode,)) if mode else ("", ())
            rows = db.execute(f"SELECT * FROM local_events {where} ORDER BY mode, seq", args).fetchall()
            return [dict(r) for r in rows]
        finally:
            db.close()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: List[Service] = []

    def make(env: Optional[Dict[str, str]] = None, start: bool = True, name: str = "zoe") -> Service:
        svc = Service(tmp_path / f"{name}.db", env)
        started.append(svc)
        return svc.start() if start else svc

    yield make
    for svc in started:
        if svc.proc is not None:
            svc.resume() if svc.running else None
            svc.kill()


@pytest.fixture
def service(service_factory: Callable[..., Service]) -> Service:
    return service_factory()


@pytest.fixture
def spool(tmp_path: Path) -> str:
    return str(tmp_path / "spool.db")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_python(code: str, *args: str, env: Optional[Dict[str, str]] = None, **kwargs: Any) -> subprocess.Popen:
    """A child Python process with this package importable (a bot)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(CLIENT_DIR / "src"), **(env or {})},
        **kwargs,
    )


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Polls an observable condition in another thread or process (a stream, the store)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def assert_gapless_within_ranges(seqs: List[int], starts: List[int], what: str = "seqs") -> None:
    """Unique, ascending, and each seq the one after the seq before it or the start of a later range."""
    assert seqs == sorted(set(seqs)), f"{what} repeat or go back"
    for i, seq in enumerate(seqs):
        if i > 0 and seq == seqs[i - 1] + 1:
            continue
        assert seq in starts, f"{what}: {seqs[i - 1] if i else None} is followed by {seq}, which starts no range"
