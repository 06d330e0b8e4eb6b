"""The report: figures with their ceilings, the issue's targets, markdown.

A figure is a dict (it goes to JSON as is)::

    {"label", "unit", "runs": [value per run], "value": median of runs,
     "p50_ms", "p95_ms", "p99_ms": medians over runs (requests only),
     "ceiling": {"label", "value"}, "ratio": value / ceiling, "errors", "note",
     "cpu": {"shares": {part: median share of the machine}, "per_server_cpu_s",
             "count_unit"}  (load runs only; bench/cpu.py)}

A figure that could not be measured has ``value`` None and says why in
``note``. ``targets`` turns the results into the issue's table, met or
missed; ``markdown`` renders both tables; ``update_docs`` puts them into
docs/performance.md between its markers.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import cpu, loadgen

Figure = dict[str, Any]
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
READ_PROOFS = ("inclusion proof by index", "inclusion proof by hash", "tile, level 0", "tile, level 1")


def figure(label: str, unit: str, runs: Sequence[float], note: str = "") -> Figure:
    return {
        "label": label,
        "unit": unit,
        "runs": list(runs),
        "value": statistics.median(runs) if runs else None,
        "note": note,
    }


def missing(label: str, unit: str, why: str) -> Figure:
    return figure(label, unit, [], why)


def load_figure(label: str, unit: str, results: Sequence[loadgen.Result], per: str = "requests") -> Figure:
    """A throughput figure from load runs: ``per`` is "requests" or "weight" (records, entries)."""
    runs = [r.per_second if per == "requests" else r.weight_per_second for r in results]
    fig = figure(label, unit, runs)
    for p in (50, 95, 99):
        fig[f"p{p}_ms"] = statistics.median(r.percentile(p) * 1000 for r in results)
    fig["errors"] = sum(r.errors for r in results)
    fig["requests"] = sum(r.done for r in results)
    count_unit = unit.split("/")[0]
    if usage := cpu_usage(results, per, {"req": "requests"}.get(count_unit, count_unit)):
        fig["cpu"] = usage
    return fig


def cpu_usage(results: Sequence[loadgen.Result], per: str, count_unit: str) -> dict[str, Any] | None:
    """Who used the cores during load runs: the median share of the machine of
    each part (bench/cpu.py), and the server-side figure, ``count_unit``
    (requests, records, entries) per second of server CPU; None if no run
    measured CPU."""
    runs = [r for r in results if r.cpu and r.cpu_wall > 0]
    if not runs:
        return None
    shares = [r.shares for r in runs]
    parts = [p for p in shares[0] if all(p in s for s in shares)]
    out: dict[str, Any] = {
        "shares": {p: statistics.median(s[p] for s in shares) for p in parts},
        "count_unit": count_unit,
        "per_server_cpu_s": None,
    }
    per_cpu = [
        (r.done if per == "requests" else r.weight) / used
        for r in runs
        if (used := cpu.server_cpu(r.cpu)) is not None and used > 0
    ]
    if per_cpu:
        out["per_server_cpu_s"] = statistics.median(per_cpu)
    return out


def with_ceiling(fig: Figure, label: str, value: float | None) -> Figure:
    fig["ceiling"] = {"label": label, "value": value}
    fig["ratio"] = fig["value"] / value if fig["value"] is not None and value else None
    return fig


# The targets -------------------------------------------------------------------


def _get(backend: dict[str, Any], key: str) -> Figure | None:
    fig = backend.get("figures", {}).get(key)
    return fig if fig and fig.get("value") is not None else None


def _cell(ok: bool, text: str) -> dict[str, Any]:
    return {"met": ok, "text": f"{text} — {'met' if ok else 'missed'}"}


def _unmeasured(why: str) -> dict[str, Any]:
    return {"met": None, "text": why}


def _batch(minimum: float, share: float | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(b: dict[str, Any]) -> dict[str, Any]:
        f = _get(b, "ingest_batch")
        if f is None:
            return _unmeasured("not measured")
        ok = f["value"] >= minimum and (share is None or (f["ratio"] or 0) >= share)
        return _cell(ok, f"{f['value']:,.0f}/s, {f['ratio'] or 0:.0%} of Ed25519{_generator(f)}")

    return check


def _single(b: dict[str, Any]) -> dict[str, Any]:
    f = _get(b, "ingest_single")
    if f is None:
        return _unmeasured("not measured")
    text = f"{f['value']:,.0f}/s, p99 {f['p99_ms']:.0f} ms{_generator(f)}"
    return _cell(f["value"] >= 1500 and f["p99_ms"] < 50, text)


def _generator(fig: Figure) -> str:
    """The issue asks, beside a throughput measured with the load generator on
    the same cores, for the generator's share and the server-side figure."""
    usage = fig.get("cpu")
    if not usage or cpu.LOAD_GENERATOR not in usage["shares"]:
        return ""
    text = f" (load generator {usage['shares'][cpu.LOAD_GENERATOR]:.0%} of the cores"
    if usage.get("per_server_cpu_s"):
        text += f"; {usage['per_server_cpu_s']:,.0f} per server CPU-second"
    return text + ")"


