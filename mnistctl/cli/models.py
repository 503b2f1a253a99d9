"""``mnistctl models``: list, show, alias, remove, garbage-collect, export and import registered models.

``list`` and ``show`` read SQLite and JSON only; TensorFlow is imported by export/import alone.
"""

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mnistctl.cli._output import hint, print_json, print_table
from mnistctl.errors import MnistctlError, UsageError

if TYPE_CHECKING:
    from mnistctl.registry import ModelVersion, Registry

app = typer.Typer(
    name="models",
    help="Registry: list, show, default, alias, rm, gc, export, import.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


class ExportFormat(str, Enum):
    keras = "keras"
    h5 = "h5"
    tflite = "tflite"
    savedmodel = "savedmodel"


def _registry() -> "Registry":
    # Imported here so that "mnistctl --help" does not pay for sqlite3.
    from mnistctl.registry import Registry

    return Registry()


def version_document(version: "ModelVersion") -> dict[str, Any]:
    """Everything the registry knows about a version, as JSON-ready data."""
    return {
        "model": version.ref,
        "name": version.name,
        "version": version.version,
        "arch": version.arch,
        "data": _trained_on(version),
        "aliases": list(version.aliases),
        "created_at": version.created_at,
        "params": version.params,
        "metrics": version.metrics,
        "evaluations": list(version.evaluations),
        "weights_sha256": version.weights_sha256,
        "data_fingerprint": version.data_fingerprint,
        "environment": version.environment,
        "run_id": version.run_id,
        "artifacts": {kind: {"sha256": a.sha256, "bytes": a.bytes} for kind, a in version.artifacts.items()},
        "layers": version.layers,
    }


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _how_folder_was_read(evaluation: dict[str, Any]) -> str:
    """Whether a folder's answers had the second look (``second_look``): scores from before it lack the record
    and are not comparable with later ones."""
    if not str(evaluation.get("split", "")).startswith("folder:"):
        return ""
    below = evaluation.get("second_look_below")
    return f", second look below {below:g}" if isinstance(below, int | float) else ", before the second look"


def _accuracy(version: "ModelVersion") -> str:
    return _number(version.metrics.get("test_accuracy"))


@app.command("list")
def list_models(json_output: JsonFlag = False) -> None:
    """List every registered version, newest first."""
    registry = _registry()
    # Asked before listing: opening an empty registry.db turns it into a new, empty registry.
    lost = registry.lost_problem()
    versions = registry.list()
    default = registry.default_ref()
    if lost is not None:
        hint(f"warning: {lost}; their models are not listed: restore registry.db from a backup")
    if json_output:
        print_json(
            {
                "default": default,
                "models": [version_document(v) | {"layers": None} for v in versions],
            }
        )
        return
    if not versions:
        hint('no models yet; train one with "mnistctl train --arch mlp"')
        return
    rows = [
        (
            v.ref,
            v.arch,
            _trained_on(v),
            _accuracy(v),
            _count(v.params.get("total_params", sum(layer.get("params", 0) for layer in v.layers))),
            v.params.get("epochs", "-"),
            v.created_at.replace("T", " ")[:16],
            _aliases(v, default),
        )
        for v in versions
    ]
    print_table(None, ("model", "arch", "data", "test acc", "params", "epochs", "created (UTC)", "aliases"), rows)
    damaged = [v.ref for v in versions if v.damaged]
    if damaged:
        hint(f'damaged registry records: {", ".join(damaged)}; remove them with "mnistctl models rm REF --yes"')


def _trained_on(version: "ModelVersion") -> str:
    """What a version was trained on: a data set's name, or "folder" (``train --data DIR``)."""
    return "folder" if version.params.get("data_folder") else version.dataset


def _aliases(version: "ModelVersion", default: str | None) -> str:
    aliases = list(version.aliases)
    if version.builtin and default == version.ref:
        aliases.append("default")
    if version.damaged:
        aliases.append(f"DAMAGED ({', '.join(version.damaged)})")
    return ", ".join(aliases)


def _count(value: Any) -> str:
    """Whole numbers with thousands separators; anything else as it is."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@app.command("default")
def default(
    ref: Annotated[
        str | None, typer.Argument(metavar="[REF]", help="The version to use when no --model is given.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the choice: use the newest version again.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Show or set the model used when no --model is given.

    It comes after MNISTCTL_MODEL and before the newest version; --clear forgets it.
    """
    registry = _registry()
    if clear and ref is not None:
        raise UsageError("give a REF or --clear, not both")
    if clear or ref is not None:
        version = registry.set_default(None if clear else ref)
        chosen = None if version is None else version.ref
    else:
        chosen = registry.default_ref()
    used = registry.resolve(None).ref if chosen is None else chosen
    if json_output:
        print_json({"default": chosen, "used": used})
        return
    if chosen is None:
        print(f"no default set; commands use {used} (the newest version, or builtin)")
    else:
        print(f"default model: {chosen}")
    from mnistctl.paths import ENV_MODEL

    if os.environ.get(ENV_MODEL, "").strip():
        hint(f"note: {ENV_MODEL}={os.environ[ENV_MODEL].strip()} is set and comes first")


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(metavar="REF", help="NAME, NAME:VERSION or NAME@ALIAS.")],
    json_output: JsonFlag = False,
) -> None:
    """Show a version: hyper-parameters, metrics, layers, artifacts."""
    version = _registry().resolve(ref)
    if json_output:
        print_json(version_document(version))
        return
    params = version.params
    facts = [
        ("model", version.ref + (f" ({', '.join('@' + a for a in version.aliases)})" if version.aliases else "")),
    ]
    if version.damaged:
        facts.append(("DAMAGED", f"{', '.join(version.damaged)} unreadable; remove it with models rm {version.ref}"))
    facts += [("arch", version.arch), ("created", version.created_at)]
    facts += [("parent", f"fine-tuned from {params['parent'].get('ref')}")] if params.get("parent") else []
    source = params.get("arch_source")
    if isinstance(source, dict) and source:
        where = str(source.get("path", "?")) + (f":{source['function']}" if source.get("function") else "")
        facts.append(("source", f"{where}, sha256 {source.get('sha256', '?')}"))
    if version.arch == "imported":
        facts.append(("imported", _import_fact(params)))
    else:
        facts.append(
            (
                "trained",
                f"{_count(params.get('epochs'))} {_epochs_word(params.get('epochs'))}, "
                f"batch {_count(params.get('batch_size'))}, "
                f"{params.get('optimizer')} lr {params.get('learning_rate')}, seed {params.get('seed')}",
            )
        )
        facts.append(
            (
                "data",
                f"{_count(params.get('train_samples', '-'))} train / {_count(params.get('val_samples', '-'))} "
                f"validation images, fingerprint {version.data_fingerprint[:12] or '-'}",
            )
        )
    calibration = params.get("calibration")
    if version.arch == "imported" and calibration is None:
        facts.append(("calibration", "none (imported models are not calibrated): confidences are the network's own"))
    else:
        facts.append(("calibration", _calibration_fact(calibration)))
    facts += [
        (key, f"{value:.4f}" if isinstance(value, float) else _count(value)) for key, value in version.metrics.items()
    ]
    for evaluation in version.evaluations:
        facts.append(
            (
                f"evaluated ({evaluation['split']})",
                f"accuracy {_number(evaluation.get('accuracy'))} at {evaluation['created_at']}"
                + _how_folder_was_read(evaluation),
            )
        )
    facts += [(kind, f"{a.bytes:,} bytes, sha256 {a.sha256[:12]}") for kind, a in sorted(version.artifacts.items())]
    env = version.environment
    facts.append(("built with", ", ".join(f"{k} {env[k]}" for k in ("mnistctl", "tensorflow", "keras") if k in env)))
    print_table(None, ("", ""), facts)
    print()
    layer_rows = [
        (
            layer.get("name", "?"),
            layer.get("type", "?"),
            str(tuple(layer["output_shape"])) if layer.get("output_shape") else "?",
            _count(layer.get("params", "?")),
        )
        for layer in version.layers
    ]
    total = sum(layer.get("params", 0) for layer in version.layers)
    layer_rows.append(("total", "", "", f"{total:,}"))
    print_table(None, ("layer", "type", "output shape", "params"), layer_rows)
    if isinstance(source, dict) and isinstance(source.get("text"), str):
        _print_source(source["text"], version.ref)


