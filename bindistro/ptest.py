"""ptest-runner's console output, read as OE's ptest-runner 2 writes it:

    START: ptest-runner
    2024-09-17T12:44
    BEGIN: /usr/lib/mbedtls/ptest
    PASS: test_suite_aes.cbc
    FAIL: test_suite_x509parse
    SKIP: test_suite_pkcs11
    DURATION: 556
    END: /usr/lib/mbedtls/ptest
    2024-09-17T12:53
    STOP: ptest-runner
    TOTAL: 1 FAIL: 0

A result line belongs to the ptest between BEGIN and END (named after its directory,
/usr/lib/<name>/ptest); a ptest killed by ptest-runner's timeout says `TIMEOUT: <dir>` and counts
as a failure of the whole ptest, and so does the runner's `ERROR: Exit status is N` or `ERROR:
Exited from signal …` for its run-ptest. Other lines are the tests' own output.
"""
from __future__ import annotations

import re

RESULT = re.compile(r"^(PASS|FAIL|SKIP|XPASS|XFAIL):\s*(\S.*?)\s*$")
STATUS = {"PASS": "PASS", "XFAIL": "PASS", "FAIL": "FAIL", "XPASS": "FAIL", "SKIP": "SKIP"}


def suite_name(d: str) -> str:
    parts = d.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 and parts[-1] == "ptest" else parts[-1]


def parse(text: str) -> dict[str, str] | None:
    """'<ptest>/<test>' -> PASS | FAIL | SKIP; None when the text holds no ptest-runner run."""
    if "START: ptest-runner" not in text:
        return None
    out: dict[str, str] = {}
    suite = None
    for line in text.replace("\r", "").splitlines():
        line = line.strip()
        if line.startswith("BEGIN: "):
            suite = suite_name(line[7:])
        elif line.startswith("END: "):
            suite = None
        elif line.startswith("TIMEOUT: "):
            out[f"{suite_name(line[9:])}/(timeout)"] = "FAIL"
        elif suite and line.startswith("ERROR: "):
            # the runner's own word: "Exit status is N", "Exited from signal X (N)"
            out[f"{suite}/(run-ptest)"] = "FAIL"
        elif suite and (m := RESULT.match(line)):
            out[f"{suite}/{m.group(2)}"] = STATUS[m.group(1)]
    return out
