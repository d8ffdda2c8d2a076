"""reports/drift.md and reports/drift.json: what the target answered to each README item.

One report, two origins: a live run (`make live`, which also writes its exchanges as a cassette,
reports/live-cassette.jsonl) or recorded exchanges (`make drift CASSETTE=…`). The items, the
judges and the layout are the same; only the header says where the answers came from.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mock_server.core import Exchange

from ._classify import Classified
from ._drift import CONTRADICTS, Answer, ItemResult
from ._probes import LIVE_CASSETTE, DriftRun

__all__ = ["build", "build_from_cassette", "render_markdown", "write", "write_cassette"]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _judged(results: list[ItemResult], answers: Iterable[Answer], exchanges: list[Any]) -> dict[str, Any]:
    """What both origins share: the verdicts, the items and their parts, the answers, the exchanges."""
    failing = [r.item.id for r in results if r.fails_run]
    return {
        "verdicts": dict(Counter(r.verdict for r in results)),
        "documented_contradictions": failing,
        "fails_run": bool(failing),
        "items": [
            {
                "id": r.item.id,
                "section": r.item.section,
                "number": r.item.number,
                "title": r.item.title,
                "mark": r.mark,
                "verdict": r.verdict,
                "parts_decided": r.decided,
                "fails_run": r.fails_run,
                "parts": [
                    {
                        "id": p.claim.id,
                        "says": p.claim.says,
                        "mark": p.claim.mark,
                        "spec": p.claim.spec or "README only (no node in openapi.yaml)",
                        "askable": p.claim.askable,
                        "verdict": p.finding.verdict,
                        "observed": p.finding.observed,
                        "fails_run": p.fails_run,
                        "probes_read": [a.probe for a in p.read],
                        "exchanges": list(p.sources),
                    }
                    for p in r.parts
                ],
            }
            for r in results
        ],
        "answers": [
            {k: v for k, v in asdict(a).items() if k != "body"} | {"headers": dict(a.headers)} for a in answers
        ],
        "exchanges": exchanges,  # each as its cassette line's object
    }


def build(run: DriftRun, results: list[ItemResult]) -> dict[str, Any]:
    s = run.settings
    return {
        "generated": _iso(run.started),
        "origin": "live",
        "target": {
            "base_url": s.base_url,
            "pod": s.pod,
            "sid": s.masked_sid(),
            "agent_number": s.agent,
            "delete_agent_number": s.delete_agent if s.destructive else None,
            "destructive": s.destructive,
            "destructive_off_because": None if s.destructive else s.destructive_reason,
            "na_hosts_by_host_header": s.host_header_probes,
        },
        "bounds": {
            "requests_sent": run.budget.spent,
            "request_budget": run.budget.limit,
            "rate_limit_per_second": s.rate,
            "timeout_seconds": s.timeout,
            "seconds": round(run.seconds, 2),
        },
        "cassette": LIVE_CASSETTE,
    } | _judged(results, run.answers.values(), [json.loads(e.to_line()) for e in run.exchanges])


def build_from_cassette(classified: Classified, results: list[ItemResult]) -> dict[str, Any]:
    c = classified
    return {
        "generated": _iso(time.time()),
        "origin": "cassette",
        "target": {
            "upstreams": c.upstreams,
            "sid": c.masked_sid(),
            "agent_number": c.evidence.agent,
            "agent_from": c.agent_from,
            "delete_agent_number": c.evidence.delete_agent,
        },
        "recorded": {
            "files": [str(p) for p in c.files],
            "exchanges": c.total,
            "classified": len(c.used),
            "not_classified": [{"exchange": e.source, "why": why} for e, why in c.unclassified],
            "lines_skipped": c.skipped,
            "probes_missing": c.missing,
        },
    } | _judged(results, c.evidence.answers.values(), c.documents())


def _cell(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _verdict(verdict: str, fails: bool) -> str:
    if verdict != CONTRADICTS:
        return verdict
    return "**CONTRADICTS** (documented: fails the run)" if fails else "CONTRADICTS (x-assumed: reported)"


def _live_header(doc: dict[str, Any]) -> list[str]:
    t, b = doc["target"], doc["bounds"]
    rate = f"at most {b['rate_limit_per_second']:g} request/s" if b["rate_limit_per_second"] else "no rate limit"
    mode = "destructive probes on" if t["destructive"] else f"read-only ({t['destructive_off_because']})"
    return [
        f"- Target: {t['base_url']} (pod {t['pod']}, SID {t['sid']}), "
        f"agent {t['agent_number'] or '(not set)'}; {mode}.",
        f"- Run {doc['generated']}: {b['requests_sent']} requests of a budget of {b['request_budget']}, "
        f"{rate}, timeout {b['timeout_seconds']:g} s, "
        f"{b['seconds']:g} s in all; every answer is also in {doc['cassette']} (a cassette).",
    ]


def _cassette_header(doc: dict[str, Any]) -> list[str]:
    t, r = doc["target"], doc["recorded"]
    skipped = r["lines_skipped"]
    return [
        f"- Written from a cassette, not a live run: {', '.join(r['files'])}; {r['exchanges']} exchanges, "
        f"{r['classified']} classified as probes, {len(r['not_classified'])} not"
        + (f"; {len(skipped)} line(s) skipped ({'; '.join(skipped[:5])})" if skipped else "")
        + ".",
        f"- Recorded from {', '.join(t['upstreams']) or '(no upstream named)'} (SID {t['sid']}), "
        f"agent {t['agent_number'] or '(none found)'} ({t['agent_from']}); "
        f"deleted agent {t['delete_agent_number'] or '(none)'}.",
        "- Probes not in this cassette (their parts CANNOT TELL): "
        + (", ".join(r["probes_missing"]) if r["probes_missing"] else "none")
        + ".",
    ]


def render_markdown(doc: dict[str, Any]) -> str:
    failing = doc["documented_contradictions"]
    lines = [
        "# Doc drift: what the target answered to each item the README lists",
        "",
        *(_cassette_header(doc) if doc["origin"] == "cassette" else _live_header(doc)),
        "- Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(doc["verdicts"].items())) + ".",
        (
            f"- **The run fails**: the target contradicts what the spec marks documented in {', '.join(failing)}."
            if failing
            else "- No documented item is contradicted; contradictions of `x-assumed` items are reported, not failed."
        ),
        "",
        "| id | README item | spec | verdict | parts decided | what the target answered |",
        "|---|---|---|---|---|---|",
    ]
    for item in doc["items"]:
        answered = "; ".join(f"{p['id'].split('.', 1)[1]}: {p['observed']}" for p in item["parts"])
        lines.append(
            f"| {item['id']} | {_cell(item['title'], 120)} | {item['mark']} | "
            f"{_verdict(item['verdict'], item['fails_run'])} | {item['parts_decided']} | "
            f"{_cell(answered, 400)} |"
        )
    lines += ["", "## Parts", ""]
    for item in doc["items"]:
        lines += [f"### {item['id']} ({item['section']}, #{item['number']})", ""]
        lines += [
            "| part | the documents / the assumption | spec | verdict | observed | exchanges |",
            "|---|---|---|---|---|---|",
        ]
        for p in item["parts"]:
            lines.append(
                f"| {p['id']} | {_cell(p['says'], 200)} | {p['mark']}: `{p['spec']}` | "
                f"{_verdict(p['verdict'], p['fails_run'])} | {_cell(p['observed'], 600)} | "
                f"{_cell(', '.join(p['exchanges']) or '(none)', 200)} |"
            )
        lines.append("")
    if doc["origin"] == "cassette" and doc["recorded"]["not_classified"]:
        lines += ["## Exchanges not classified as a probe", "", "| exchange | why |", "|---|---|"]
        lines += [f"| {n['exchange']} | {_cell(n['why'], 300)} |" for n in doc["recorded"]["not_classified"][:200]]
        lines.append("")
    lines += [
        "## Answers (api key redacted, bodies truncated)",
        "",
        "| probe | request (`{sid}` stands for the SID) | status | ms | exchange | body |",
        "|---|---|---|---|---|---|",
    ]
    for a in doc["answers"]:
        status = a["status"] if a["status"] is not None else ("no answer" if a["sent"] else "not asked")
        body = a["text"] if a["status"] is not None else (a["error"] or a["reason"])
        lines.append(
            f"| {a['probe']} | `{_cell(a['request'], 160)}` | {status} | {a['elapsed_ms'] or ''} | "
            f"{a['source']} | {_cell(body, 240)} |"
        )
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "drift.md", folder / "drift.json"
    js.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    md.write_text(render_markdown(doc))
    return md, js


def write_cassette(exchanges: Iterable[Exchange], folder: Path) -> Path:
    """A live run's exchanges, one line each, replacing the last run's (line N is `source` N)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LIVE_CASSETTE
    path.write_bytes(b"".join(e.to_line() for e in exchanges))
    return path
