"""Run every `ssjf` command and option that needs an extra, in a venv with the core only.

Not a pytest file (pytest collects test_*.py only): `.ci/check_wheel.sh` runs it with
the fresh venv's Python, from a directory outside the checkout. Standard library only.
Each case must exit with status 2 and print exactly one line on stderr that names the
extra to install, without a traceback, before it reads any data (the data files
named below do not exist). A few commands that need no extra must still work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
MISSING = "/nonexistent/data.jsonl"  # read only if a check came too late


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ssjf"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def saved(root: Path, family: str) -> str:
    """A directory that names ``family`` in config.json (all a check reads; no weights)."""
    d = root / f"pred-{family}"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"family": family, "format": 1, "params": {}}))
    return str(d)


def cases(root: Path) -> list[tuple[list[str], str]]:
    """(arguments, extra the error must name)."""
    tfidf, embed, tuned = saved(root, "tfidf"), saved(root, "embed-ridge"), saved(root, "finetune")
    sim = ["simulate", "-w", f"jsonl:{MISSING}"]
    return [
        (["serve", "--upstream", "http://127.0.0.1:9"], "gateway"),
        (["serve", "--upstream", "http://127.0.0.1:9", "--predictor", tfidf], "gateway"),
        (["bench", "gateway-overhead", "--upstream", "http://127.0.0.1:9"], "gateway"),
        (["bench", "serve", "--predictor", "none"], "gateway"),
        (["bench", "serve"], "encoders"),  # default predictor tfidf-embed
        (["bench", "serve", "--predictor", "tfidf", "--export-only"], "predict"),
        (["train", "--data", MISSING, "--out", str(root / "o")], "predict"),
        (["train", "--data", MISSING, "--out", str(root / "o"), "--family", "constant"], "predict"),
        (
            ["train", "--data", MISSING, "--out", str(root / "o"), "--family", "embed-ridge"],
            "encoders",
        ),
        (
            ["train", "--data", MISSING, "--out", str(root / "o"), "--family", "finetune-bucket"],
            "finetune",
        ),
        (["train", "--data", "lmsys:" + MISSING, "--out", str(root / "o")], "finetune"),
        (["evaluate", tfidf, "--data", MISSING], "predict"),
        (["evaluate", embed, "--data", MISSING], "encoders"),
        (["evaluate", tfidf, "--data", "lmsys"], "finetune"),
        (["evaluate", str(root / "no-such-dir"), "--data", MISSING], "predict"),
        (["predict", tfidf, "--input", MISSING, "--output", str(root / "p.jsonl")], "predict"),
        (["predict", tuned, "--input", MISSING, "--output", str(root / "p.jsonl")], "finetune"),
        ([*sim, "--predictor", tfidf], "predict"),
        ([*sim, "--predictor", embed], "encoders"),
        ([*sim, "--plot", str(root / "figs")], "plot"),
        ([*sim, "--records", str(root / "r.parquet")], "parquet"),
        (["demo"], "predict"),  # its default predictor is tfidf
        (["demo", "--predictor", "tfidf-embed"], "encoders"),
        (["demo", "--predictor", "constant", "--plot", str(root / "figs")], "plot"),
        (["bench", "predictor"], "finetune"),  # the defaults include finetune-bucket
        (["bench", "predictor", "--families", "tfidf"], "predict"),
        (["bench", "predictor", "--families", "constant,finetune"], "finetune"),
    ]


def works(root: Path) -> list[list[str]]:
    """Commands that need no extra."""
    return [
        ["--help"],
        ["policies"],
        ["families"],
        [
            "simulate",
            "-w",
            "synthetic",
            "-n",
            "200",
            "--seeds",
            "1",
            "--records",
            str(root / "r.csv"),
        ],
        ["demo", "--predictor", "constant", "-n", "200", "--seeds", "1"],
        ["bench", "sim-speed", "--requests", "2000", "--reference-requests", "200"],
    ]


def main() -> int:
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ssjf-core-only-") as tmp:
        root = Path(tmp)
        for args, extra in cases(root):
            res = run(args, root)
            lines = res.stderr.strip().splitlines()
            want = f"pip install 'ssjf[{extra}]'"
            problems = []
            if res.returncode != 2:
                problems.append(f"exit {res.returncode}, expected 2")
            if len(lines) != 1:
                problems.append(f"{len(lines)} stderr lines, expected 1")
            if not lines or not lines[0].startswith("error: ") or want not in lines[0]:
                problems.append(f"stderr does not name {want!r}")
            if "Traceback" in res.stderr + res.stdout:
                problems.append("traceback")
            status = "ok  " if not problems else "FAIL"
            print(f"{status} ssjf {' '.join(args)}\n     {lines[0] if lines else '(no stderr)'}")
            if problems:
                failures.append(f"ssjf {' '.join(args)}: {'; '.join(problems)}\n{res.stderr}")
        for args in works(root):
            res = run(args, root)
            print(f"{'ok  ' if res.returncode == 0 else 'FAIL'} ssjf {' '.join(args)} (no extra)")
            if res.returncode != 0:
                failures.append(f"ssjf {' '.join(args)}: exit {res.returncode}\n{res.stderr}")
    for f in failures:
        print(f"\nFAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
