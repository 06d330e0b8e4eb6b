"""The demo's coverage statements: one per platform, month and rule, two of them planted.

Each platform declares, for every (month, rule) it logged decisions under,
the counts it logged, but for two planted cases the dashboard and
``GET /api/v1/coverage`` must show:

* a gap: demo-chirp's statement for its busiest (month, rule) with
  exemptions for politicians declares a quarter more of those exemptions
  (at least 3) than it logged: exemptions for politicians under-logged;
* a contradiction: demo-tubeview's statement for its busiest (month, rule)
  declares one decision fewer than it logged in one cell.

The statements are signed with each platform's latest key and submitted
after the demo's records (``python -m demo``), so the records' own
checkpoints, and the evenness documents pinned on them, do not change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from client.signing import SignedItem, sign_record
from demo.generate import Demo
from ledger.records.coverage import build_statement, decision_cell
from ledger.records.vocab import POLITICAL_CLASSES

GAP_PLATFORM = "demo-chirp"
CONTRADICTED_PLATFORM = "demo-tubeview"
DESCRIPTION = "Every decision under this rule in the month (decided_at, UTC) on accounts of the classes listed."


def _current(demo: Demo) -> list[dict[str, Any]]:
    return [item.record for item in demo.items]


def statements(demo: Demo, submitted_at: str) -> list[dict[str, Any]]:
    """The unsigned statements, planted ones included, in a fixed order."""
    records = _current(demo)
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if r["type"] == "decision":
            current.setdefault((r["platform"], r["record_id"]), r)
        elif r["type"] == "amendment" and (r["platform"], r["refs"]["record_id"]) in current:
            current[(r["platform"], r["refs"]["record_id"])] = r["corrected"]
    totals: dict[tuple[str, str, str], Counter[tuple[str, str, bool]]] = {}
    for (platform, _), body in current.items():
        month, rule, cls, action, exempted = decision_cell(body)
        totals.setdefault((platform, month, rule), Counter())[(cls, action, exempted)] += 1

    def political_exemptions(key: tuple[str, str, str]) -> int:
        return sum(n for (c, _, e), n in totals[key].items() if e and c in POLITICAL_CLASSES)

    gap = max((k for k in totals if k[0] == GAP_PLATFORM), key=lambda k: (political_exemptions(k), k))
    contradicted = max((k for k in totals if k[0] == CONTRADICTED_PLATFORM), key=lambda k: (sum(totals[k].values()), k))
    out = []
    for i, key in enumerate(sorted(totals)):
        platform, month, rule = key
        declared = dict(totals[key])
        if key == gap:
            cells = sorted(k for k in declared if k[2] and k[0] in POLITICAL_CLASSES)
            extra = max(3, political_exemptions(key) // 4)
            declared[cells[0]] += extra
        if key == contradicted:
            cell = max(declared, key=lambda k: (declared[k], k))
            declared[cell] -= 1
            records_for = []  # build_statement would refuse totals below the records: that is the point here
        else:
            records_for = records
        out.append(
            build_statement(
                records_for,
                platform=platform,
                record_id=f"cov-{month}-{i:04d}",
                period=month,
                rule_id=rule,
                submitted_at=submitted_at,
                description=DESCRIPTION,
                totals=declared,
            )
        )
    return out


def signed_statements(demo: Demo, submitted_at: str) -> list[SignedItem]:
    return [sign_record(demo.keys[s["platform"]][-1], s) for s in statements(demo, submitted_at)]
