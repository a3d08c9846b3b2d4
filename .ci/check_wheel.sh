#!/usr/bin/env bash
# Does the built package install and run like a user's `pip install ssjf`, away from the checkout?
#   1. `python -m build`: sdist, then a wheel built from that sdist (so the sdist is complete);
#   2. a fresh venv outside the checkout with the wheel alone (no extras): `import ssjf`,
#      `ssjf --version`, and tests/packaging/core_only_cli.py (every command that needs an
#      extra fails with one line naming it, exit 2, no traceback);
#   3. the wheel's [predict] extra into the same venv, then `ssjf demo` (no data directory:
#      its synthetic workload) must succeed.
# Run from anywhere; PYTHON picks the interpreter that builds (it needs `build`, in the dev
# extra) and creates the venv. Uses the pip cache; ~1-2 min.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ssjf-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { printf '\n== %s\n' "$*"; }

say "build sdist and wheel"
"$PYTHON" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || {
	cat "$work/build.log"
	exit 1
}
wheel="$(ls "$work"/dist/ssjf-*.whl)"
ls "$work/dist"

say "fresh venv, core only"
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q)
"${pip[@]}" "$wheel"

# A new user's machine: not in the checkout, no data directory, an empty ssjf cache.
cd "$work"
unset SSJF_DATA_DIR PYTHONPATH
export SSJF_CACHE_DIR="$work/cache" HF_HUB_OFFLINE=1
py="$work/venv/bin/python"
ssjf="$work/venv/bin/ssjf"

"$py" -c "import ssjf, ssjf.cli, ssjf.predict; assert '$root' not in ssjf.__file__, ssjf.__file__"
version="$("$ssjf" --version)"
expected="ssjf $(basename "$wheel" | cut -d- -f2)"
[[ "$version" == "$expected" ]] || {
	echo "ssjf --version printed '$version', expected '$expected'"
	exit 1
}
echo "$version"

say "commands that need an extra, core only"
"$py" "$root/tests/packaging/core_only_cli.py"

say "with [predict]: ssjf demo"
"${pip[@]}" "$wheel[predict]"
"$py" -c "import importlib.util as u; assert u.find_spec('torch') is None, '[predict] pulled torch'"
"$ssjf" demo >"$work/demo.log" 2>&1 || {
	cat "$work/demo.log"
	exit 1
}
grep -E "^(data|predictor)|wall time" "$work/demo.log"

say "with [predict]: train, evaluate, simulate --predictor on a small log"
# 400 requests whose output length follows a word in the prompt: something to learn.
"$py" - "$work/log.jsonl" <<'PY'
import json, random, sys
rng = random.Random(0)
sizes = {"one line": 20, "a paragraph": 120, "an essay": 600}
with open(sys.argv[1], "w") as fh:
    for i in range(400):
        size = rng.choice(sorted(sizes))
        prompt = f"request {i}: write {size} about topic {rng.randrange(50)}"
        tokens = int(sizes[size] * rng.uniform(0.7, 1.3))
        row = {"prompt": prompt, "output_tokens": tokens, "model": "m"}
        fh.write(json.dumps({**row, "prompt_tokens": len(prompt) // 4}) + "\n")
PY
for step in "train --data log.jsonl --out pred --eval-frac 0.25" \
	"evaluate pred --data log.jsonl --no-latency" \
	"simulate -w jsonl:log.jsonl --predictor pred -n 300 --seeds 1 -p fcfs,ssjf"; do
	# shellcheck disable=SC2086  # the step is a list of arguments
	"$ssjf" $step >"$work/step.log" 2>&1 || {
		echo "ssjf $step failed:"
		cat "$work/step.log"
		exit 1
	}
	echo "ok ssjf $step"
done
grep -E "^│ *(fcfs|ssjf) " "$work/step.log" | cut -c1-100
say "wheel check passed"