def _inclusion(b: dict[str, Any]) -> dict[str, Any]:
    figs = [f for f in (_get(b, "ingest_single"), _get(b, "ingest_batch")) if f]
    if not figs:
        return _unmeasured("not measured")
    worst = max(f["p99_ms"] for f in figs)
    return _cell(worst <= 1000, f"p99 {worst:,.0f} ms")


def _two_servers(b: dict[str, Any]) -> dict[str, Any]:
    two, one = _get(b, "ingest_batch_two_servers"), _get(b, "ingest_batch")
    if two is None or one is None:
        return _unmeasured("not measured")
    return _cell(two["value"] >= 0.9 * one["value"], f"{two['value']:,.0f}/s against {one['value']:,.0f}/s on one")


def _reads(b: dict[str, Any]) -> dict[str, Any]:
    large = [_get(b, f"read_large_{n}") for n in READ_PROOFS]
    small = [_get(b, f"read_small_{n}") for n in READ_PROOFS]
    if not all(large) or not all(small):
        return _unmeasured("not measured (quick mode)" if not any(large) else "not measured")
    ratio = min(f["ratio"] or 0 for f in large if f)
    slowdown = min(lg["value"] / sm["value"] for lg, sm in zip(large, small, strict=True) if lg and sm)
    # "No slower": within 10%, the noise between two runs of one endpoint.
    text = f"≥ {ratio:.0%} of trivial; large/10k ≥ {slowdown:.2f}×{_at(large[0])}"
    return _cell(ratio >= 0.7 and slowdown >= 0.9, text)


def _at(fig: Figure | None) -> str:
    """Where a "1M" figure was measured, if the log fell short of 1M."""
    n = fig.get("entries", 0) if fig else 0
    return f" (at {n:,} entries, not 1M)" if 0 < n < 1_000_000 else ""


def _feed(b: dict[str, Any]) -> dict[str, Any]:
    f = _get(b, "read_large_filtered feed page")
    if f is None:
        return _unmeasured("not measured (quick mode)")
    return _cell(f["p95_ms"] < 50, f"p95 {f['p95_ms']:.1f} ms{_at(f)}")


