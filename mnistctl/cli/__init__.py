"""The ``mnistctl`` Typer app: a table of commands, each imported and built only when it runs; one error table.

Nothing heavy is imported here: ``mnistctl --help`` and shell completion must stay fast. ``mnistctl --help`` prints
the table's one-line summaries without importing a command module; ``mnistctl NAME`` imports and builds NAME alone
(lazy loading, as large Click apps do). The command modules deliberately do without ``from __future__ import
annotations``: Typer would then evaluate every annotation string at start-up, re-running each ``typer.Option(...)``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, NamedTuple

import typer
import typer.core
import typer.main

from mnistctl import __version__
from mnistctl.cli._errors import report
from mnistctl.errors import ExitCode, MnistctlError
from mnistctl.paths import (
    ENV_DEBUG,
    ENV_HOME,
    ENV_MIRROR,
    ENV_MODEL,
    ENV_NO_DEFAULT_MIRRORS,
    ENV_TOKEN,
    debug_enabled,
)


class CommandEntry(NamedTuple):
    module: str  # in mnistctl.cli
    attribute: str  # the command function, or the typer.Typer of a command group
    summary: str  # the first line of the command's help; tests/test_help.py keeps the two equal


# In the order ``mnistctl --help`` lists them. A summary must fit the 80 columns Click formats help in.
COMMANDS: dict[str, CommandEntry] = {
    "download": CommandEntry("download", "download", "Fetch and verify MNIST, or import an offline copy."),
    "train": CommandEntry("train", "train", "Train an architecture, test it and register a new version."),
    "evaluate": CommandEntry("evaluate", "evaluate", "Evaluate a model on MNIST or on a labelled folder of images."),
    "predict": CommandEntry("predict", "predict", "Recognise handwritten digits in images, photos and scans."),
    "inspect": CommandEntry("inspect", "inspect", "Show a model's wrong or right digits, confusion, curves, layers."),
    "completion": CommandEntry("completion", "completion", "Print a shell completion script."),
    "models": CommandEntry("models", "app", "Registry: list, show, default, alias, rm, gc, export, import."),
    "serve": CommandEntry("serve", "serve", "Serve predictions over HTTP, with a page to draw digits on."),
}

# The variables every command reads, shown at the end of ``mnistctl --help``.
ENVIRONMENT = [
    (ENV_HOME, "Home folder (default: the user data dir)."),
    (ENV_MODEL, "Model used when no --model is given."),
    (ENV_MIRROR, "Mirrors to try first (space/comma separated)."),
    (ENV_NO_DEFAULT_MIRRORS, "1: never try the public mirrors."),
    (ENV_DEBUG, "1: tracebacks, TensorFlow's own messages."),
    (ENV_TOKEN, "Bearer token mnistctl serve requires."),
]


def env_read_by_library(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Callback of an option whose ``envvar=`` is there for ``--help``: the library reads the variable itself, with
    its own rules (commas between mirrors, a blank MNISTCTL_MODEL meaning none), so drop what Click took from it."""
    source = ctx.get_parameter_source(param.name or "")
    return None if source is not None and source.name == "ENVIRONMENT" else value


def _build(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(f"mnistctl.cli.{entry.module}"), entry.attribute)
    # Built as app.command(name) / app.add_typer(group, name=name) would build it under the root app.
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        return typer.main.get_command(holder).commands[name]
    holder.command(name)(target)
    return typer.main.get_command(holder)


def _unset_help_is_false(command: Any, ctx: typer.Context) -> None:
    """Give ``--help`` the default False, for ``command`` and every command below it.

    Typer 0.29 runs an unset flag's None through pydantic (whose import is 40-50 ms); a bool skips that, so
    ``mnistctl models list`` and ``mnistctl predict --help`` never import it.
    """
    option = command.get_help_option(ctx)
    if option is not None:
        option.default = False
    for child in getattr(command, "commands", {}).values():
        _unset_help_is_false(child, ctx)


