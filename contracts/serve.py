"""`make contracts`: start the real mock server, run the contract suites and schemathesis' own
CLI against both pods over HTTP, write reports under reports/, stop the server.

    python -m contracts.serve [extra pytest arguments]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from contracts._support import CONTRACT_API_KEY, PODS, REPORTS, ROOT, Observations, Target
from mock_server.testing import start_server


def progress(line: str) -> None:
    """A line on stderr, flushed at once: the run takes minutes, and stdout carries pytest's own."""
    print(f"contracts: {line}", file=sys.stderr, flush=True)


def _run_cli(cmd: list[str], pod: str, report_dir: Path) -> int:
    """Run schemathesis' CLI with its report in a file and one line here.

    The CLI ends with a pytest-like "N warnings in X s" banner, which log readers take for a test
    run that ran nothing; the whole report stays in cli.log and is printed when the run fails.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    log = report_dir / "cli.log"
    done = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    counts = re.search(r"(\d+) generated, (\d+) passed(?:, (\d+) failed)?(?:, (\d+) skipped)?", done.stdout)
    summary = counts.group(0) if counts else "no test-case count in the CLI's output"
    print(f"contracts: schemathesis CLI pod={pod}: {summary}, exit {done.returncode} (report: {log})", flush=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr, flush=True)
    return done.returncode


def main(argv: list[str]) -> int:
    REPORTS.mkdir(exist_ok=True)
    server = start_server(("--workers", "2"))
    root = server.url
    mock = Target(root, Observations())
    codes = []
    phases = 1 + len(PODS)
    try:
        print(f"contracts: mock server at {root}", flush=True)
        progress(f"1/{phases} the contract suites over HTTP (pytest)…")
        pytest_cmd = [sys.executable, "-m", "pytest", "contracts", "--target", root, "-q"]
        pytest_cmd += ["--junitxml", str(REPORTS / "contracts-junit.xml"), "-p", "no:cacheprovider", *argv]
        codes.append(subprocess.run(pytest_cmd, cwd=ROOT, check=False).returncode)
        st = Path(sys.executable).parent / "st"
        for number, pod in enumerate(PODS, 2):
            progress(f"{number}/{phases} schemathesis' CLI, pod {pod}…")
            mock.reset()  # the contract seed, nothing armed, an empty journal
            report_dir = REPORTS / "schemathesis" / pod
            cmd = [str(st), "--config-file", str(ROOT / "schemathesis.toml"), "run", str(ROOT / "openapi.yaml")]
            cmd += [
                "--url",
                f"{root}/{pod}",
                "-H",
                f"api-key: {CONTRACT_API_KEY}",
                "-H",
                "Content-Type: application/json",
            ]
            cmd += ["--report", "junit,har", "--report-dir", str(report_dir)]
            codes.append(_run_cli(cmd, pod, report_dir))
    finally:
        server.stop()
    summary = {"pytest": codes[0], "schemathesis": dict(zip(PODS, codes[1:], strict=False))}
    (REPORTS / "contracts-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"contracts: exit codes {summary}", flush=True)
    return max(codes) if codes else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