def _rate(key: str, minimum: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(b: dict[str, Any]) -> dict[str, Any]:
        f = _get(b, key)
        if f is None:
            fig = b.get("figures", {}).get(key)
            return _unmeasured(fig["note"] if fig else "not measured")
        return _cell(f["value"] >= minimum, f"{f['value']:,.0f}/s")

    return check


def _client_audit(b: dict[str, Any]) -> dict[str, Any]:
    """verify --full against its ceiling, Ed25519 on all cores (the figure's ``ratio``)."""
    f = _get(b, "audit")
    if f is None:
        fig = b.get("figures", {}).get("audit")
        return _unmeasured(fig["note"] if fig else "not measured")
    ratio = f.get("ratio") or 0
    return _cell(ratio >= 0.8, f"{f['value']:,.0f}/s, {ratio:.0%} of {f['ceiling']['label']}")


def _export(b: dict[str, Any]) -> dict[str, Any]:
    """At 1M entries when measured there, else at 10k."""
    key = "export_large" if _get(b, "export_large") else "export_small"
    return _rate(key, 50_000)(b)


def _operator_audit(b: dict[str, Any]) -> dict[str, Any]:
    """Over the large log when measured there, else the small one."""
    key = "operator_audit_large" if _get(b, "operator_audit_large") else "operator_audit"
    return _rate(key, 200_000)(b)


def _statistics(b: dict[str, Any]) -> dict[str, Any]:
    f = _get(b, "statistics")
    if f is None:
        fig = b.get("figures", {}).get("statistics")
        return _unmeasured(fig["note"] if fig else "not measured")
    ok = f["value"] < 5 and f["cached_p95_ms"] < 20
    text = f"cold {f['value']:.2f} s, cached p95 {f['cached_p95_ms']:.1f} ms{_at(f)}"
    # A quick run measures it on the small log only: no verdict on a 1M target.
    return _cell(ok, text) if f["entries"] >= 500_000 else _unmeasured(text + f" at {f['entries']:,} entries")


def _storage(b: dict[str, Any]) -> dict[str, Any]:
    s = b.get("storage")
    if not s:
        return _unmeasured("not measured")
    allowed = 1.5 * s["canonical_bytes"] + 100 * s["entries"]
    return _cell(
        s["bytes"] <= allowed,
        f"{s['bytes'] / s['canonical_bytes']:.2f}× canonical ({s['bytes_per_entry']:,.0f} B/entry)",
    )


TARGETS: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]], tuple[str, ...]]] = [
    ("batch ingestion, SQLite", "≥ 10,000 records/s and ≥ 40% of Ed25519", _batch(10_000, 0.4), ("sqlite",)),
    ("batch ingestion, PostgreSQL", "≥ 6,000 records/s", _batch(6_000, None), ("postgresql",)),
    ("single-record ingestion", "≥ 1,500 records/s, p99 < 50 ms", _single, ("sqlite", "postgresql")),
    ("time to inclusion under load", "p99 ≤ 1 s", _inclusion, ("sqlite", "postgresql")),
    # "No lower": within 10%, the noise between two runs of one load.
    ("two servers on one PostgreSQL", "batch ingestion no lower than one server", _two_servers, ("postgresql",)),
    ("proof / tile reads at 1M", "≥ 70% of trivial, no slower than at 10k", _reads, ("sqlite", "postgresql")),
    ("filtered feed page at 1M", "p95 < 50 ms", _feed, ("sqlite", "postgresql")),
    ("export", "≥ 50,000 records/s", _export, ("sqlite", "postgresql")),
    ("mirror-and-verify", "≥ 20,000 entries/s", _rate("mirror", 20_000), ("sqlite", "postgresql")),
    ("full audit, client", "≥ 80% of Ed25519 on all cores", _client_audit, ("sqlite", "postgresql")),
    ("full audit, operator", "≥ 200,000 leaves/s", _operator_audit, ("sqlite", "postgresql")),
    ("evenness statistics, 1M", "< 5 s cold, < 20 ms cached", _statistics, ("sqlite", "postgresql")),
    ("storage", "≤ 1.5 × canonical + 100 B/entry", _storage, ("sqlite", "postgresql")),
]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, target, check, applies in TARGETS:
        row: dict[str, Any] = {"figure": name, "target": target}
        for kind, backend in results["backends"].items():
            if "skipped" in backend:
                row[kind] = _unmeasured("not run")
            elif kind in applies:
                row[kind] = check(backend)
            else:
                row[kind] = _unmeasured("—")
        rows.append(row)
    return rows


# Markdown ------------------------------------------------------------------------------


def _fmt(fig: Figure) -> str:
    if fig.get("value") is None:
        return fig.get("note") or "not measured"
    unit = fig["unit"]
    text = f"{fig['value']:,.0f} {unit}" if fig["value"] >= 100 else f"{fig['value']:,.2f} {unit}"
    if "p99_ms" in fig:
        text += f"; p50 {fig['p50_ms']:.1f} / p95 {fig['p95_ms']:.1f} / p99 {fig['p99_ms']:.1f} ms"
    ceiling = fig.get("ceiling")
    if ceiling and ceiling.get("value"):
        text += f"; **{fig['ratio']:.0%}** of {ceiling['label']} ({ceiling['value']:,.0f}/s)"
    if fig.get("errors"):
        text += f"; {fig['errors']} errors"
    if fig.get("note"):
        text += f" ({fig['note']})"
    return text


