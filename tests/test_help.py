"""What ``--help`` tells: whole one-line command summaries, the environment variables, the recipes' defaults;
and a start-up that imports only the command that runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mnistctl.cli as cli
from mnistctl.archs import arch_names, get_arch
from mnistctl.cli import main
from tests.conftest import REPO, run_cli


def flat(text: str) -> str:
    """Help text with its line wrapping undone."""
    return " ".join(text.split())


def commands_section(help_text: str) -> list[str]:
    lines = help_text.splitlines()
    start = lines.index("Commands:") + 1
    section = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        section.append(line)
    return section


@pytest.mark.parametrize("columns", ["80", "120"])
def test_root_help_shows_every_command_summary_whole(columns):
    result = run_cli("--help", env={"COLUMNS": columns})
    assert result.returncode == 0
    rows = commands_section(result.stdout.decode())
    assert [row.split()[0] for row in rows] == list(cli.COMMANDS)
    for row in rows:
        name, summary = row.split(maxsplit=1)
        assert not summary.endswith("..."), row
        assert summary == cli.COMMANDS[name].summary


def test_predict_help_gives_the_low_confidence_flag_where_it_is():
    import typer.main

    from mnistctl.cli import app
    from mnistctl.prediction import LOW_CONFIDENCE

    text = " ".join(typer.main.get_command(app).commands["predict"].help.split())
    assert f"below {LOW_CONFIDENCE} they are flagged as low" in text


def test_command_summaries_are_the_first_lines_of_their_help():
    import typer.main

    from mnistctl.cli import app

    group = typer.main.get_command(app)
    for name, entry in cli.COMMANDS.items():
        first_line = group.commands[name].help.strip().splitlines()[0]
        assert first_line == entry.summary, name
        # Click formats help 78 columns wide: two spaces, the names, two spaces, the summary.
        assert len(entry.summary) <= 78 - 4 - max(map(len, cli.COMMANDS)), name


def test_models_help_shows_subcommand_summaries_whole():
    rows = commands_section(run_cli("models", "--help").stdout.decode())
    shown = {row.split()[0]: row for row in rows}
    for name in ("list", "show", "alias", "rm", "gc", "export", "import"):
        assert not shown[name].endswith("..."), shown[name]


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        ("download", "MNISTCTL_MIRROR"),
        ("evaluate", "MNISTCTL_MODEL"),
        ("predict", "MNISTCTL_MODEL"),
        ("inspect", "MNISTCTL_MODEL"),
    ],
)
def test_option_help_names_its_environment_variable(command, variable):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert f"[env var: {variable}]" in flat(result.stdout.decode())


def test_root_help_lists_the_environment_variables():
    text = run_cli("--help").stdout.decode()
    environment = text[text.index("Environment:") :]
    for variable in ("MNISTCTL_HOME", "MNISTCTL_MODEL", "MNISTCTL_MIRROR", "MNISTCTL_DEBUG"):
        assert variable in environment


def test_mirror_variable_keeps_its_comma_separated_list(mirror, second_mirror, monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_MIRROR", f"{mirror.url},{second_mirror.url}")
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    assert "failed" not in captured.err
    assert {file["source"].rsplit("/", 1)[0] + "/" for file in json.loads(captured.out)["files"]} == {mirror.url}
    assert all("," not in path for path, _ in mirror.requests)


def test_mirror_flag_still_comes_before_the_variable(mirror, second_mirror, monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_MIRROR", second_mirror.url)
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--mirror", mirror.url, "--json"])
    assert exit_info.value.code == 0
    assert {file["source"].rsplit("/", 1)[0] + "/" for file in json.loads(capsys.readouterr().out)["files"]} == {
        mirror.url
    }
    assert second_mirror.requests == []


def test_mirror_variable_does_not_count_as_a_mirror_flag(tiny_npz, monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--from", str(tiny_npz), "--json"])
    assert exit_info.value.code == 0, capsys.readouterr().err


@pytest.mark.parametrize("value", ["", "   ", " builtin "])
def test_blank_or_padded_model_variable_behaves_as_before(value, monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_MODEL", value)
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--summary", "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    assert json.loads(captured.out)["model"] == "builtin"


def test_model_variable_names_the_model(monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_MODEL", "nope")
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--summary"])
    assert exit_info.value.code == 1
    assert "'nope'" in capsys.readouterr().err


def test_train_help_shows_each_recipes_defaults():
    text = flat(run_cli("train", "--help").stdout.decode())
    for name in arch_names():
        recipe = get_arch(name).recipe
        assert f"{name} {recipe.batch_size}" in text[text.index("--batch-size") : text.index("--lr")]
        assert f"{name} {recipe.epochs}" in text[text.index("--epochs") : text.index("--batch-size")]
        assert f"{name} {recipe.learning_rate:g}" in text[text.index("--lr") : text.index("--seed")]
    assert "default 128" not in text


def imported_modules(*argv: str) -> set[str]:
    """The modules ``main(argv)`` leaves imported, run in a fresh interpreter."""
    code = (
        "import sys\nfrom mnistctl.cli import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(result.stdout.split("MODULES", 1)[1].split())


COMMAND_MODULES = {f"mnistctl.cli.{name}" for name in ("download", "train", "evaluate", "predict", "inspect", "models")}


def test_root_help_imports_no_command_module():
    assert not imported_modules("--help") & (COMMAND_MODULES | {"mnistctl.cli.completion", "mnistctl.archs"})


@pytest.mark.parametrize(
    ("argv", "module"),
    [(("models", "list"), "mnistctl.cli.models"), (("predict", "--help"), "mnistctl.cli.predict")],
)
def test_a_command_imports_its_own_module_only(argv, module):
    loaded = imported_modules(*argv) & COMMAND_MODULES
    # predict shares --model with evaluate and inspect: that declaration lives in evaluate.
    assert loaded - {"mnistctl.cli.evaluate"} == {module}


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("predict", "--help"), ("models", "list"), ("train", "--help"), ("predict", "no-such.png")],
)
def test_start_up_does_not_import_pydantic(argv):
    # Typer 0.29 coerces every parameter value through pydantic (about 100 ms of predict's start-up), which
    # is why pyproject.toml keeps Typer below 0.29; --help never parses a value either way.
    assert "pydantic" not in imported_modules(*argv)


def test_unknown_command_still_suggests_the_near_one():
    result = run_cli("downlod")
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Did you mean 'download'?" in lines[0]
