"""`make docs`: the README's generated sections, rewritten from openapi.yaml.

Today one section: the scenario table (`mock_server.core.scenario_table`). `--check` changes
nothing and exits 1 when the README is stale, for a CI that must not write.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mock_server.core import SpecIndex, scenario_table

__all__ = ["README", "main", "rendered"]

README = Path(__file__).resolve().parents[1] / "README.md"
_SECTION = re.compile(r"(<!-- scenarios: [^\n]*-->\n)(.*?)(<!-- /scenarios -->)", re.DOTALL)


def rendered(readme: str, spec: SpecIndex) -> str:
    """The README with its scenario section replaced by the spec's table."""
    if _SECTION.search(readme) is None:
        raise ValueError("README.md has no <!-- scenarios: ... --> section")
    return _SECTION.sub(lambda m: m.group(1) + scenario_table(spec) + m.group(3), readme, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale, write nothing")
    parser.add_argument("--spec", type=Path, help="another openapi.yaml (default: the packaged one)")
    args = parser.parse_args(argv)
    before = README.read_text(encoding="utf-8")
    after = rendered(before, SpecIndex.load(args.spec))
    if after == before:
        return 0
    if args.check:
        print("README.md: the scenario table is stale; run `make docs`", file=sys.stderr)
        return 1
    README.write_text(after, encoding="utf-8")
    print("README.md: scenario table rewritten from openapi.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