@app.command("alias")
def alias(
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to point at.")],
    name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. best (then use NAME@best).")],
    json_output: JsonFlag = False,
) -> None:
    """Point NAME@ALIAS at a version (moves the alias if it exists)."""
    version = _registry().set_alias(ref, name)
    if json_output:
        print_json({"alias": f"{version.name}@{name}", "model": version.ref})
        return
    print(f"{version.name}@{name} -> {version.ref}")


@app.command("rm")
def remove(
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Delete a version, its aliases, and artifacts nothing else uses."""
    registry = _registry()
    version = registry.resolve(ref)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {version.ref} without confirmation", hint="pass --yes")
        answer = _ask(f"Delete {version.ref} ({version.arch}, test accuracy {_accuracy(version)})?")
        if answer is None:
            raise MnistctlError(
                "no answer (end of input)", hint=f"{version.ref} not removed; pass --yes to remove without asking"
            )
        if not answer:
            # Exit 1, as apt and dnf do: "models rm X && next-step" must not go on as if X were gone.
            hint(f"not removed: {version.ref}")
            raise typer.Exit(1)
    removed, plan = registry.remove(version.ref)
    if json_output:
        print_json({"removed": removed.ref, "freed_bytes": plan.bytes, "blobs": [str(p) for p in plan.paths]})
        return
    print(f"removed {removed.ref}; freed {plan.bytes:,} bytes")


def _ask(question: str) -> bool | None:
    """Ask a yes/no question on the terminal (stderr, so that stdout keeps only results): True for y/yes, False for
    n/no/Enter, None at end of input (Ctrl-D). Ctrl-C ends the line first, so that "Error: interrupted" gets its own."""
    while True:
        try:
            print(f"{question} [y/N]: ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
        except KeyboardInterrupt:
            print(file=sys.stderr)
            raise
        if not answer:
            print(file=sys.stderr)
            return None
        answer = answer.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        hint("answer y or n")


@app.command("gc")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Delete artifact blobs that no version references.

    Interrupted registrations can leave such blobs behind.
    """
    plan = _registry().gc(dry_run=dry_run)
    if json_output:
        print_json({"dry_run": dry_run, "bytes": plan.bytes, "blobs": [str(p) for p in plan.paths]})
        return
    verb = "would free" if dry_run else "freed"
    for path in plan.paths:
        hint(str(path))
    print(f"{verb} {plan.bytes:,} bytes in {len(plan.paths)} unreferenced blobs")


@app.command("export")
def export(
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to export.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Where to write it.")],
    format: Annotated[
        ExportFormat | None,
        typer.Option("--format", "-f", help="File format (default: from PATH's suffix: .keras, .h5, .tflite)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite PATH: a file, or a folder holding an earlier SavedModel export.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Write a version's model as .keras, .h5, .tflite or a SavedModel.

    A SavedModel is written as a folder. PATH's suffix must match the format, and nothing is written inside
    the home folder. The exported model gives the network's own probabilities: calibration stays in the registry.
    """
    from mnistctl.model_io import check_export_target, export_model, export_notes

    registry = _registry()
    # Before the ref is looked up: a PATH that cannot be written costs nothing.
    fmt = check_export_target(output, None if format is None else format.value, force=force, home=registry.root)
    version = registry.resolve(ref)
    export_model(registry, version, fmt, output, force=force)
    for note in export_notes(version):
        hint(note)
    if json_output:
        print_json({"model": version.ref, "format": fmt, "path": str(output)})
        return
    print(f"exported {version.ref} as {fmt} to {output}")


@app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A .keras or .h5 model file.")],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Register as NAME.")],
    unsafe: Annotated[
        bool, typer.Option("--unsafe", help="Allow Lambda layers and other code in the file (trusted files only).")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Register a Keras model file as a new version.

    The model must take 28x28 digits and give 10 class probabilities.
    """
    from mnistctl.model_io import import_model_file, import_notes

    version = import_model_file(path, name=name, unsafe=unsafe)
    for note in import_notes(version):
        hint(note)
    if json_output:
        print_json(version_document(version))
        return
    print(f"registered {version.ref}: test accuracy {_accuracy(version)}")


# `models show` prints this many lines of a user architecture's source; --json has all of it.
SHOWN_SOURCE_LINES = 60


def _print_source(text: str, ref: str) -> None:
    """The architecture file the version was trained from, as recorded (its first lines when long)."""
    lines = text.splitlines()
    print()
    print("source:")
    for line in lines[:SHOWN_SOURCE_LINES]:
        print(f"  {line}")
    if len(lines) > SHOWN_SOURCE_LINES:
        hint(
            f"… {len(lines) - SHOWN_SOURCE_LINES:,} more lines; "
            f'"mnistctl models show {ref} --json" has all of it (params.arch_source.text)'
        )


def _calibration_fact(calibration: Any) -> str:
    """The temperature and where it came from, or why there is none (versions from before calibration)."""
    if not isinstance(calibration, dict):
        return "none (registered before calibration existed): confidences are the network's own"
    if not calibration.get("fitted_on"):
        return f"none ({calibration.get('reason', 'no held-out images')}): confidences are the network's own"
    return (
        f"temperature {calibration['temperature']:.3f}, fitted on {calibration['images']:,} held-out images"
        f" (calibration error {calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f})"
    )


def _epochs_word(epochs: Any) -> str:
    return "epoch" if epochs == 1 else "epochs"


def _import_fact(params: dict[str, Any]) -> str:
    """Where an imported model came from, and what was added to it."""
    fact = f"from {params.get('source', '?')} (sha256 {str(params.get('source_sha256', '?'))[:12]})"
    if params.get("added_softmax"):
        fact += ", softmax added (the file ends in logits)"
    if params.get("unsafe"):
        fact += ", loaded with --unsafe"
    return fact


class CompareSplit(str, Enum):
    test = "test"
    train = "train"


SHOWN_DEFAULT = 10  # images listed per side by "models compare" unless --show says otherwise


@app.command("compare")
def compare(
    ref_a: Annotated[str, typer.Argument(metavar="A", help="The first version (NAME, NAME:VERSION or NAME@ALIAS).")],
    ref_b: Annotated[str, typer.Argument(metavar="B", help="The second version; differences are B minus A.")],
    split: Annotated[CompareSplit, typer.Option(help="Which MNIST images both models answer.")] = CompareSplit.test,
    show: Annotated[
        int,
        typer.Option(
            "--show", min=0, metavar="N", help="How many images to list that one gets right, the other wrong."
        ),
    ] = SHOWN_DEFAULT,
    json_output: JsonFlag = False,
) -> None:
    """Compare two versions on the same MNIST images, with McNemar's test.

    Both accuracies and the paired difference with its 95% interval, the right/wrong table, McNemar's exact
    (binomial, two-sided) test, per-digit accuracy, and the images one gets right and the other wrong.
    Both run their .tflite through LiteRT.
    """
    import time

    from mnistctl.compare import ALPHA, verdict
    from mnistctl.compare import compare as compare_answers
    from mnistctl.data.loader import load
    from mnistctl.inference import Predictor, litert_available

    registry = _registry()
    version_a, version_b = registry.resolve(ref_a), registry.resolve(ref_b)
    for version in (version_a, version_b):
        version.check_usable()
    if not litert_available():
        raise MnistctlError(
            "models compare runs models with LiteRT (ai-edge-litert), which is not installed here",
            hint="install ai-edge-litert (it has wheels for Linux x86-64/aarch64 and macOS arm64)",
        )
    for version in (version_a, version_b):
        if "model.tflite" not in version.artifacts:
            raise MnistctlError(f"{version.ref} has no model.tflite, which models compare runs", hint="choose another")
    images, labels = load(split.value)
    started = time.perf_counter()
    probabilities_a = Predictor(registry, version_a, backend="litert").predict(images, calibrate=False)
    if version_b.ref == version_a.ref:
        probabilities_b = probabilities_a
    else:
        probabilities_b = Predictor(registry, version_b, backend="litert").predict(images, calibrate=False)
    seconds = time.perf_counter() - started
    result = compare_answers(labels, probabilities_a, probabilities_b)
    (both_right, a_only), (b_only, both_wrong) = result.table
    p = result.p_value
    difference, low, high = result.difference()
    line = verdict(p, a_only, b_only, version_a.ref, version_b.ref)

    def listed(indices: Any) -> list[dict[str, int]]:
        return [
            {
                "index": int(i),
                "label": int(result.labels[i]),
                "a": int(result.predicted_a[i]),
                "b": int(result.predicted_b[i]),
            }
            for i in indices
        ]

    only_a, only_b = listed(result.only_a_right(show)), listed(result.only_b_right(show))
    if json_output:
        print_json(
            {
                "a": {"model": version_a.ref, "accuracy": result.accuracy_a, "correct": both_right + a_only},
                "b": {"model": version_b.ref, "accuracy": result.accuracy_b, "correct": both_right + b_only},
                "split": split.value,
                "images": result.images,
                "backend": "litert",
                "seconds": round(seconds, 3),
                "difference": {"b_minus_a": difference, "low": low, "high": high, "confidence": 0.95},
                "table": {
                    "both_right": both_right,
                    "a_right_b_wrong": a_only,
                    "a_wrong_b_right": b_only,
                    "both_wrong": both_wrong,
                },
                "mcnemar": {
                    "test": "exact binomial, two-sided",
                    "discordant": a_only + b_only,
                    "p_value": p,
                    "alpha": ALPHA,
                    "significant": p < ALPHA,
                },
                "verdict": line,
                "per_class": [
                    {
                        "digit": row.digit,
                        "images": row.support,
                        "accuracy_a": row.accuracy_a,
                        "accuracy_b": row.accuracy_b,
                        "difference": row.difference,
                    }
                    for row in result.per_class()
                ],
                "a_right_b_wrong": {"count": a_only, "shown": only_a},
                "b_right_a_wrong": {"count": b_only, "shown": only_b},
            }
        )
        return
    n = result.images
    print(f"{n:,} {split.value} {'image' if n == 1 else 'images'} (litert, {seconds:.2f} s)")
    print_table(
        None,
        ("", "model", "accuracy", "right"),
        [
            ("A", version_a.ref, f"{result.accuracy_a:.4f}", f"{both_right + a_only:,}"),
            ("B", version_b.ref, f"{result.accuracy_b:.4f}", f"{both_right + b_only:,}"),
        ],
    )
    print(f"B - A: {difference:+.4f} (95% CI {low:+.4f} to {high:+.4f}, paired)")
    print()
    print_table(
        None,
        ("", "B right", "B wrong"),
        [("A right", f"{both_right:,}", f"{a_only:,}"), ("A wrong", f"{b_only:,}", f"{both_wrong:,}")],
    )
    print()
    print(f"McNemar's exact test on {a_only + b_only:,} discordant images ({a_only:,} vs {b_only:,}): p = {p:.4g}")
    print(line)
    print()
    print_table(
        None,
        ("digit", "images", "A", "B", "B - A"),
        [
            (
                row.digit,
                f"{row.support:,}",
                _number(row.accuracy_a),
                _number(row.accuracy_b),
                "-" if row.difference is None else f"{row.difference:+.4f}",
            )
            for row in result.per_class()
        ],
    )
    for title, count, rows in (("A right, B wrong", a_only, only_a), ("B right, A wrong", b_only, only_b)):
        print()
        shown = f", first {len(rows):,}" if len(rows) < count else ""
        print(f"{title}: {count:,} {'image' if count == 1 else 'images'}{shown}")
        if rows:
            print_table(None, ("index", "label", "A says", "B says"), [_answer_row(row) for row in rows])


def _answer_row(row: dict[str, int]) -> tuple[str, str, str, str]:
    """An image's index, label and the two models' digits ("-" where a model gave no answer)."""
    return (
        f"{row['index']}",
        f"{row['label']}",
        "-" if row["a"] < 0 else f"{row['a']}",
        "-" if row["b"] < 0 else f"{row['b']}",
    )
