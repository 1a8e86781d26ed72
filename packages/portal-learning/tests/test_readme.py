"""The README's Python quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_the_quickstart_runs(capsys):
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)  # the README's own code
    assert "OOD-test ROC-AUC" in capsys.readouterr().out
    assert set(namespace["metrics"]) == {"ood_train", "iid_dev", "ood_dev", "ood_test"}  # type: ignore[arg-type]
