"""JUnit XML of a contract test run: one testcase per check, failures with threshold and measured value."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from governance.testing.model import (
    NO_FAILING_ROWS,
    CheckOutcome,
    ContractCheck,
    ContractTestRun,
    FailingRows,
    IsNull,
    NotRun,
    RowCount,
    Threshold,
)
from governance.testing.render import render_json, render_junit, render_text


def _check(check_id: str, severity: str = "error", threshold: Threshold = NO_FAILING_ROWS) -> ContractCheck:
    return ContractCheck(
        check_id,
        "required",
        "cpf",
        FailingRows("cpf", IsNull()),
        threshold,
        severity,  # type: ignore[arg-type]
        "completeness",
        "schema",
    )


def _run() -> ContractTestRun:
    outcomes = (
        CheckOutcome(_check("users.cpf.required"), "failed", 3.0, "measured 3, expected = 0 rows", ("a1", "b2", "c3")),
        CheckOutcome(_check("users.rows", threshold=Threshold("mustBeGreaterThan", 0)), "passed", 10.0),
        CheckOutcome(
            _check("users.fresh", "warning", Threshold("mustBeLessOrEqualTo", 900, "seconds")),
            "warning",
            1200.0,
            "measured 1200, expected <= 900 s",
        ),
        CheckOutcome(
            ContractCheck(
                "gx",
                "custom",
                None,
                NotRun("custom engine"),
                NO_FAILING_ROWS,
                "error",
                "validity",
                "quality",
                skip_reason="not executable here",
            ),
            "skipped",
            reason="not executable here",
        ),
        CheckOutcome(
            ContractCheck("bad_sql", "sql", None, RowCount(), NO_FAILING_ROWS, "error", "validity", "quality"),
            "error",
            reason="ParserException: syntax error",
        ),
    )
    return ContractTestRun(
        "customers/users",
        "1.2.0",
        "local",
        "/lake/users",
        "run-1",
        "2026-11-26T10:00:00+00:00",
        "2026-11-26T10:00:01+00:00",
        1.25,
        10,
        outcomes,
        0.7,
        0.9,
        1,
    )


def test_one_testcase_per_check_with_failure_details() -> None:
    root = ET.fromstring(render_junit(_run()))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "1",
        "1",
        "1",
    )
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"users.cpf.required", "users.rows", "users.fresh", "gx", "bad_sql"}
    failure = cases["users.cpf.required"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert "expected = 0 rows" in message and "measured 3 rows" in message and "a1, b2, c3" in message
    assert cases["users.rows"].find("failure") is None and len(cases["users.rows"]) == 0
    assert cases["users.fresh"].find("failure") is None  # a warning does not fail CI
    out = cases["users.fresh"].find("system-out")
    assert out is not None and "expected <= 900 s, measured 1200 s" in (out.text or "")
    assert cases["gx"].find("skipped") is not None
    error = cases["bad_sql"].find("error")
    assert error is not None and "syntax error" in (error.get("message") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["server"] == "local" and props["rows"] == "10"


def test_text_and_json_render_the_same_run() -> None:
    run = _run()
    text = render_text(run)
    assert "FAIL  users.cpf.required" in text and "failing keys: a1, b2, c3" in text
    assert "users.rows" not in text  # passed checks only with --verbose
    assert "users.rows" in render_text(run, verbose=True)
    assert text.splitlines()[-1].startswith("FAILED")
    assert '"validity": 0.7' in render_json(run) and not run.ok
