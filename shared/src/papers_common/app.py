"""A uniform command line for every package: subcommands whose options are the fields of a dataclass.

Each subcommand takes ``--config FILE`` (TOML, JSON or YAML) whose keys are the option names; values are resolved
as *dataclass defaults < config file < flags given on the command line*. Unknown keys and ill-typed values are
rejected with the file and key named. ``--help`` lists every option with its default.

Example::

    @dataclass
    class TrainArgs(RunArgs):
        lr: float = option(1e-3, help="Adam learning rate")
        position: Literal["none", "rpe", "urpe"] = option("urpe", help="position encoding")

    app = App("urpe", description="Universal RPE attention", version=__version__)

    @app.command("train", TrainArgs, help="train a model")
    def train(args: TrainArgs) -> None: ...

    def main() -> None:
        raise SystemExit(app.main())
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from papers_common.errors import InputError
from papers_common.monitoring import configure_logging
from papers_common.outputs import (
    OutputKind,
    allocation_message,
    check_output,
    created_paths,
    is_allocation_failure,
    remove_created,
)

REPORT_MODULES = ("matplotlib", "jsonschema")
"""What results, figures and their validation need: papers-common's ``report`` extra, which packages' own
``reproduce`` extras pull in."""

T = TypeVar("T")
Handler = Callable[[Any], "int | None"]


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flags: tuple[str, str] | None = None,
    metavar: str | None = None,
    output: OutputKind | None = None,
) -> Any:
    """A dataclass field that becomes a command-line option.

    Args:
        default: the default value; leave it out for a required option. Lists are copied per instance.
        help: one line for ``--help``; the default is appended automatically.
        flags: for a boolean, the ``(on, off)`` flag names, e.g. ``("--quick", "--full")``; by default
            ``--name`` / ``--no-name``.
        metavar: the value's name in ``--help``.
        output: for a path the command writes, ``"dir"`` (a folder it creates or fills) or ``"file"``. Such a path
            is checked before the command runs (:func:`papers_common.outputs.check_output`), and what the
            command created there is removed again when it fails on bad input or memory.
    """
    if output is not None and output not in ("dir", "file"):
        raise ValueError(f"output must be 'dir' or 'file', not {output!r}")
    metadata = {"help": help, "flags": flags, "metavar": metavar, "output": output}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class RunArgs:
    """The options every run-producing command shares."""

    seed: int = option(0, help="random seed for Python, NumPy and torch")
    device: str = option("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    out: Path = option(
        Path("runs"), help="directory for the run's config, metrics, checkpoints and results", output="dir"
    )
    quick: bool = option(
        False,
        help="small settings that finish in minutes on a CPU (--full: the paper's)",
        flags=("--quick", "--full"),
    )
    threads: int | None = option(
        None,
        help="torch CPU threads (default: one per available core); a fixed count makes the same seed give the "
        "same numbers on any machine of the same CPU type",
    )


@dataclass(frozen=True)
class _Option:
    name: str
    kind: Any  # the field's type with Optional removed
    optional: bool
    default: Any
    help: str
    flags: tuple[str, str] | None
    metavar: str | None
    output: OutputKind | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _options(args_type: type) -> list[_Option]:
    hints = typing.get_type_hints(args_type)
    found = []
    for f in dataclasses.fields(args_type):
        if not f.init:
            continue
        kind, optional = _strip_optional(hints[f.name])
        _check_kind(kind)
        if f.metadata.get("output") and kind is not Path:
            raise TypeError(f"option {f.name!r} is an output, so its type must be Path (or Path | None)")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        meta = f.metadata
        found.append(
            _Option(
                f.name,
                kind,
                optional,
                default,
                meta.get("help", ""),
                meta.get("flags"),
                meta.get("metavar"),
                meta.get("output"),
            )
        )
    return found


def _check_kind(tp: Any) -> None:
    """Raise ``TypeError`` for a field type that neither flags nor config files can give a value of."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"unsupported option type {tp}; use tuple[T, ...] or list[T]")
        _check_kind(args[0])
        return
    if tp not in (bool, int, float, str, Path):
        raise TypeError(f"unsupported option type {tp} for a command-line option")


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"unsupported union type {tp} for a command-line option")
    return tp, False


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(
        tp, str(tp)
    )


