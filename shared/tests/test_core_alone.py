"""The core works without the ``report`` extra: no matplotlib, jsonschema or PyYAML is needed to train and save."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Makes the report extra's modules unimportable in the child, as in an install without the extra.
BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("matplotlib", "jsonschema", "yaml"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    """
)

CORE = textwrap.dedent(
    """
    import dataclasses, importlib.util, sys
    from pathlib import Path
    import torch
    from papers_common import (
        App, Pretrained, RunArgs, RunDir, load_checkpoint, option, progress, save_checkpoint, seed_everything,
    )

    importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in (
        "matplotlib", "jsonschema", "yaml") else REAL(name, *a)

    @dataclasses.dataclass(frozen=True)
    class Config:
        width: int = 2

    class Model(torch.nn.Module, Pretrained):
        config_class = Config
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.linear = torch.nn.Linear(config.width, 1)

    @dataclasses.dataclass
    class TrainArgs(RunArgs):
        steps: int = option(3, help="steps")

    app = App("toy", description="toy", version="0")

    @app.command("train", TrainArgs, help="train")
    def train(args):
        seed_everything(args.seed)
        run = RunDir(args.out)
        run.write_config(args)
        model = Model(Config())
        for step in progress(range(args.steps), desc="train"):
            run.log(step + 1, loss=0.5)
        save_checkpoint(run.checkpoints, args.steps, model, config={"model": {"width": 2}})
        assert load_checkpoint(run.checkpoints).step == args.steps
        model.save_pretrained(run.path("model"))
        assert Model.from_pretrained(run.path("model")).config == Config()
        print("trained")

    @app.command("reproduce", RunArgs, help="reproduce", extra="reproduce")
    def reproduce(args):
        print("must not run")

    out = Path(sys.argv[1])
    (out / "cfg.toml").write_text("steps = 4\\n")
    assert app.main(["train", "--config", str(out / "cfg.toml"), "--out", str(out / "run"), "--quiet"]) == 0
    assert app.main(["reproduce", "--out", str(out / "r")]) == 2
    for name in ("matplotlib", "jsonschema", "yaml"):
        assert name not in sys.modules, name
    """
)


def test_training_saving_and_the_cli_need_no_report_extra(tmp_path: Path) -> None:
    code = BLOCK + "import importlib.util\nREAL = importlib.util.find_spec\n" + CORE
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "trained\n"
    assert (
        "toy: error: 'toy reproduce' needs matplotlib, jsonschema from the 'reproduce' extra" in done.stderr
    )
    assert "pip install 'toy[reproduce]'" in done.stderr
    assert (tmp_path / "run" / "model" / "config.json").is_file()
