"""run_isolated / emit_result: a measurement in a fresh process, its result read back from stdout."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from papers_common import emit_result, run_isolated

CHILD = textwrap.dedent(
    """
    import json, sys
    from papers_common import emit_result
    payload = json.loads(sys.argv[sys.argv.index("--worker") + 1])
    print("noise before the result")
    print("child progress", file=sys.stderr, flush=True)
    if payload["fail"]:
        sys.exit(3)
    emit_result({"doubled": 2 * payload["x"], "pid_differs": True})
    """
)


def test_the_child_result_comes_back(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    assert run_isolated(script, {"x": 21, "fail": False}, "doubling") == {"doubled": 42, "pid_differs": True}
    err = capfd.readouterr().err
    assert "measuring doubling ..." in err
    assert "child progress" in err  # the child's stderr (its progress records) passes straight through


def test_a_failing_child_names_the_measurement(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    with pytest.raises(SystemExit, match="doubling: the measuring process failed \\(exit code 3\\)"):
        run_isolated(script, {"x": 1, "fail": True}, "doubling")


def test_emit_result_prints_one_prefixed_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit_result({"a": 1})
    assert capsys.readouterr().out == 'RESULT {"a": 1}\n'
    assert sys.executable  # the child runs under the same interpreter