def coerce(value: Any, tp: Any, optional: bool = False) -> Any:
    """Convert a config-file value to the option's type, or raise ``ValueError`` saying what was expected."""
    if value is None and optional:
        return None
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            items = [coerce(v, typing.get_args(tp)[0]) for v in value]
            return tuple(items) if origin is tuple else items
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str):
            return Path(value)
    else:
        raise TypeError(f"unsupported option type {tp}")
    raise ValueError(f"expected {_type_name(tp)}{' or null' if optional else ''}, got {value!r}")


def _parse_flag_value(tp: Any, optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            return tp(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected {_type_name(tp)}, got {text!r}") from err

    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML mapping; parse errors name the file (and line where the parser knows it)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"--config {file}: cannot read the file ({err.strerror})") from err
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:
                import tomli as tomllib
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            if importlib.util.find_spec("yaml") is None:
                raise InputError(
                    f"--config {file}: YAML files need PyYAML (pip install pyyaml); or use TOML/JSON"
                )
            import yaml

            data = yaml.safe_load(text)
        else:
            raise InputError(f"--config {file}: unknown format {suffix!r}; use .toml, .json, .yaml or .yml")
    except InputError:
        raise
    except json.JSONDecodeError as err:
        raise InputError(f"{file}:{err.lineno}: invalid JSON: {err.msg}") from err
    except Exception as err:  # tomllib and yaml raise their own error types
        mark = getattr(err, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        raise InputError(f"{where}: invalid {suffix[1:].upper()}: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected a mapping of option names to values at the top level")
    return data


@dataclass(frozen=True)
class Command:
    name: str
    args_type: type
    help: str
    handler: Handler
    extra: str | None = None
    needs: tuple[str, ...] = ()

    def check_extra(self, prog: str) -> None:
        """Raise :class:`InputError` naming the install command when a module of the command's extra is missing."""
        missing = [module for module in self.needs if importlib.util.find_spec(module) is None]
        if missing:
            raise InputError(
                f"'{prog} {self.name}' needs {', '.join(missing)} from the '{self.extra}' extra: "
                f"pip install '{prog}[{self.extra}]'"
            )


class App:
    """A program with subcommands; see the module docstring.

    Args:
        prog: the console-script name (the distribution's name).
        description: one paragraph for ``--help``.
        version: shown by ``--version``.
    """

    def __init__(self, prog: str, *, description: str, version: str) -> None:
        self.prog = prog
        self.description = description
        self.version = version
        self.commands: dict[str, Command] = {}

    def command(
        self, name: str, args_type: type, *, help: str, extra: str | None = None, needs: Sequence[str] = ()
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(args)`` as subcommand ``name``; ``args_type`` is a dataclass of options.

        ``extra`` names the optional extra of the program's distribution that the command needs, and ``needs``
        the modules it brings (default: those of the reporting extra, matplotlib and jsonschema). Without them
        the command stops with one line saying what to install.
        """
        if not dataclasses.is_dataclass(args_type):
            raise TypeError(f"{args_type!r} is not a dataclass")
        _options(args_type)  # fail at import time on unsupported field types
        modules = tuple(needs) or (REPORT_MODULES if extra else ())

        def register(handler: Handler) -> Handler:
            self.commands[name] = Command(name, args_type, help, handler, extra, modules)
            return handler

        return register

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        parser.add_argument("--version", action="version", version=f"{self.prog} {self.version}")
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
        for command in self.commands.values():
            cmd = sub.add_parser(
                command.name,
                help=command.help,
                description=command.help,
                argument_default=argparse.SUPPRESS,
            )
            cmd.add_argument(
                "--config",
                metavar="FILE",
                type=Path,
                help="TOML, JSON or YAML file of option values (flags win)",
            )
            cmd.add_argument(
                "--quiet", action="store_true", help="no progress bar or progress log lines, only warnings"
            )
            for opt in _options(command.args_type):
                self._add(cmd, opt)
        return parser

    @staticmethod
    def _add(parser: argparse.ArgumentParser, opt: _Option) -> None:
        shown = "required" if opt.default is dataclasses.MISSING else f"default: {_show(opt.default)}"
        text = f"{opt.help} ({shown})"
        if opt.kind is bool:
            on, off = opt.flags or (opt.flag, "--no-" + opt.flag[2:])
            group = parser.add_mutually_exclusive_group()
            group.add_argument(on, dest=opt.name, action="store_const", const=True, help=text)
            group.add_argument(
                off, dest=opt.name, action="store_const", const=False, help=f"the opposite of {on}"
            )
            return
        origin = typing.get_origin(opt.kind)
        kwargs: dict[str, Any] = {"dest": opt.name, "help": text, "metavar": opt.metavar}
        if origin is Literal:
            choices = typing.get_args(opt.kind)
            kwargs.update(
                type=_parse_flag_value(type(choices[0]), opt.optional),
                choices=choices,
                metavar=opt.metavar or "{" + ",".join(map(str, choices)) + "}",
            )
        elif origin in (list, tuple):
            kwargs.update(type=_parse_flag_value(typing.get_args(opt.kind)[0], False), nargs="+")
        else:
            kwargs.update(type=_parse_flag_value(opt.kind, opt.optional))
        parser.add_argument(opt.flag, **kwargs)

    def resolve(self, argv: Sequence[str] | None = None) -> tuple[Command, Any]:
        """Parse ``argv`` and return the command and its resolved options (defaults < config file < flags)."""
        command, args, _ = self._resolve(argv)
        return command, args

    def _resolve(self, argv: Sequence[str] | None) -> tuple[Command, Any, bool]:
        parser = self.parser()
        namespace = vars(parser.parse_args(argv))
        quiet = bool(namespace.pop("quiet", False))
        name = namespace.pop("command", None)
        if name is None:
            parser.print_help(sys.stderr)
            raise SystemExit(2)
        command = self.commands[name]
        options = {opt.name: opt for opt in _options(command.args_type)}
        values = {
            name: opt.default for name, opt in options.items() if opt.default is not dataclasses.MISSING
        }
        config_file = namespace.pop("config", None)
        if config_file is not None:
            values.update(self._from_file(config_file, command, options))
        values.update(
            (key, tuple(value) if typing.get_origin(options[key].kind) is tuple else value)
            for key, value in namespace.items()
        )
        for key, opt in options.items():  # before the missing-option check: a bad output path is named first
            if opt.output is not None and values.get(key) is not None:
                check_output(values[key], opt.output, opt.flag)
        missing = [options[n].flag for n in options if n not in values]
        if missing:
            raise InputError(
                f"{self.prog} {name}: missing required option(s) {', '.join(missing)} (give them as flags or in --config)"
            )
        return command, command.args_type(**values), quiet

    def _from_file(self, path: Path, command: Command, options: dict[str, _Option]) -> dict[str, Any]:
        values = {}
        for key, value in read_config_file(path).items():
            name = str(key).replace("-", "_")
            if name not in options:
                close = difflib.get_close_matches(name, options, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(sorted(options))
                raise InputError(
                    f"{path}: unknown key '{key}' for '{self.prog} {command.name}'{hint}; known keys: {known}"
                )
            opt = options[name]
            try:
                values[name] = coerce(value, opt.kind, opt.optional)
            except ValueError as err:
                raise InputError(f"{path}: key '{key}': {err}") from err
        return values

    def output_flags(self, name: str) -> dict[str, OutputKind]:
        """The output options of subcommand ``name``: flag -> ``"dir"`` or ``"file"``."""
        return {o.flag: o.output for o in _options(self.commands[name].args_type) if o.output is not None}

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the program; returns the exit status.

        An options dataclass with a ``threads`` field (``RunArgs`` has one) pins torch's thread count to it first
        (:func:`papers_common.seeding.pin_threads`). Bad input (an :class:`InputError`, output paths included) and
        an allocation that cannot fit print one line
        without a traceback and give status 2; the output folders and files the command created are removed.
        """
        created: list[Path] = []
        size_flags: list[str] = []
        try:
            command, args, quiet = self._resolve(argv)
            options = _options(command.args_type)
            created = created_paths(
                getattr(args, o.name) for o in options if o.output and getattr(args, o.name) is not None
            )
            size_flags = [
                f"{o.flag} {_show(getattr(args, o.name))}"
                for o in options
                if o.kind is int and o.name not in ("seed", "threads") and getattr(args, o.name) != o.default
            ]
            if getattr(args, "threads", None) is not None:
                from papers_common.seeding import pin_threads

                pin_threads(args.threads)
            configure_logging(quiet=quiet)
            command.check_extra(self.prog)
            status = command.handler(args)
        except InputError as err:
            remove_created(created)
            print(f"{self.prog}: error: {err}", file=sys.stderr)
            return 2
        except (MemoryError, RuntimeError) as err:
            if not is_allocation_failure(err):
                raise
            remove_created(created)
            print(f"{self.prog}: error: {allocation_message(err, size_flags)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{self.prog}: interrupted", file=sys.stderr)
            return 130
        return int(status or 0)


def _show(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "(empty)"
    return repr(value) if isinstance(value, str) else str(value)
