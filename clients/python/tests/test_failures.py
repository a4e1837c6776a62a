"""The client's failure table against the one list of error codes both runtimes
answer with (supabase/functions/_shared/error-codes.ts): a code the client treats
as a verdict on its events is one the list marks so, and every code it names is
in the list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Tuple

from zoe_local import _failures as failures
from zoe_local.errors import ServiceError

CODES_TS = Path(__file__).resolve().parents[3] / "supabase" / "functions" / "_shared" / "error-codes.ts"
_ENTRY = re.compile(r"^  ([a-z_]+): code\((\d{3}),", re.M)


def shared_codes() -> Dict[str, Tuple[int, bool]]:
    """code -> (status, verdict), read from the TypeScript list."""
    text = CODES_TS.read_text(encoding="utf-8")
    entries = list(_ENTRY.finditer(text))
    out: Dict[str, Tuple[int, bool]] = {}
    for i, m in enumerate(entries):
        end = entries[i + 1].start() if i + 1 < len(entries) else len(text)
        out[m.group(1)] = (int(m.group(2)), "verdict: true" in text[m.start() : end])
    return out


def test_the_shared_list_is_read() -> None:
    codes = shared_codes()
    assert codes["invalid_request"] == (400, True)
    assert codes["backlog_full"] == (503, False)
    assert len(codes) >= 25


def test_verdict_codes_are_the_lists_verdict_codes() -> None:
    verdicts = {c for c, (_, verdict) in shared_codes().items() if verdict}
    assert failures._EVENT_CODES == verdicts


def test_is_verdict_follows_the_list_for_every_code() -> None:
    for code, (status, verdict) in shared_codes().items():
        err = ServiceError(status, code, "from the test")
        assert failures.is_verdict(err) == (verdict or status == 413), code