class _LazyCommands(Mapping[str, Any]):
    """``COMMANDS`` as Click's name -> command mapping: a command is imported and built when first looked up."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = _build(name)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class ReaderGone(Exception):
    """stdout's reader closed the pipe (``mnistctl models list | head -1``)."""


# What a shell reports for a process that SIGPIPE ended (128 + 13), as for coreutils' tools in such a pipe.
EXIT_READER_GONE = 141


def _reader_gone() -> int:
    """Stop quietly: nothing more can be shown. stdout is pointed at /dev/null so that the interpreter's final
    flush of what was still buffered cannot fail again (that would print a warning and exit 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


def _tolerant_stdout() -> None:
    # A file name or a "…" that stdout's encoding cannot write (PYTHONIOENCODING=ascii, an old Windows code page)
    # is written as an escape instead of ending the command half-way with UnicodeEncodeError.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")


class LazyGroup(typer.core.TyperGroup):
    """The root group: knows every command by name and summary, builds only the one that runs."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands()

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is not None:
            _unset_help_is_false(command, ctx)
        return command

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Click would turn this into a silent exit 1 ("runtime error"); main() makes it the reader-gone exit.
            raise ReaderGone from None

    def get_help_option(self, ctx: typer.Context) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.default = False  # see _unset_help_is_false
        return option

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])

    def format_epilog(self, ctx: typer.Context, formatter: Any) -> None:
        with formatter.section("Environment"):
            formatter.write_dl(ENVIRONMENT)


app = typer.Typer(
    name="mnistctl",
    cls=LazyGroup,
    help="Handwritten-digit recognition on MNIST: download, train, evaluate, predict, inspect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        print(f"mnistctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Handwritten-digit recognition on MNIST: download, train, evaluate, predict, inspect."""


def _quiet_libraries() -> None:
    # TensorFlow reads these when it is first imported; set them before any command can import it.
    if not debug_enabled():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def _normalise_argv(argv: list[str]) -> list[str]:
    # Only train's flags are rewritten (see train._normalise_argv); other command lines need not import train.
    if not any(word in ("--resume", "--augment") or word.startswith("--augment=") for word in argv):
        return argv
    from mnistctl.cli.train import _normalise_argv

    return _normalise_argv(argv)


def _usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        print(exc.format_message(), file=sys.stderr)
        return ExitCode.USAGE
    where = f' (see "{ctx.command_path} --help")' if ctx is not None else ""
    print(f"Error: {exc.format_message()}{where}", file=sys.stderr)
    return int(getattr(exc, "exit_code", ExitCode.USAGE))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with 0 (ok), 1 (runtime error), 2 (usage error), 130 (interrupted) or 141 (stdout's
    reader went away)."""
    from mnistctl import interrupts

    interrupts.install()
    _quiet_libraries()
    _tolerant_stdout()
    argv = _normalise_argv(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, prog_name="mnistctl", standalone_mode=False)
        sys.stdout.flush()  # a closed pipe shows here for output still buffered
    except ReaderGone:
        code = _reader_gone()
    except BrokenPipeError:
        code = _reader_gone()
    except SystemExit:
        # Click meets a closed pipe outside a command (``--help | head -0``) with exit 1 and a pacified stdout.
        if type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        code = _reader_gone()
    except typer.TyperException as exc:
        code = _usage_error(exc)
    except typer.Abort:
        code = ExitCode.INTERRUPTED
    except Exception as exc:
        if interrupts.requested() and not isinstance(exc, MnistctlError):
            # After Ctrl-C, a failure is its consequence (a library left half-built by the interrupt): say so.
            # (Our own errors already do: "training interrupted after 3 of 12 epochs; resume with ...".)
            interrupted = interrupts.exception()
            interrupted.__cause__ = exc  # MNISTCTL_DEBUG=1 shows what it broke
            exc = interrupted
        code = report(exc)
    except KeyboardInterrupt as exc:
        code = report(exc)
    else:
        if code == ExitCode.INTERRUPTED:  # Typer turns Ctrl-C inside a command into exit code 130
            print("Error: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
