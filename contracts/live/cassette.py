"""`make drift CASSETTE=FILE`: the drift report (reports/drift.md, .json) from recorded exchanges.

    python -m contracts.live.cassette FILE [FILE ...] [--agent N] [--out DIR]

No network and no credentials: the same items and judges as `make live`, reading a cassette
(`make live`'s reports/live-cassette.jsonl, or `kaleyra-mock --record`'s of your own traffic)
instead of sending probes. Exit 0, or 1 when a documented item is contradicted (as `make live`),
2 when no cassette can be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts._support import REPORTS
from mock_server.core import CassetteError

from . import _report
from ._classify import read
from ._drift import CONTRADICTS, judge

__all__ = ["main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.live.cassette", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="cassettes, judged in this order")
    parser.add_argument("--agent", help="the configured agent (default: the first documented testers GET's, if 200)")
    parser.add_argument("--out", type=Path, default=REPORTS, help=f"where drift.md and drift.json go ({REPORTS})")
    args = parser.parse_args(argv)
    try:
        classified = read(args.files, agent=args.agent)
    except CassetteError as exc:
        print(f"drift: {exc}", file=sys.stderr)
        return 2
    results = judge(classified.evidence)
    doc = _report.build_from_cassette(classified, results)
    md, _ = _report.write(doc, args.out)
    recorded = doc["recorded"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(doc["verdicts"].items()))
    print(
        f"drift report: {md} and drift.json ({counts}; {recorded['exchanges']} exchanges, "
        f"{recorded['classified']} classified, {len(recorded['probes_missing'])} probes not in the cassette)"
    )
    for line in recorded["lines_skipped"]:
        print(f"  skipped {line}")
    for r in results:
        if r.verdict == CONTRADICTS:
            print(
                f"  {r.item.id}: CONTRADICTS ({'documented, fails the run' if r.fails_run else 'x-assumed, reported'})"
            )
    return 1 if doc["fails_run"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
