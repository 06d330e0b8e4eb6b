"""The demo ledger (``python -m demo``): deterministic, valid, complete, with
exactly the planted disparities; and end to end against a live gunicorn on
SQLite and PostgreSQL, where a second run appends nothing."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import stat
import subprocess
import sys
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import pytest
from click.testing import CliRunner

from api.record_validator import validate_record
from demo import protection
from demo.__main__ import DEFAULT_URL, default_url, example_person, main
from demo.cast import CHIRP_CIVIC, FACESPACE_HATE, FIGURES, PLATFORMS
from demo.coverage import signed_statements
from demo.design import ADVERSE, END, HORIZON, PLANT_EXEMPTION, POLITICAL, START, allocate, spread
from demo.generate import Demo, generate
from keys.records import RECORD_CONTEXT, verify_signature
from ledger.records import vocab
from ledger.records.entries import canonical
from tests.api.test_record_schema import VALIDATOR
from tests.server import ROOT, get, gunicorn

SEED = "2026"
#: A clock past HORIZON: nothing is clamped, so output depends on the seed alone.
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ORIGIN = "demo.example/ledger"
CLASSES = [*vocab.PUBLIC_CLASSES, "political_any"]


def _t(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture(scope="module")
def demo() -> Demo:
    return generate(SEED, 3000, NOW)


@pytest.fixture(scope="module")
def small() -> Demo:
    return generate(SEED, 300, NOW)


@pytest.fixture(scope="module")
def final(demo: Demo) -> list[dict[str, Any]]:
    """Each decision as the statistics read it: the latest version, amendments applied."""
    decisions = {}
    for it in demo.items:
        rec = it.record
        if rec["type"] == "decision":
            decisions[(rec["platform"], rec["record_id"])] = dict(rec)
        elif rec["type"] == "amendment":
            decisions[(rec["platform"], rec["refs"]["record_id"])].update(rec["corrected"])
    return list(decisions.values())


def _in(rec: dict[str, Any], group: str) -> bool:
    cls = rec["account"]["class"]
    return cls in POLITICAL if group == "political_any" else cls == group


# Balanced sampling ------------------------------------------------------------------


def test_allocate_counts_are_within_one_of_expected() -> None:
    rng = random.Random(1)
    for _ in range(300):
        mix = {v: rng.random() ** 2 for v in range(rng.randint(1, 8))}
        n = rng.randint(0, 200)
        counts = Counter(allocate(rng, n, mix))
        total = sum(mix.values())
        assert sum(counts.values()) == n
        for v, w in mix.items():
            assert abs(counts[v] - n * w / total) < 1


def test_spread_gives_every_run_its_share() -> None:
    rng = random.Random(2)
    for _ in range(100):
        mix = {v: rng.random() ** 2 + 0.001 for v in range(rng.randint(2, 6))}
        total = sum(mix.values())
        n = rng.randint(1, 150)
        seq = spread(rng, [mix] * n)
        for a in range(0, n, 3):
            for b in range(a + 1, n + 1, 4):
                for v, w in mix.items():
                    assert abs(seq[a:b].count(v) - (b - a) * w / total) < 2


# Determinism and validity -------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_records(small: Demo) -> None:
    again = generate(SEED, 300, NOW)
    assert [i.to_bytes() for i in again.items] == [i.to_bytes() for i in small.items]
    assert again.rotation == small.rotation
    other = generate("7", 300, NOW)
    assert [i.record for i in other.items] != [i.record for i in small.items]
    assert other.keys["demo-chirp"][0].key_id != small.keys["demo-chirp"][0].key_id


def test_a_clock_before_the_horizon_clamps_every_time() -> None:
    early = datetime(2026, 10, 1, tzinfo=UTC)
    d = generate(SEED, 300, early)  # every record is validated against this clock as it is generated
    for it in d.items:
        for key in ("submitted_at", "flagged_at", "decided_at", "applied_at", "filed_at"):
            if key in it.record:
                assert _t(it.record[key]) <= early.timestamp()


def test_every_record_is_valid_and_signed_by_its_platform(demo: Demo) -> None:
    assert len(demo.items) == 3000
    keys = {k.key_id: (slug, k) for slug, ks in demo.keys.items() for k in ks}
    rotating = {p.slug for p in PLATFORMS if p.rotates_at}
    assert rotating == {"demo-tubeview"}
    for n, it in enumerate(demo.items):
        rec = it.record
        assert validate_record(rec, NOW) == [], rec["record_id"]
        slug, key = keys[it.signature["key_id"]]
        assert slug == rec["platform"]
        verify_signature(key.public_key, RECORD_CONTEXT, canonical(rec), base64.b64decode(it.signature["value"]))
        expected = demo.keys[slug][1 if slug in rotating and n >= demo.rotation else 0]
        assert key == expected
    assert 0 < demo.rotation < len(demo.items)


def test_the_json_schema_agrees(small: Demo) -> None:
    for it in small.items:
        assert not list(VALIDATOR.iter_errors(it.record)), it.record["record_id"]


def test_references_point_back_to_earlier_decisions(demo: Demo) -> None:
    seen: dict[tuple[str, str], str] = {}
    for it in demo.items:
        rec = it.record
        key = (rec["platform"], rec["record_id"])
        assert key not in seen
        if rec["type"] != "decision":
            assert seen[(rec["platform"], rec["refs"]["record_id"])] == "decision"
        seen[key] = rec["type"]


def test_the_data_covers_every_vocabulary(demo: Demo, final: list[dict[str, Any]]) -> None:
    recs = [it.record for it in demo.items]
    decisions = [r for r in recs if r["type"] == "decision"] + [
        r["corrected"] for r in recs if r["type"] == "amendment"
    ]
    appeals = [r for r in recs if r["type"] == "appeal"]

    def values(rs: list[dict[str, Any]], *path: str) -> set[Any]:
        out = set()
        for r in rs:
            for p in path:
                r = r.get(p) if isinstance(r, dict) else None
            out.update(r if isinstance(r, list) else [r])
        return out - {None}

    assert values(decisions, "category") == set(vocab.CATEGORIES)
    # Election workers came with the protection fields: the demo has them as
    # targets of abuse, not as accounts (a demo account of theirs would change
    # every method-version-1 figure below, which the protection plant keeps).
    assert values(decisions, "account", "class") == set(vocab.ACCOUNT_CLASSES) - {"election_worker"}
    assert values(decisions, "target", "class") == set(protection.TARGETS)
    assert values(decisions, "rule", "abuse") == {"threat", "harassment"}
    assert values(decisions, "reporter_class") == set(vocab.REPORTER_CLASSES)
    assert values(decisions, "action") == set(vocab.ACTIONS)
    assert values(decisions, "exemption", "type") == set(vocab.EXEMPTION_TYPES)
    assert values(decisions, "review_path") == set(vocab.REVIEW_PATHS)
    assert values(decisions, "detection_source") == set(vocab.DETECTION_SOURCES)
    assert values(decisions, "automated_decision") == set(vocab.AUTOMATED_DECISIONS)
    assert values(decisions, "interim_state") == set(vocab.INTERIM_STATES)
    assert values(decisions, "state_involvement") == set(vocab.STATE_INVOLVEMENTS)
    assert values(decisions, "decision_ground") == set(vocab.DECISION_GROUNDS)
    assert values(decisions, "severity") == set(vocab.SEVERITIES)
    assert values(decisions, "account", "class_basis") == set(vocab.CLASS_BASES)
    assert values(decisions, "content", "types") == set(vocab.CONTENT_TYPES)
    assert values(appeals, "outcome") == set(vocab.APPEAL_OUTCOMES)
    assert values(appeals, "channel") == set(vocab.APPEAL_CHANNELS)
    assert values(recs, "reason") == set(vocab.AMENDMENT_REASONS)
    assert {len(r["territorial_scope"]) for r in decisions} > {1, 27}
    # Every rule of every platform, with several versions for some.
    assert {(r["platform"], r["rule"]["id"]) for r in final} == {(p.slug, r.id) for p in PLATFORMS for r in p.rules}
    assert len({(r["rule"]["id"], r["rule"]["version"]) for r in final}) > len({r["rule"]["id"] for r in final})
    # Pending appeals, some of them later resolved by a second appeal record.
    by_decision = defaultdict(list)
    for a in appeals:
        by_decision[(a["platform"], a["refs"]["record_id"])].append(a["outcome"])
    assert any(o[0] == "pending" and o[-1] != "pending" for o in by_decision.values())
    assert any(o == ["pending"] for o in by_decision.values())


def test_one_person_is_on_several_platforms_by_wikidata_item(demo: Demo) -> None:
    """``make demo`` (3000 records) shows the person page: an item on two platforms at least."""
    person = example_person(demo)
    assert person is not None
    name, qid = person
    assert qid == next(f.qid for f in FIGURES if f.name == name)
    on = {
        it.record["platform"]
        for it in demo.items
        if it.record["type"] == "decision" and it.record["account"].get("public_subject", {}).get("wikidata_qid") == qid
    }
    assert len(on) >= 2, on


def test_times_fall_in_the_window_and_people_are_fictional(demo: Demo, final: list[dict[str, Any]]) -> None:
    for r in final:
        assert START <= _t(r["flagged_at"]) <= _t(r["decided_at"]) <= END
    names = {f.name for f in FIGURES}
    for it in demo.items:
        rec = it.record
        assert _t(rec["submitted_at"]) <= HORIZON
        subject = rec.get("account", {}).get("public_subject")
        if subject:
            assert subject["display_name"] in names
        for url in re.findall(r'https://[^"]+', json.dumps(rec)):
            assert urllib.parse.urlsplit(url).hostname.endswith(".example"), url


# The planted disparities, and nothing else --------------------------------------------


def _rate(recs: list[dict[str, Any]], hit: Any) -> float:
    found = [r for r in recs if r["violation_found"]]
    return sum(1 for r in found if hit(r)) / len(found)


def test_planted_exemptions_on_chirp_civic_integrity(final: list[dict[str, Any]]) -> None:
    cell = [r for r in final if r["platform"] == "demo-chirp" and r["rule"]["id"] == CHIRP_CIVIC]
    pol = [r for r in cell if _in(r, "political_any")]
    ordinary = [r for r in cell if _in(r, "ordinary_user")]

    def exempt(r: dict[str, Any]) -> bool:
        return bool(r["exemption"]["applied"])

    def news(r: dict[str, Any]) -> bool:
        return r["exemption"].get("type") == "newsworthiness"

    assert _rate(pol, exempt) > 4 * _rate(ordinary, exempt)
    assert _rate(pol, news) > 8 * _rate(ordinary, news)
    assert abs(_rate(pol, exempt) - PLANT_EXEMPTION) < 0.03
    for sev in vocab.SEVERITIES:  # at equal severity
        p = [r for r in pol if r["severity"] == sev]
        o = [r for r in ordinary if r["severity"] == sev]
        assert _rate(p, exempt) > 2.5 * max(_rate(o, exempt), 0.04), sev
    for cls in ("journalist", "other_public_figure"):  # not political: not planted
        assert _rate([r for r in cell if _in(r, cls)], exempt) < 0.12


def _hours(recs: list[dict[str, Any]]) -> float:
    return median(_t(r["decided_at"]) - _t(r["flagged_at"]) for r in recs) / 3600


def test_planted_slower_decisions_on_tubeview_journalists(final: list[dict[str, Any]]) -> None:
    for p in PLATFORMS:
        recs = [r for r in final if r["platform"] == p.slug]
        ordinary = _hours([r for r in recs if _in(r, "ordinary_user")])
        assert 0.85 < ordinary / p.median_hours < 1.15
        for cls in vocab.PUBLIC_CLASSES:
            ratio = _hours([r for r in recs if _in(r, cls)]) / ordinary
            if p.slug == "demo-tubeview" and cls == "journalist":
                assert 2.5 < ratio < 3.6
            else:
                assert 0.75 < ratio < 1.33, (p.slug, cls)
    tube = [r for r in final if r["platform"] == "demo-tubeview"]
    per_rule = Counter(r["rule"]["id"] for r in tube if _in(r, "journalist"))
    assert sum(1 for n in per_rule.values() if n >= 20) >= 3  # enough for the per-rule time tests


def test_planted_simpsons_paradox_on_facespace_hate_speech(final: list[dict[str, Any]]) -> None:
    cell = [r for r in final if r["platform"] == "demo-facespace" and r["rule"]["id"] == FACESPACE_HATE]
    pol = [r for r in cell if _in(r, "political_any")]
    ordinary = [r for r in cell if _in(r, "ordinary_user")]

    def adverse(r: dict[str, Any]) -> bool:
        return r["action"] in ADVERSE

    assert _rate(pol, adverse) - _rate(ordinary, adverse) > 0.2  # crude rates differ
    assert _mantel_haenszel(pol, ordinary, adverse) == pytest.approx(1, abs=0.3)  # stratified: alike
    severe = {"high", "critical"}
    share = [sum(r["severity"] in severe for r in g) / len(g) for g in (pol, ordinary)]
    assert share[0] > 0.6 > 0.25 > share[1]


def _mantel_haenszel(g: list[dict[str, Any]], ref: list[dict[str, Any]], hit: Any) -> float:
    """The Mantel-Haenszel odds ratio of ``hit`` among violations, strata by severity."""
    num = den = 0.0
    for sev in vocab.SEVERITIES:
        a, b, c, d = 0, 0, 0, 0
        for r in g:
            if r["violation_found"] and r["severity"] == sev:
                a, b = a + hit(r), b + (not hit(r))
        for r in ref:
            if r["violation_found"] and r["severity"] == sev:
                c, d = c + hit(r), d + (not hit(r))
        n = a + b + c + d
        if n:
            num, den = num + a * d / n, den + b * c / n
    return num / den if den else float("inf")


def _expected(recs: list[dict[str, Any]], metric: str) -> float:
    """What the shared, class-blind rates of demo.cast predict for ``recs``."""
    rules = {(p.slug, r.id): r for p in PLATFORMS for r in p.rules}
    total = 0.0
    for r in recs:
        rule = rules[(r["platform"], r["rule"]["id"])]
        if metric == "violation":
            total += rule.violation
        elif r["violation_found"]:
            planted = r["platform"] == "demo-chirp" and rule.id == CHIRP_CIVIC and _in(r, "political_any")
            p = PLANT_EXEMPTION if planted else rule.exemption
            actions = rule.actions[r["severity"]]
            share = sum(w for a, w in actions.items() if a in ADVERSE) / sum(actions.values())
            total += p if metric == "exempt" else (1 - p) * share
    return total


def test_every_class_gets_the_shared_rates(final: list[dict[str, Any]]) -> None:
    """Within each (platform, rule, severity), every class and political_any get
    violations, exemptions and adverse actions within two cases of the
    class-blind rates (the exemption plant included in them): no disparity
    but the planted ones."""
    hits = {
        "violation": lambda r: r["violation_found"],
        "exempt": lambda r: r["violation_found"] and r["exemption"]["applied"],
        "adverse": lambda r: r["violation_found"] and r["action"] in ADVERSE,
    }
    cells = defaultdict(list)
    for r in final:
        cells[(r["platform"], r["rule"]["id"], r["severity"])].append(r)
    for key, cell in cells.items():
        for group in [*CLASSES, "ordinary_user"]:
            recs = [r for r in cell if _in(r, group)]
            for metric, hit in hits.items():
                observed = sum(1 for r in recs if hit(r))
                assert abs(observed - _expected(recs, metric)) < 2, (key, group, metric)


def test_appeal_outcomes_are_alike_for_every_class(demo: Demo, final: list[dict[str, Any]]) -> None:
    latest = {}
    for it in demo.items:
        if it.record["type"] == "appeal":
            latest[(it.record["platform"], it.record["refs"]["record_id"])] = it.record["outcome"]
    cls = {(r["platform"], r["record_id"]): r for r in final}
    for p in PLATFORMS:
        for group in ("political_any", "ordinary_user"):
            outcomes = Counter(o for k, o in latest.items() if k[0] == p.slug and _in(cls[k], group))
            resolved = outcomes["upheld"] + outcomes["reversed"]
            assert resolved >= 10
            assert abs(outcomes["reversed"] / resolved - 22 / 70) < 0.12, (p.slug, group, outcomes)


# The command line -------------------------------------------------------------------


def test_the_demo_looks_for_the_server_where_make_run_binds_it() -> None:
    """``make demo`` next to ``make run`` with the same ``LEDGER_BIND`` finds it (README, Quick start)."""
    assert default_url({}) == DEFAULT_URL == "http://127.0.0.1:8000"
    assert default_url({"LEDGER_BIND": "127.0.0.1:8123"}) == "http://127.0.0.1:8123"
    assert default_url({"LEDGER_BIND": "0.0.0.0:9000"}) == "http://127.0.0.1:9000"
    assert default_url({"LEDGER_BIND": "[::]:9000"}) == "http://[::1]:9000"
    for unreachable in ("unix:/run/ledger.sock", "127.0.0.1", "a:1,b:2", ""):
        assert default_url({"LEDGER_BIND": unreachable}) == DEFAULT_URL, unreachable


def test_dry_run_writes_the_signed_items(tmp_path: Path, small: Demo) -> None:
    if datetime.now(UTC).timestamp() < HORIZON:
        pytest.skip("this machine's clock is before the demo's last record time; the dry run would be clamped")
    out = tmp_path / "demo.ndjson"
    res = CliRunner().invoke(main, ["--seed", SEED, "--records", "300", "--dry-run", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == b"".join(i.to_bytes() + b"\n" for i in small.items)
    assert not (tmp_path / "keys").exists()


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": str(tmp_path / "log.key"), "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env) as url:
        yield url, env


def _demo(url: str, env: dict[str, str], keys: Path, seed: str = SEED) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "demo", "--url", url, "--seed", seed, "--records", "300", "--keys-dir", str(keys)]
    return subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )


def _json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, body
    return json.loads(body)


def _feed_ids(url: str, slug: str) -> set[str]:
    ids: set[str] = set()
    query: dict[str, Any] = {"platform": slug, "limit": 200}
    while True:
        page = _json(f"{url}/api/v1/records?{urllib.parse.urlencode(query)}")
        ids.update(r["record_id"] for r in page["records"])
        if not page["next_cursor"]:
            return ids
        query["cursor"] = page["next_cursor"]


def _created(stdout: str) -> dict[str, tuple[int, int]]:
    found = re.findall(r"^(demo-[a-z]+) +\d+ records: +(\d+) created, +(\d+) already logged", stdout, re.M)
    return {slug: (int(c), int(e)) for slug, c, e in found}


def test_demo_fills_a_live_ledger_once(server: tuple[str, dict[str, str]], tmp_path: Path, small: Demo) -> None:
    url, env = server
    keys = tmp_path / "demo-keys"
    first = _demo(url, env, keys)
    assert first.returncode == 0, first.stderr
    # The records, then the coverage statements (demo/coverage.py), signed with each platform's current key.
    statements = signed_statements(small, max(it.record["submitted_at"] for it in small.items))
    assert statements
    items = small.items + statements
    expected = Counter(it.record["platform"] for it in items)
    assert _created(first.stdout) == {slug: (n, 0) for slug, n in expected.items()}
    for slug in expected:
        assert _feed_ids(url, slug) == {it.record["record_id"] for it in items if it.record["platform"] == slug}
    registry = {p["platform"]: [k["key_id"] for k in p["keys"]] for p in _json(f"{url}/api/v1/platforms")["platforms"]}
    assert registry == {slug: [k.key_id for k in ks] for slug, ks in small.keys.items()}
    size = _json(f"{url}/api/v1/log")["checkpoint"]["tree_size"]
    assert size == 300 + len(statements) + 4  # three platforms and one key rotation are registry entries
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in keys.iterdir()} == {
        f"{slug}-{k.key_id}.key": 0o600 for slug, ks in small.keys.items() for k in ks
    }

    again = _demo(url, env, keys)
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stderr
    assert _created(again.stdout) == {slug: (0, n) for slug, n in expected.items()}
    assert _json(f"{url}/api/v1/log")["checkpoint"]["tree_size"] == size

    other = _demo(url, env, keys, seed="7")
    assert other.returncode == 1
    assert "registered with other keys" in other.stderr
    assert _json(f"{url}/api/v1/log")["checkpoint"]["tree_size"] == size
