"""The ``mnistctl`` Typer app: assembles one module per command and runs it with one error table.

Nothing heavy is imported here: ``mnistctl --help`` and shell completion must stay fast. The command
modules deliberately do without ``from __future__ import annotations``: Typer would then evaluate
every annotation string at start-up, re-running each ``typer.Option(...)``, about 0.1 s in all.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from mnistctl import __version__
from mnistctl.cli import completion, download, evaluate, inspect, models, predict, train
from mnistctl.cli._errors import report
from mnistctl.errors import ExitCode
from mnistctl.paths import debug_enabled

app = typer.Typer(
    name="mnistctl",
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


app.command("download")(download.download)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("predict")(predict.predict)
app.command("inspect")(inspect.inspect)
app.add_typer(models.app, name="models")
app.command("completion")(completion.completion)


def _quiet_libraries() -> None:
    # TensorFlow reads these when it is first imported; set them before any command can import it.
    if not debug_enabled():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def _usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        print(exc.format_message(), file=sys.stderr)
        return ExitCode.USAGE
    where = f' (see "{ctx.command_path} --help")' if ctx is not None else ""
    print(f"Error: {exc.format_message()}{where}", file=sys.stderr)
    return int(getattr(exc, "exit_code", ExitCode.USAGE))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with 0 (ok), 1 (runtime error), 2 (usage error) or 130 (interrupted)."""
    _quiet_libraries()
    argv = train._normalise_argv(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, prog_name="mnistctl", standalone_mode=False)
    except typer.TyperException as exc:
        code = _usage_error(exc)
    except typer.Abort:
        code = ExitCode.INTERRUPTED
    except Exception as exc:
        code = report(exc)
    except KeyboardInterrupt as exc:
        code = report(exc)
    else:
        if code == ExitCode.INTERRUPTED:  # Typer turns Ctrl-C inside a command into exit code 130
            print("Error: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
