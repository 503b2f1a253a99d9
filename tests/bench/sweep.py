"""A hostile sweep: bad inputs and faults against the installed ``mnistctl``, each in a fresh subprocess.

Every case must end within its time limit, with the expected exit code, no traceback, at most one
``Error:`` line, strict JSON where ``--json`` was asked for, a peak memory under its limit, nothing
written outside the home folder, and the registry and data as they were unless the case changes them.

Run: python -m tests.bench.sweep [--keep DIR]     (about 5 minutes on 2 cores; prints a table)
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import measured
from tests.synthetic import make_dataset, write_npz

ENTRY = str(Path(sys.executable).with_name("mnistctl"))
MB = 1 << 20


@dataclass
class Case:
    name: str
    args: list[str]
    codes: tuple[int, ...]  # acceptable exit codes
    says: str = ""  # the stderr (or stdout) must contain this, case-insensitively
    home: str = "trained"  # "trained", "empty" or "data"
    stdin: Callable[[Path], object] | None = None
    setup: Callable[[Path, Path], None] | None = None  # (home, workdir)
    check: Callable[[Path, Path], str] | None = None  # returns "" when fine, else what is wrong
    timeout: float = 120.0
    max_rss_mb: float = 1500.0
    interrupt_after: float | None = None  # send SIGINT after this many seconds
    changes_registry: bool = False
    env: dict[str, str] = field(default_factory=dict)


def digit_png(path: Path) -> Path:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:23, 13:16] = 255
    Image.fromarray(pixels).save(path)
    return path


def registry_rows(home: Path) -> list[tuple]:
    db = home / "registry.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT id, name, version, params, metrics FROM versions ORDER BY id").fetchall()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime (what a stray write would change)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def run_case(case: Case, homes: dict[str, Path], scratch: Path) -> dict:
    work = Path(tempfile.mkdtemp(dir=scratch, prefix="work-"))
    home = work / "home"
    if homes.get(case.home) is not None:
        shutil.copytree(homes[case.home], home)
    outside = work / "outside"  # HOME and the working directory: nothing may appear here
    outside.mkdir()
    if case.setup is not None:
        case.setup(home, outside)
    digit_png(outside / "digit.png")
    before_outside = snapshot(outside)
    before_rows = registry_rows(home)
    env = {
        **os.environ,
        "MNISTCTL_HOME": str(home),
        "HOME": str(outside),
        "MNISTCTL_NO_DEFAULT_MIRRORS": "1",
        "KERAS_HOME": str(outside / ".keras"),
        "MPLCONFIGDIR": str(work / "mpl"),
        **case.env,
    }
    env.pop("MNISTCTL_MODEL", None)
    args = [a.replace("{work}", str(outside)).replace("{home}", str(home)) for a in case.args]
    stdin = case.stdin(outside) if case.stdin is not None else subprocess.DEVNULL
    started = time.monotonic()
    rss_file = work / "peak-rss"
    process = subprocess.Popen(
        measured(rss_file, [ENTRY, *args]),
        cwd=outside,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if case.interrupt_after is not None:
        time.sleep(case.interrupt_after)
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    try:
        stdout, stderr = process.communicate(timeout=case.timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        hung = True
    seconds = time.monotonic() - started
    peak_mb = float(rss_file.read_text()) / 1024 if rss_file.exists() else None  # ru_maxrss is in KiB
    problems = []
    text = stderr.decode(errors="replace")
    if hung:
        problems.append(f"hung (> {case.timeout:.0f} s)")
    if process.returncode not in case.codes:
        problems.append(f"exit {process.returncode}, expected {case.codes}")
    if "Traceback" in text:
        problems.append("traceback")
    if sum(line.startswith("Error:") for line in text.splitlines()) > 1:
        problems.append("several Error: lines")
    if case.says and case.says.lower() not in (text + stdout.decode(errors="replace")).lower():
        problems.append(f"does not say {case.says!r}")
    if "--json" in args and stdout.strip():
        try:
            json.loads(stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as exc:
            problems.append(f"stdout is not strict JSON ({exc})")
    if peak_mb is not None and peak_mb > case.max_rss_mb:
        problems.append(f"peak memory {peak_mb:.0f} MB > {case.max_rss_mb:.0f}")
    strays = sorted(
        set(snapshot(outside)) - set(before_outside) - {".keras"} - {p for p in snapshot(outside) if p.startswith(".")}
    )
    allowed = {a.replace("{work}/", "") for a in case.args if a.startswith("{work}/")}
    strays = [s for s in strays if s not in allowed and not any(s.startswith(a + "/") for a in allowed)]
    if strays:
        problems.append(f"wrote outside the home: {strays[:3]}")
    if not case.changes_registry and registry_rows(home) != before_rows:
        problems.append("registry changed")
    if case.check is not None:
        problem = case.check(home, outside)
        if problem:
            problems.append(problem)
    shutil.rmtree(work, ignore_errors=True)
    first_error = next((line for line in text.splitlines() if line.startswith("Error:")), "")
    return {
        "case": case.name,
        "exit": process.returncode,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "ok": not problems,
        "problems": "; ".join(problems),
        "message": first_error[:110],
    }


# -- hostile material ------------------------------------------------------------------------------------------


def gzip_bomb_folder(home: Path, work: Path) -> None:
    """Four IDX files whose train-images.gz inflates to 1 GB of zeros behind a valid 60,000-image header."""
    folder = work / "bomb"
    folder.mkdir()
    data = make_dataset(train=60, test=20)
    from mnistctl.data.idx import to_idx

    for name, key in (
        ("train-labels-idx1-ubyte", "y_train"),
        ("t10k-images-idx3-ubyte", "x_test"),
        ("t10k-labels-idx1-ubyte", "y_test"),
    ):
        (folder / f"{name}.gz").write_bytes(gzip.compress(to_idx(data[key]), mtime=0))
    header = to_idx(np.zeros((60, 28, 28), np.uint8))[:16]
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as sink:
        sink.write(header)
        zeros = bytes(16 * MB)
        for _ in range(64):
            sink.write(zeros)


def npz_bomb(home: Path, work: Path) -> None:
    """An npz whose x_train header claims 2.7 M images (a few MB compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, shape in (
            ("x_train", (2_700_000, 28, 28)),
            ("y_train", (2_700_000,)),
            ("x_test", (10, 28, 28)),
            ("y_test", (10,)),
        ):
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.uint8))
                header["shape"] = shape
                np.lib.format.write_array_header_1_0(member, header)
                remaining = int(np.prod(shape))
                block = bytes(16 * MB)
                while remaining > 0:
                    member.write(block[: min(remaining, len(block))])
                    remaining -= len(block)
    (work / "bomb.npz").write_bytes(buffer.getvalue())


