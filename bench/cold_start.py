"""Import time of app.py (what a Lambda cold start pays before the first event) beside a
hello-world Chalice app that imports boto3, measured in one run.

python -m bench.cold_start [--rounds N] [--output PATH]

Every measurement is a fresh interpreter that times `import app` from inside (the
interpreter's own start-up is the same for both and left out). The cases take turns
round after round, so a machine busy with something else slows them alike; the table
gives medians and the median of the per-round ratios. Target: app.py <= 1.5 x baseline.

Rows:
- baseline: `import boto3; from chalice import Chalice` and one route;
- app.py: this project's app, as Lambda imports it;
- app.py + boto3: the same, then `import boto3` too, the part of the first DynamoDB
  call's cost that app.py defers (an honest upper bound for a route's cold start);
- cold bytecode: app.py with an empty bytecode cache, as in a deployment package that
  ships no .pyc files (Lambda cannot write them next to the code); the standard library
  compiles too here, so these rows overstate the absolute cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cold_start.md"
TARGET_RATIO = 1.5
# Libraries that open connections or build clients; none should be imported by app.py.
NETWORK_LIBRARIES = ("boto3", "botocore.session", "redis", "pika", "aio_pika", "aiormq", "httpx")

HELLO_APP = """\
import boto3
from chalice import Chalice

app = Chalice(app_name="hello")


@app.route("/")
def index():
    return {"hello": "world"}
"""

PROBE = """\
import json, sys, time
started = time.perf_counter()
import app
seconds = time.perf_counter() - started
if {also_boto3}:
    import boto3
    seconds = time.perf_counter() - started
names = {libraries}
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules),
                  "loaded": [n for n in names if n in sys.modules]}}))
"""


@dataclass(frozen=True)
class Case:
    label: str
    directory: Path
    also_boto3: bool = False
    cold_bytecode: bool = False


@dataclass
class Sample:
    seconds: float
    modules: int
    loaded: list[str]


def measure(case: Case, scratch: Path) -> Sample:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "PYTHONPYCACHEPREFIX"))}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if case.cold_bytecode:
        # A fresh, empty cache directory: every module of the app and its packages compiles.
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(dir=scratch)
    probe = PROBE.format(also_boto3=case.also_boto3, libraries=repr(NETWORK_LIBRARIES))
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=case.directory, env=env, capture_output=True, text=True, check=True
    )
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return Sample(data["seconds"], data["modules"], data["loaded"])


def run(rounds: int) -> str:
    with tempfile.TemporaryDirectory(prefix="titan-cold-start-") as tmp:
        scratch = Path(tmp)
        hello = scratch / "hello"
        hello.mkdir()
        (hello / "app.py").write_text(HELLO_APP)
        cases = [
            Case("baseline: hello-world Chalice app importing boto3", hello),
            Case("app.py", ROOT),
            Case("app.py + boto3", ROOT, also_boto3=True),
            Case("app.py, cold bytecode cache", ROOT, cold_bytecode=True),
            Case("baseline, cold bytecode cache", hello, cold_bytecode=True),
        ]
        for case in cases:  # warm the bytecode caches and the file system
            measure(case, scratch)
        samples: dict[str, list[Sample]] = {c.label: [] for c in cases}
        for _ in range(rounds):
            for case in cases:
                samples[case.label].append(measure(case, scratch))
    return report(cases, samples, rounds)


def report(cases: list[Case], samples: dict[str, list[Sample]], rounds: int) -> str:
    base_label, cold_base_label = cases[0].label, cases[-1].label
    lines = [
        "# Cold start: import time of app.py",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {rounds} rounds (`python -m bench.cold_start --rounds {rounds}`).",
        "Each sample is a fresh interpreter timing `import app`; cases alternate within each round.",
        "",
        "| case | median ms | min ms | modules | ratio (medians) | ratio (median per round) "
        "| network libraries loaded |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    verdict = ""
    for case in cases:
        runs = samples[case.label]
        reference = samples[cold_base_label if case.cold_bytecode else base_label]
        median = statistics.median(s.seconds for s in runs)
        ratio = median / statistics.median(s.seconds for s in reference)
        paired = statistics.median(a.seconds / b.seconds for a, b in zip(runs, reference, strict=True))
        loaded = ", ".join(runs[-1].loaded) or "none"
        lines.append(
            f"| {case.label} | {median * 1000:.1f} | {min(s.seconds for s in runs) * 1000:.1f} | "
            f"{runs[-1].modules} | {ratio:.2f} | {paired:.2f} | {loaded} |"
        )
        if case.label == "app.py":
            met = "met" if paired <= TARGET_RATIO else "NOT met"
            verdict = f"Target app.py <= {TARGET_RATIO} x baseline (median per-round ratio {paired:.2f}): {met}."
    lines += [
        "",
        verdict,
        "",
        "Ratios of the cold-bytecode rows are against the baseline with a cold cache too; there everything",
        "compiles, the standard library included (on Lambda the runtime's own modules are precompiled).",
        "`app.py + boto3` adds what app.py leaves for the first request that reaches DynamoDB.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="samples per case (default 21)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"markdown file (default {RESULTS})")
    args = parser.parse_args()
    table = run(args.rounds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
