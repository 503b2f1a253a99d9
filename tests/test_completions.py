"""The shipped completion scripts match the CLI and actually complete in bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mnistctl.cli.completion import SHELL_FILES, script_for
from tests.conftest import REPO

REGENERATE = "python -m mnistctl completion {shell} > completions/{file}"


@pytest.mark.parametrize(("shell", "file"), sorted(SHELL_FILES.items()))
def test_shipped_script_matches_the_cli(shell, file):
    shipped = (REPO / "completions" / file).read_text()
    assert shipped == script_for(shell), (
        f"completions/{file} is stale; run: {REGENERATE.format(shell=shell, file=file)}"
    )


def bash_complete(line: str) -> list[str]:
    words = line.split(" ")
    script = (REPO / "completions" / SHELL_FILES["bash"]).read_text()
    program = script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + f")\nCOMP_CWORD={len(words) - 1}\n"
    program += "_mnistctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_and_options():
    assert bash_complete("mnistctl down") == ["download"]
    assert "--mirror" in bash_complete("mnistctl download --")
    assert sorted(bash_complete("mnistctl completion ")) == ["bash", "fish", "zsh"]


@pytest.mark.parametrize(
    ("shell", "check"), [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "-n"])]
)
def test_scripts_parse_in_their_shell(shell, check):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{shell} not installed")
    subprocess.run([*check, str(REPO / "completions" / SHELL_FILES[shell])], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_completes_commands_and_options():
    script = REPO / "completions" / SHELL_FILES["fish"]
    command = f"source {script}; complete -C 'mnistctl down'; complete -C 'mnistctl download --mi'"
    result = subprocess.run(["fish", "-c", command], capture_output=True, text=True, check=True)
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["download", "--mirror"]


def test_tree_knows_choices_and_paths():
    # Typer 0.28 keeps choices and path types on Click's param.type; 0.29 on its own param.type_descriptor.
    from mnistctl.cli.completion import _all, command_tree

    nodes = {node.key: node for node in _all(command_tree())}
    assert nodes["/completion"].argument_choices == ["bash", "zsh", "fish"]
    options = {name: option for option in nodes["/evaluate"].options for name in option.names}
    assert options["--split"].choices == ["test", "train"]
    assert options["--data"].wants_path and options["--save-confusion"].wants_path
    assert not options["--model"].wants_path and not options["--model"].choices
    assert {name: option for option in nodes["/download"].options for name in option.names}["--from"].wants_path
    assert "strongcnn" in {name: o for o in nodes["/train"].options for name in o.names}["--arch"].choices
    assert nodes["/models/import"].wants_path_argument