def keras_config_bomb(home: Path, work: Path) -> None:
    """A .keras whose config.json is 256 MB of whitespace before a small valid config."""
    with zipfile.ZipFile(work / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w", force_zip64=True) as member:
            block = b" " * (16 * MB)
            for _ in range(16):
                member.write(block)
            member.write(b"{}")
        archive.writestr("metadata.json", "{}")


def empty_file(name: str) -> Callable[[Path, Path], None]:
    return lambda home, work: (work / name).write_bytes(b"")


def text_file(name: str, content: bytes) -> Callable[[Path, Path], None]:
    return lambda home, work: (work / name).write_bytes(content)


def big_rgba(home: Path, work: Path) -> None:
    image = Image.new("RGBA", (6300, 6300), (255, 255, 255, 255))
    from PIL import ImageDraw

    ImageDraw.Draw(image).line([(2000, 1500), (4300, 1500), (3000, 4800)], fill=(0, 0, 0, 255), width=300)
    image.save(work / "big.png", compress_level=1)


def png_bomb_header(home: Path, work: Path) -> None:
    from tests.photos import huge_png

    (work / "bomb.png").write_bytes(huge_png(60000, 60000))


def strip_png(home: Path, work: Path) -> None:
    from tests.test_predict_limits import blank_png

    (work / "strip.png").write_bytes(blank_png(40_000_000, 1, "RGBA"))


def unicode_name(home: Path, work: Path) -> None:
    digit_png(work / "ünï€.png")


def damage_params(home: Path, work: Path) -> None:
    with sqlite3.connect(home / "registry.db") as db:
        db.execute("UPDATE versions SET params = '{x'")


def stale_tmp(home: Path, work: Path) -> None:
    folder = home / "datasets" / "mnist"
    stale = folder / "train-images-idx3-ubyte.gz.0123456789ab.tmp"
    stale.write_bytes(b"x" * 1000)
    old = time.time() - 7 * 24 * 3600
    os.utime(stale, (old, old))


def no_stale_tmp(home: Path, work: Path) -> str:
    left = list((home / "datasets" / "mnist").glob("*.tmp"))
    return f"stale temp files left: {[p.name for p in left]}" if left else ""


def models_file(kind: str) -> Callable[[Path, Path], None]:
    def make(home: Path, work: Path) -> None:
        script = f"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
kind = {kind!r}
inputs = keras.Input((28, 28))
x = keras.layers.Flatten()(inputs)
if kind == "two_outputs":
    model = keras.Model(inputs, [keras.layers.Dense(10, activation="softmax")(x), keras.layers.Dense(10)(x)])
elif kind == "logits":
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
elif kind == "unbuilt":
    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
elif kind == "nan":
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    weights = model.get_weights(); weights[0][:] = np.nan; model.set_weights(weights)
model.save(sys.argv[1])
"""
        subprocess.run([sys.executable, "-c", script, str(work / f"{kind}.keras")], check=True, capture_output=True)

    return make


def cases() -> list[Case]:
    return [
        # refs
        Case("rm empty ref", ["models", "rm", "", "--yes"], (2,)),
        Case("rm blank ref", ["models", "rm", " ", "--yes"], (2,)),
        Case("show huge version", ["models", "show", "mlp:999999999999999999999"], (2,)),
        Case("show negative version", ["models", "show", "mlp:-1"], (2,)),
        Case("show version zero", ["models", "show", "mlp:0"], (2,)),
        Case("show unicode digit", ["models", "show", "mlp:²"], (2,)),
        Case("show name with newline", ["models", "show", "mlp\n"], (2,)),
        Case("show empty alias", ["models", "show", "mlp@"], (2,)),
        Case("show no name", ["models", "show", "@best"], (2,)),
        Case("builtin:2", ["predict", "--model", "builtin:2", "digit.png"], (1, 2), "builtin"),
        Case("builtin@x", ["predict", "--model", "builtin@x", "digit.png"], (1, 2), "builtin"),
        Case("unknown model names builtin", ["models", "show", "nosuch"], (1,), "builtin"),
        Case("alias to empty", ["models", "alias", "mlp:1", ""], (2,)),
        Case("alias that is a number", ["models", "alias", "mlp:1", "7"], (2,)),
        Case("alias builtin", ["models", "alias", "builtin", "best"], (2,)),
        Case("rm builtin", ["models", "rm", "builtin", "--yes"], (2,)),
        Case("default empty", ["models", "default", ""], (2,)),
        Case("import as builtin", ["models", "import", "digit.png", "--name", "builtin"], (2,)),
        # numbers
        Case("train huge seed", ["train", "--arch", "mlp", "--seed", str(2**70)], (2,), home="data"),
        Case("train huge epochs", ["train", "--arch", "mlp", "--epochs", str(10**30)], (2,), home="data"),
        Case("train batch 0", ["train", "--arch", "mlp", "--batch-size", "0"], (2,), home="data"),
        Case("train val-split 1.5", ["train", "--arch", "mlp", "--val-split", "1.5"], (2,), home="data"),
        Case("train lr nan", ["train", "--arch", "mlp", "--lr", "nan"], (2,), home="data"),
        Case("train lr inf", ["train", "--arch", "mlp", "--lr", "inf"], (2,), home="data"),
        Case("train empty name", ["train", "--arch", "mlp", "--name", ""], (2,), home="data"),
        Case("train name with slash", ["train", "--arch", "mlp", "--name", "../x"], (2,), home="data"),
        Case("inspect wrong 10^20", ["inspect", "--wrong", str(10**20)], (0, 2)),
        Case("predict top-k 0", ["predict", "--top-k", "0", "digit.png"], (2,)),
        Case("predict min-confidence 2", ["predict", "--min-confidence", "2", "digit.png"], (2,)),
        # images
        Case("predict 0-byte png", ["predict", "empty.png", "digit.png"], (1,), "empty", setup=empty_file("empty.png")),
        Case("predict text as png", ["predict", "t.png"], (1,), setup=text_file("t.png", b"hello")),
        Case("predict pixel bomb", ["predict", "bomb.png"], (1,), "limit", setup=png_bomb_header),
        Case("predict 6300x6300 RGBA", ["predict", "big.png"], (0,), max_rss_mb=300, setup=big_rgba, timeout=180),
        Case(
            "predict stdin /dev/zero",
            ["predict", "digit.png", "-"],
            (1,),
            "limit",
            stdin=lambda work: open("/dev/zero", "rb"),
            max_rss_mb=400,
        ),
        Case("predict json strict", ["predict", "--json", "digit.png", "nosuch.png"], (1,)),
        Case("predict 40Mx1 strip", ["predict", "strip.png"], (1,), "strip", setup=strip_png, max_rss_mb=300),
        Case("predict path too long", ["predict", "digit.png", "a" * 300 + ".png"], (1,), "too long"),
        Case(
            "predict ascii stdout", ["predict", "ünï€.png"], (0,), setup=unicode_name, env={"PYTHONIOENCODING": "ascii"}
        ),
        Case(
            "predict folder without images",
            ["predict", "notes"],
            (1,),
            "no images",
            setup=lambda home, work: (work / "notes").mkdir() or (work / "notes" / "a.txt").write_text("x"),
        ),
        Case("predict min-confidence nan", ["predict", "--min-confidence", "nan", "digit.png"], (2,)),
        Case("train val-split nan", ["train", "--arch", "mlp", "--val-split", "nan"], (2,), home="data"),
        # data
        Case("download gzip bomb", ["download", "--from", "bomb"], (1,), setup=gzip_bomb_folder, max_rss_mb=600),
        Case("download npz bomb", ["download", "--from", "bomb.npz"], (1,), setup=npz_bomb, max_rss_mb=600),
        Case("download from nothing", ["download", "--from", "nosuch.npz"], (1, 2)),
        Case(
            "download refused mirror",
            ["download", "--mirror", "http://127.0.0.1:9/", "--retries", "0", "--timeout", "2"],
            (1,),
            home="empty",
        ),
        Case(
            "stale tmp removed by download",
            ["download", "--mirror", "http://127.0.0.1:9/", "--retries", "0"],
            (0,),
            home="data",
            setup=stale_tmp,
            check=no_stale_tmp,
        ),
        # models
        Case(
            "import 0-byte keras",
            ["models", "import", "e.keras", "--name", "x"],
            (1, 2),
            "empty",
            setup=empty_file("e.keras"),
        ),
        Case(
            "import text keras",
            ["models", "import", "t.keras", "--name", "x"],
            (1, 2),
            setup=text_file("t.keras", b"x"),
        ),
        Case(
            "import config bomb",
            ["models", "import", "bomb.keras", "--name", "x"],
            (1, 2),
            setup=keras_config_bomb,
            max_rss_mb=1200,
        ),
        Case(
            "import two outputs",
            ["models", "import", "two_outputs.keras", "--name", "x"],
            (1, 2),
            setup=models_file("two_outputs"),
            timeout=180,
        ),
        Case(
            "import unbuilt model",
            ["models", "import", "unbuilt.keras", "--name", "x"],
            (1,),
            "input",
            setup=models_file("unbuilt"),
            timeout=180,
        ),
        Case(
            "import nan weights",
            ["models", "import", "nan.keras", "--name", "x"],
            (1, 2),
            setup=models_file("nan"),
            timeout=180,
        ),
        Case(
            "import logits",
            ["models", "import", "logits.keras", "--name", "lg", "--json"],
            (0,),
            setup=models_file("logits"),
            timeout=180,
            changes_registry=True,
        ),
        Case("export into a missing folder", ["models", "export", "mlp", "-o", "{work}/no/such/m.keras"], (0, 1)),
        # registry
        Case("list with damaged row", ["models", "list"], (0,), "damaged", setup=damage_params),
        Case("list json with damaged row", ["models", "list", "--json"], (0,), setup=damage_params),
        Case(
            "predict damaged version",
            ["predict", "--model", "mlp:1", "digit.png"],
            (1,),
            "damaged",
            setup=damage_params,
        ),
        Case(
            "rm damaged version", ["models", "rm", "mlp:1", "--yes"], (0,), setup=damage_params, changes_registry=True
        ),
        Case("home is a file", ["models", "list"], (1,), "not a folder", env={"MNISTCTL_HOME": "/etc/hostname"}),
        Case(
            "train interrupted",
            ["train", "--arch", "mlp", "--epochs", "5000"],
            (130,),
            home="data",
            interrupt_after=15,
            timeout=120,
        ),
    ]


def build_homes(scratch: Path) -> dict[str, Path | None]:
    data = scratch / "home-data"
    npz = write_npz(scratch / "tiny.npz", make_dataset(train=300, test=100))
    env = {**os.environ, "MNISTCTL_HOME": str(data), "MNISTCTL_NO_DEFAULT_MIRRORS": "1"}
    subprocess.run([ENTRY, "download", "--from", str(npz)], env=env, check=True, capture_output=True)
    trained = scratch / "home-trained"
    shutil.copytree(data, trained)
    env["MNISTCTL_HOME"] = str(trained)
    subprocess.run(
        [ENTRY, "train", "--arch", "mlp", "--epochs", "1", "--seed", "1"], env=env, check=True, capture_output=True
    )
    return {"empty": None, "data": data, "trained": trained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mnistctl-sweep-"))
    try:
        homes = build_homes(scratch)
        chosen = [c for c in cases() if not args.only or args.only in c.name]
        results = []
        for case in chosen:
            result = run_case(case, homes, scratch)
            results.append(result)
            mark = "ok" if result["ok"] else "FAIL"
            peak = f"{result['peak_mb']:.0f}" if result["peak_mb"] is not None else "-"
            print(
                f"| {case.name} | {result['exit']} | {result['seconds']:.1f} | {peak} | {mark} "
                f"| {result['problems'] or result['message']} |",
                flush=True,
            )
        failed = [r for r in results if not r["ok"]]
        print(f"\n{len(results) - len(failed)} of {len(results)} cases passed")
        sys.exit(1 if failed else 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
