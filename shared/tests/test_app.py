"""The dataclass-driven command line: defaults < config file < flags, and clear errors for bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from papers_common import App, InputError, RunArgs, option, read_config_file
from papers_common.app import coerce


@dataclass
class TrainArgs(RunArgs):
    lr: float = option(1e-3, help="Adam learning rate")
    steps: int = option(100, help="optimizer steps")
    position: Literal["none", "rpe", "urpe"] = option("urpe", help="position encoding")
    sizes: list[int] = option([64, 128], help="sequence lengths")
    names: tuple[str, ...] = option(("a", "b"), help="run names")
    warmup: int | None = option(None, help="warm-up steps")
    log_every: int = option(10, help="log interval")
    compile: bool = option(False, help="compile the model")


@dataclass
class NeedsArgs:
    data: Path = option(help="training data")
    epochs: int = option(help="number of epochs")
    verbose: bool = option(True, help="chatty output")


def make_app(calls: list[Any] | None = None) -> App:
    app = App("demo", description="A demo program.", version="1.2.3")

    @app.command("train", TrainArgs, help="train a model")
    def train(args: TrainArgs) -> int:
        if calls is not None:
            calls.append(args)
        return 3 if args.steps == 3 else 0

    @app.command("fit", NeedsArgs, help="fit with required options")
    def fit(args: NeedsArgs) -> None:
        if calls is not None:
            calls.append(args)

    return app


def resolve(argv: list[str]) -> Any:
    _, args = make_app().resolve(argv)
    return args


CONFIGS = {
    "toml": 'lr = 0.5\nsteps = 7\nposition = "rpe"\nsizes = [1, 2, 3]\nquick = true\nout = "runs/from-file"\n',
    "json": json.dumps(
        {"lr": 0.5, "steps": 7, "position": "rpe", "sizes": [1, 2, 3], "quick": True, "out": "runs/from-file"}
    ),
    "yaml": "lr: 0.5\nsteps: 7\nposition: rpe\nsizes: [1, 2, 3]\nquick: true\nout: runs/from-file\n",
}


def test_defaults_only() -> None:
    args = resolve(["train"])
    assert args == TrainArgs()
    assert args.lr == 1e-3
    assert args.sizes == [64, 128]
    assert args.out == Path("runs")
    assert args.quick is False
    assert args.warmup is None


@pytest.mark.parametrize("suffix", ["toml", "json", "yaml", "yml"])
def test_file_wins_over_defaults_and_flags_win_over_file(tmp_path: Path, suffix: str) -> None:
    config = tmp_path / f"config.{suffix}"
    config.write_text(CONFIGS["yaml" if suffix == "yml" else suffix], encoding="utf-8")

    from_file = resolve(["train", "--config", str(config)])
    assert from_file.lr == 0.5
    assert from_file.steps == 7
    assert from_file.position == "rpe"
    assert from_file.sizes == [1, 2, 3]
    assert from_file.quick is True
    assert from_file.out == Path("runs/from-file")
    assert from_file.seed == 0  # not in the file: the default
    assert from_file.log_every == 10

    both = resolve(
        ["train", "--steps", "9", "--config", str(config), "--full", "--sizes", "5", "--position", "none"]
    )
    assert both.steps == 9
    assert both.quick is False
    assert both.sizes == [5]
    assert both.position == "none"
    assert both.lr == 0.5  # only in the file
    assert both.out == Path("runs/from-file")


def test_hyphenated_keys_in_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("log-every = 3\n", encoding="utf-8")
    assert resolve(["train", "--config", str(config)]).log_every == 3
    assert resolve(["train", "--log-every", "4"]).log_every == 4


def test_unknown_key_is_rejected_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lr = 0.1\nstpes = 5\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        resolve(["train", "--config", str(config)])
    message = str(err.value)
    assert message.startswith(f"{config}: unknown key 'stpes' for 'demo train'")
    assert "did you mean 'steps'?" in message
    assert "known keys:" in message
    assert "log_every" in message


def test_main_reports_unknown_key_on_stderr_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[Any] = []
    config = tmp_path / "config.yaml"
    config.write_text("learning_rate: 0.1\n", encoding="utf-8")
    assert make_app(calls).main(["train", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"demo: error: {config}: unknown key 'learning_rate'")
    assert "Traceback" not in err
    assert calls == []


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('steps = "many"\n', "steps", "expected an integer, got 'many'"),
        ("steps = 1.5\n", "steps", "expected an integer, got 1.5"),
        ("steps = true\n", "steps", "expected an integer, got True"),
        ('lr = "fast"\n', "lr", "expected a number, got 'fast'"),
        ("quick = 1\n", "quick", "expected true or false, got 1"),
        ('position = "alibi"\n', "position", "expected one of 'none', 'rpe', 'urpe', got 'alibi'"),
        ('sizes = [1, "x"]\n', "sizes", "expected an integer, got 'x'"),
        ("sizes = 4\n", "sizes", "expected a list of an integer, got 4"),
        ("out = 3\n", "out", "expected a path, got 3"),
        ('warmup = "x"\n', "warmup", "expected an integer or null, got 'x'"),
    ],
)
def test_ill_typed_values_are_rejected_naming_the_key(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        resolve(["train", "--config", str(config)])
    assert str(err.value) == f"{config}: key '{key}': {expected}"


def test_values_are_coerced_to_the_option_type(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lr": 2, "names": ["x", "y", "z"], "warmup": None}), encoding="utf-8")
    args = resolve(["train", "--config", str(config)])
    assert args.lr == 2.0
    assert isinstance(args.lr, float)
    assert args.names == ("x", "y", "z")
    assert args.warmup is None


def test_yaml_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("lr: 1e-3\n", encoding="utf-8")  # YAML 1.1 reads this as the string '1e-3'
    assert resolve(["train", "--config", str(config)]).lr == 1e-3


def test_list_tuple_and_optional_flags() -> None:
    args = resolve(["train", "--sizes", "1", "2", "3", "--names", "p", "q", "--warmup", "5"])
    assert args.sizes == [1, 2, 3]
    assert args.names == ("p", "q")
    assert args.warmup == 5
    assert resolve(["train", "--warmup", "none"]).warmup is None


def test_bool_flag_pairs() -> None:
    assert resolve(["train", "--quick"]).quick is True
    assert resolve(["train", "--full"]).quick is False
    assert resolve(["train", "--compile"]).compile is True
    assert resolve(["train", "--no-compile"]).compile is False


def test_quick_and_full_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        resolve(["train", "--quick", "--full"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--position", "alibi"], "invalid choice: 'alibi'"),
        (["train", "--steps", "ten"], "argument --steps: expected an integer, got 'ten'"),
        (["train", "--lr", "x"], "argument --lr: expected a number, got 'x'"),
        (["train", "--sizes", "1", "two"], "argument --sizes: expected an integer, got 'two'"),
        (["train", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
    ],
)
def test_bad_flags_exit_2_with_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_app().main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_option_with_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_info:
        make_app().main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    expected = {
        "--seed": "random seed for Python, NumPy and torch (default: 0)",
        "--device": "'auto', 'cpu', 'cuda' or 'cuda:N' (default: 'auto')",
        "--out": "(default: runs)",
        "--quick": "(default: False)",
        "--full": "the opposite of --quick",
        "--lr": "Adam learning rate (default: 0.001)",
        "--steps": "optimizer steps (default: 100)",
        "--position": "position encoding (default: 'urpe')",
        "--sizes": "sequence lengths (default: 64 128)",
        "--names": "run names (default: a b)",
        "--warmup": "warm-up steps (default: None)",
        "--log-every": "log interval (default: 10)",
        "--compile": "compile the model (default: False)",
        "--no-compile": "the opposite of --compile",
        "--config": "TOML, JSON or YAML file",
    }
    for flag, description in expected.items():
        assert f"{flag} " in text, flag
        assert description in text, flag
    assert "{none,rpe,urpe}" in text


def test_help_marks_required_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        make_app().main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "training data (required)" in text
    assert "number of epochs (required)" in text
    assert "chatty output (default: True)" in text


def test_top_level_help_lists_commands_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_app().main(["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "train train a model" in out
    assert "fit fit with required options" in out
    with pytest.raises(SystemExit):
        make_app().main(["--version"])
    assert capsys.readouterr().out.strip() == "demo 1.2.3"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_app().main([])
    assert exit_info.value.code == 2
    assert "usage: demo" in capsys.readouterr().err


def test_missing_required_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match=r"demo fit: missing required option\(s\) --data, --epochs"):
        resolve(["fit"])
    with pytest.raises(InputError, match=r"missing required option\(s\) --epochs \("):
        resolve(["fit", "--data", "d.bin"])
    calls: list[Any] = []
    assert make_app(calls).main(["fit", "--data", "d.bin"]) == 2
    err = capsys.readouterr().err
    assert "demo: error: demo fit: missing required option(s) --epochs" in err
    assert "Traceback" not in err
    assert calls == []


def test_required_option_from_file(tmp_path: Path) -> None:
    config = tmp_path / "fit.toml"
    config.write_text('data = "train.bin"\nepochs = 2\n', encoding="utf-8")
    args = resolve(["fit", "--config", str(config), "--no-verbose"])
    assert args == NeedsArgs(data=Path("train.bin"), epochs=2, verbose=False)


def test_main_runs_handler_and_returns_its_status() -> None:
    calls: list[Any] = []
    app = make_app(calls)
    assert app.main(["train", "--steps", "5"]) == 0
    assert app.main(["train", "--steps", "3"]) == 3
    assert [c.steps for c in calls] == [5, 3]


def test_handler_input_error_becomes_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    app = App("demo", description="d", version="0")

    @app.command("run", RunArgs, help="run")
    def run(args: RunArgs) -> None:
        raise InputError(f"--device {args.device}: nope")

    assert app.main(["run", "--device", "tpu"]) == 2
    assert capsys.readouterr().err == "demo: error: --device tpu: nope\n"


def test_mutable_defaults_are_per_instance() -> None:
    a, b = TrainArgs(), TrainArgs()
    a.sizes.append(1)
    assert b.sizes == [64, 128]
    assert resolve(["train"]).sizes == [64, 128]


@dataclass
class DictArgs:
    mapping: dict = option({}, help="no flag or file value can be checked for it")


@dataclass
class PairArgs:
    pair: tuple[int, str] = option((1, "a"), help="a fixed-length tuple")


@dataclass
class UnionArgs:
    either: int | str = option(1, help="a union")


@dataclass
class ListOfDictArgs:
    items: list[dict] = option([], help="a list of mappings")


@pytest.mark.parametrize("args_type", [DictArgs, PairArgs, UnionArgs, ListOfDictArgs])
def test_unsupported_option_types_fail_at_registration(args_type: type) -> None:
    app = App("demo", description="d", version="0")
    with pytest.raises(TypeError, match="unsupported"):
        app.command("bad", args_type, help="bad")
    assert app.commands == {}


def test_registration_needs_a_dataclass() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        App("demo", description="d", version="0").command("bad", int, help="bad")


def test_coerce() -> None:
    assert coerce(3, float) == 3.0
    assert coerce(None, int, optional=True) is None
    assert coerce("a", Literal["a", "b"]) == "a"
    with pytest.raises(ValueError, match="expected an integer, got None"):
        coerce(None, int)


# --- read_config_file --------------------------------------------------------------------------------------


def test_read_config_file_formats(tmp_path: Path) -> None:
    for suffix, text in [
        ("toml", 'a = 1\nb = "x"\n'),
        ("json", '{"a": 1, "b": "x"}'),
        ("yaml", "a: 1\nb: x\n"),
    ]:
        path = tmp_path / f"c.{suffix}"
        path.write_text(text, encoding="utf-8")
        assert read_config_file(path) == {"a": 1, "b": "x"}
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert read_config_file(empty) == {}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.json", '{\n  "a": 1,\n}', r"c\.json:3: invalid JSON"),
        ("c.toml", "a = 1\nb = = 2\n", r"c\.toml: invalid TOML"),
        ("c.yaml", "a: 1\nb: [1, 2\n", r"c\.yaml:3: invalid YAML"),
        ("c.ini", "a=1", r"unknown format '\.ini'"),
        ("c.yaml", "- 1\n- 2\n", r"c\.yaml: expected a mapping"),
    ],
)
def test_read_config_file_errors_name_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_config_file(path)


def test_missing_config_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InputError, match="cannot read the file"):
        read_config_file(missing)
    assert make_app().main(["train", "--config", str(missing)]) == 2
    assert f"--config {missing}: cannot read the file" in capsys.readouterr().err


def test_quiet_silences_progress_for_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from papers_common import configure_logging, progress_enabled

    monkeypatch.delenv("PAPERS_PROGRESS", raising=False)
    seen: list[bool] = []
    app = App("demo", description="d", version="0")

    @app.command("run", RunArgs, help="run")
    def run(args: RunArgs) -> None:
        seen.append(progress_enabled())

    try:
        assert app.main(["run", "--quiet"]) == 0
        assert app.main(["run"]) == 0
    finally:
        configure_logging()
    assert seen == [False, True]
    assert "--quiet" in _command_help(app, "run")


def _command_help(app: App, name: str) -> str:
    parser = app.parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name].format_help()  # type: ignore[union-attr]


def test_a_command_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    ran: list[bool] = []
    app = App("toy-paper", description="d", version="0")

    @app.command("reproduce", RunArgs, help="reproduce", extra="reproduce")
    def reproduce(args: RunArgs) -> None:
        ran.append(True)

    @app.command("train", RunArgs, help="train")
    def train(args: RunArgs) -> None:
        ran.append(False)

    assert app.main(["reproduce"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "toy-paper: error: 'toy-paper reproduce' needs matplotlib from the 'reproduce' extra: "
        "pip install 'toy-paper[reproduce]'\n"
    )
    assert app.main(["train"]) == 0
    assert ran == [False]


def test_yaml_config_without_pyyaml_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "yaml" else real(name, *a)
    )
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.5\n")
    with pytest.raises(InputError, match=r"c\.yaml: YAML files need PyYAML \(pip install pyyaml\)"):
        read_config_file(path)
    (tmp_path / "c.toml").write_text("lr = 0.5\n")
    assert read_config_file(tmp_path / "c.toml") == {"lr": 0.5}