def markdown(results: dict[str, Any]) -> str:
    kinds = list(results["backends"])
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    head = "| figure | " + " | ".join(names.get(k, k) for k in kinds) + " |\n|---|" + "---|" * len(kinds) + "\n"
    order: list[str] = []
    for backend in results["backends"].values():
        order += [k for k in backend.get("figures", {}) if k not in order]
    lines = [head.rstrip("\n")]
    for key in order:
        label = next(b["figures"][key]["label"] for b in results["backends"].values() if key in b.get("figures", {}))
        cells = []
        for b in results["backends"].values():
            fig = b.get("figures", {}).get(key)
            cells.append(b["skipped"] if "skipped" in b else _fmt(fig) if fig else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    usage = _usage_table(results, kinds, order)
    c = results["ceilings"]
    out = [
        f"Machine-wide ceilings: Ed25519 {c['ed25519']['value']:,.0f} verifications/s on {c['ed25519']['processes']} "
        f"processes; SHA-256 {c['sha256']['value']:,.0f} node hashes/s, or {c['sha256_leaf']['value']:,.0f} "
        "leaves/s (leaf hash of a record entry and one node), on one core.",
        "",
        "\n".join(lines),
        "",
        "| target | " + " | ".join(names.get(k, k) for k in kinds) + " |\n|---|" + "---|" * len(kinds),
    ]
    for row in results["targets"]:
        out.append(f"| {row['figure']}: {row['target']} | " + " | ".join(row[k]["text"] for k in kinds) + " |")
    if usage:
        out += ["", usage]
    return "\n".join(out) + "\n"


#: How each part is named in the "who used the cores" table.
PARTS = (
    (cpu.LOAD_GENERATOR, "load generator"),
    (cpu.SERVER, "server"),
    (cpu.DATABASE, "PostgreSQL backends"),
    ("other", "other"),
)


def shares_text(res: loadgen.Result) -> str:
    """One load run's shares of the machine, for the progress lines."""
    shares = res.shares
    return ", ".join(f"{name} {shares[part]:.0%}" for part, name in PARTS if part in shares) + " of the cores"


def _usage_cell(fig: Figure | None) -> str:
    usage = fig.get("cpu") if fig else None
    if not usage:
        return "—"
    shares = usage["shares"]
    text = ", ".join(f"{name} {shares[part]:.0%}" for part, name in PARTS if part in shares)
    if usage.get("per_server_cpu_s"):
        text += f"; **{usage['per_server_cpu_s']:,.0f}** {usage['count_unit']} per server CPU-second"
    return text


def _usage_table(results: dict[str, Any], kinds: list[str], order: list[str]) -> str:
    """Who used the cores during each load run (bench/cpu.py); "" if no figure has it."""
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    lines = []
    for key in order:
        figs = [b.get("figures", {}).get(key) for b in results["backends"].values()]
        if not any(f and f.get("cpu") for f in figs):
            continue
        label = next(f["label"] for f in figs if f)
        lines.append(f"| {label} | " + " | ".join(_usage_cell(f) for f in figs) + " |")
    if not lines:
        return ""
    head = (
        f"Who used the {results['machine']['nproc']} cores during each load run (share of cores × wall time; "
        "server: gunicorn's master and workers; PostgreSQL backends: those serving the server's connections; "
        "other: everything else the machine was busy with), and the server-side figure: throughput per "
        "second of server CPU (gunicorn and its PostgreSQL backends).\n\n"
        "| figure | " + " | ".join(names.get(k, k) for k in kinds) + " |\n|---|" + "---|" * len(kinds)
    )
    return head + "\n" + "\n".join(lines)


def machine_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    versions = ", ".join(b.get("version", "") for b in results["backends"].values() if b.get("version"))
    mode = "quick mode (BENCH_QUICK=1)" if results["quick"] else "full mode"
    text = (
        f"Run {results['timestamp']}, {mode}, {results['elapsed_s']:.0f} s: {m['nproc']} cores ({m['cpu']}), "
        f"{m['ram_gib']:.1f} GiB RAM, Python {m['python']}, {versions}; gunicorn {results['config']['workers']} "
        f"workers × {results['config']['threads']} threads; load average at start {m['load_average']}; "
        f"median of {results['config']['runs']} run(s)."
    )
    if float(m["load_average"].split()[0]) > 0.5 * m["nproc"]:
        text += (
            "\n\n**The machine was busy when this run started** (load average above half its cores): "
            "the figures and ceilings are noisy and low; rerun on a quiet machine."
        )
    return text


def main(argv: list[str] | None = None) -> int:
    """Render a results file again: ``python -m bench.report RESULTS.json [--update-docs]``."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    p.add_argument("results", type=Path)
    p.add_argument("--update-docs", action="store_true", help="put the tables into docs/performance.md")
    a = p.parse_args(argv)
    results = json.loads(a.results.read_text())
    results["targets"] = targets(results)
    print(machine_markdown(results) + "\n\n" + markdown(results))
    if a.update_docs:
        update_docs(results, Path(__file__).resolve().parent.parent / "docs" / "performance.md")
    return 0


def update_docs(results: dict[str, Any], path: Path) -> None:
    """Replace the text between the markers of ``path`` with the latest tables."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise RuntimeError(f"{path} has no {BEGIN} ... {END} block")
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    block = f"{BEGIN}\n{machine_markdown(results)}\n\n{markdown(results)}{END}"
    path.write_text(before + block + after)


if __name__ == "__main__":
    raise SystemExit(main())
