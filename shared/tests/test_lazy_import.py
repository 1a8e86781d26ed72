"""Importing paperkit stays cheap: heavy libraries load only when a function needs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import paperkit

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


def test_import_paperkit_loads_no_heavy_library() -> None:
    assert loaded_after("import paperkit") == []


def test_light_attributes_load_no_heavy_library() -> None:
    names = [
        "claim", "App", "RunArgs", "option", "read_config_file", "Results", "Baseline", "Paper", "Bench",
        "InputError", "SchemaError", "UnsafeCheckpointError", "RunDir", "to_jsonable", "write_json",
        "atomic_open", "progress_enabled", "seed_everything", "pick_device", "save_checkpoint",
        "load_state_dict", "plot_lines", "plot_bars", "write_report", "__version__",
    ]  # fmt: skip
    code = "import paperkit\n" + "\n".join(f"paperkit.{name}" for name in names)
    assert loaded_after(code) == []


def test_the_probe_sees_heavy_imports() -> None:
    """The same check does report a heavy library once a function that needs it runs."""
    code = "import paperkit\ntry:\n    paperkit.validate({}, 'bench')\nexcept paperkit.SchemaError:\n    pass"
    assert loaded_after(code) == ["jsonschema"]


def test_every_export_resolves() -> None:
    for name in paperkit.__all__:
        assert getattr(paperkit, name) is not None, name
    assert set(dir(paperkit)) == set(paperkit.__all__)
    assert paperkit.claim is paperkit.report.claim
    assert isinstance(paperkit.__version__, str)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = paperkit.nope
