"""Importing papers_common stays cheap: heavy libraries load only when a function needs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import papers_common

HEAVY = ("torch", "matplotlib", "tqdm", "jsonschema")


def loaded_after(code: str) -> list[str]:
    """The heavy modules present in ``sys.modules`` of a fresh interpreter after running ``code``."""
    script = (
        f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_papers_common_loads_no_heavy_library() -> None:
    assert loaded_after("import papers_common") == []


def test_light_attributes_load_no_heavy_library() -> None:
    names = [
        "claim", "App", "RunArgs", "option", "read_config_file", "Results", "Baseline", "Paper", "Bench",
        "InputError", "SchemaError", "UnsafeCheckpointError", "RunDir", "to_jsonable", "write_json",
        "atomic_open", "progress_enabled", "seed_everything", "pick_device", "save_checkpoint",
        "load_state_dict", "plot_lines", "plot_bars", "write_report", "__version__",
    ]  # fmt: skip
    code = "import papers_common\n" + "\n".join(f"papers_common.{name}" for name in names)
    assert loaded_after(code) == []


def test_the_probe_sees_heavy_imports() -> None:
    """The same check does report a heavy library once a function that needs it runs."""
    code = "import papers_common\ntry:\n    papers_common.validate({}, 'bench')\nexcept papers_common.SchemaError:\n    pass"
    assert loaded_after(code) == ["jsonschema"]


def test_every_export_resolves() -> None:
    for name in papers_common.__all__:
        assert getattr(papers_common, name) is not None, name
    assert set(dir(papers_common)) == set(papers_common.__all__)
    assert papers_common.claim is papers_common.report.claim
    assert isinstance(papers_common.__version__, str)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = papers_common.nope
