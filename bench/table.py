#!/usr/bin/env python3
"""Markdown table of meteor-bench JSON lines: meteord vs Nchan, as ratios,
and vs the bare server (the floor: one write per subscriber, nothing else).

Usage: bench/table.py [--transports] RESULTS.jsonl...   (lines from bench/run-all.sh)
--transports: meteord's xhrinteractive, eventsource and websocket beside
Nchan's EventSource and WebSocket (bench/run-all.sh transports).
Rows are (case, metric); a case is scenario + N + C + R + B. Ratios are
meteord / nchan and meteord / bare, with a note saying which direction is
better. When a case
was run several times (several files), the run least disturbed by other
processes (lowest other_cpu_s) is shown.
"""
import json
import sys


def ms(us):
    return us / 1000.0


# metric name, extractor, format, lower_is_better
METRICS = {
    "idle": [
        ("RSS per subscriber (B)", lambda r: r["server"]["rss_per_sub"], "{:,.0f}", True),
        ("connection setup (conn/s)", lambda r: r["connect_rate"], "{:,.0f}", False),
        ("connect failures", lambda r: r["connect"]["failed"], "{:d}", True),
        ("server CPU-s to connect all", lambda r: r["server"]["connect_cpu_s"], "{:.2f}", True),
        ("generator CPU-s to connect all", lambda r: r.get("bench_connect_cpu_s", float("nan")), "{:.2f}", None),
    ],
    "fanout": [
        ("latency p50 (ms)", lambda r: ms(r["latency_us"]["p50"]), "{:.2f}", True),
        ("latency p99 (ms)", lambda r: ms(r["latency_us"]["p99"]), "{:.2f}", True),
        ("latency max (ms)", lambda r: ms(r["latency_us"]["max"]), "{:.2f}", True),
        ("server CPU (% of a core)", lambda r: r["server"]["cpu_pct"], "{:.1f}", True),
        ("server CPU µs per delivery", lambda r: 1e6 * r["server"]["cpu_s"] / max(r["deliveries"], 1), "{:.1f}", True),
        ("lost / duplicated", lambda r: f'{r["lost"]} / {r["duplicated"]}', "{}", None),
    ],
    "many-channels": [
        ("latency p50 (ms)", lambda r: ms(r["latency_us"]["p50"]), "{:.2f}", True),
        ("latency p99 (ms)", lambda r: ms(r["latency_us"]["p99"]), "{:.2f}", True),
        ("server CPU (% of a core)", lambda r: r["server"]["cpu_pct"], "{:.1f}", True),
        ("server CPU µs per delivery", lambda r: 1e6 * r["server"]["cpu_s"] / max(r["deliveries"], 1), "{:.1f}", True),
        ("lost / duplicated", lambda r: f'{r["lost"]} / {r["duplicated"]}', "{}", None),
    ],
    "max-throughput": [
        ("deliveries/s", lambda r: r["deliveries_per_s"], "{:,.0f}", False),
        ("deliveries per server CPU-second", lambda r: r["server"]["deliveries_per_cpu_s"], "{:,.0f}", False),
        ("server CPU (% of a core)", lambda r: r["server"]["cpu_pct"], "{:.1f}", None),
        ("generator CPU-s / server CPU-s", lambda r: r["bench_cpu_s"] / max(r["server"]["cpu_s"], 0.01), "{:.2f}", None),
        ("latency p50 / p99 (ms)", lambda r: f'{ms(r["latency_us"]["p50"]):.1f} / {ms(r["latency_us"]["p99"]):.1f}', "{}", None),
        ("lost / duplicated", lambda r: f'{r["lost"]} / {r["duplicated"]}', "{}", None),
    ],
    "storm": [
        ("reconnect rate (conn/s)", lambda r: r["storm_rate"] or 0.0, "{:,.0f}", False),
        ("latency p99 (ms)", lambda r: ms(r["latency_us"]["p99"]), "{:.2f}", True),
        ("lost / duplicated", lambda r: f'{r["lost"]} / {r["duplicated"]}', "{}", None),
    ],
}


def case_name(r):
    n = r["subscribers"]
    n = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    extra = f", {r['channels']} ch" if r["channels"] > 1 else ""
    rate = "as fast as possible" if r["rate"] == 0 else f"{r['rate']:g} msg/s"
    if r["scenario"] == "idle":
        return f"idle, {n} subs"
    return f"{r['scenario']}, {n} subs{extra}, {rate} x {r['bytes']} B"


def quietness(r):
    """Busy CPU-seconds of other processes during the run (lower = cleaner)."""
    return r.get("other_cpu_s", float("inf"))


TRANSPORT_LABELS = ("meteord", "meteord-eventsource", "meteord-websocket", "nchan", "nchan-websocket")
# (numerator, denominator, column title)
TRANSPORT_RATIOS = (
    ("meteord-eventsource", "meteord", "ES / xhr"),
    ("meteord-websocket", "meteord", "WS / xhr"),
    ("meteord-eventsource", "nchan", "ES / Nchan ES"),
    ("meteord-websocket", "nchan-websocket", "WS / Nchan WS"),
)


def transports_table(cases, order):
    heads = ["xhrinteractive", "eventsource", "websocket", "Nchan ES", "Nchan WS"]
    print("| case | metric | " + " | ".join(heads) + " | " + " | ".join(t for _, _, t in TRANSPORT_RATIOS) + " |")
    print("|---|---|" + "---:|" * (len(heads) + len(TRANSPORT_RATIOS)))
    for key in order:
        by = cases[key]
        first = next(iter(by.values()))
        for name, get, fmt, lower in METRICS[first["scenario"]]:
            vals = {}
            for l in TRANSPORT_LABELS:
                try:
                    vals[l] = get(by[l]) if l in by else None
                except (KeyError, TypeError):
                    vals[l] = None
            cells = [fmt.format(vals[l]) if vals[l] is not None else "–" for l in TRANSPORT_LABELS]
            ratios = []
            for a, b, _ in TRANSPORT_RATIOS:
                x, y = vals[a], vals[b]
                ok = lower is not None and isinstance(x, (int, float)) and isinstance(y, (int, float)) and y
                ratios.append(f"{x / y:.2f}×" if ok else "")
            print(f"| {case_name(first)} | {name} | {' | '.join(cells)} | {' | '.join(ratios)} |")
        print(f"| {case_name(first)} | run result | " + " | ".join(
            "ok" if by.get(l, {}).get("ok") else ("–" if l not in by else "FAILED") for l in TRANSPORT_LABELS)
            + " |" * (len(TRANSPORT_RATIOS) + 1))


def main():
    args = sys.argv[1:]
    transports = args[:1] == ["--transports"]
    if transports:
        args = args[1:]
    runs = [json.loads(line) for path in args for line in open(path) if line.strip()]
    cases = {}
    order = []
    for r in runs:
        key = (r["scenario"], r["subscribers"], r["channels"], r["rate"], r["bytes"])
        if key not in cases:
            cases[key] = {}
            order.append(key)
        label = r["label"] or "?"
        # Several runs of one case: keep the one least disturbed by other
        # processes on the machine.
        old = cases[key].get(label)
        if old is None or quietness(r) < quietness(old):
            cases[key][label] = r
    if transports:
        transports_table(cases, order)
        return
    # meteord-noping (PingInterval 0) is the like-for-like row beside the
    # bare server and Nchan, neither of which pings; meteord (shipped
    # defaults) beside it shows what the pings cost.
    labels = ("meteord", "meteord-noping", "nchan", "bare")
    print("| case | metric | meteord | meteord, pings off | Nchan | bare server "
          "| meteord / Nchan | pings off / Nchan | pings off / bare |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        by = cases[key]
        first = next(iter(by.values()))
        for name, get, fmt, lower in METRICS[first["scenario"]]:
            vals = {l: (get(by[l]) if l in by else None) for l in labels}
            cells = [fmt.format(vals[l]) if vals[l] is not None else "–" for l in labels]

            def ratio(mine, peer):
                a, b = vals[mine], vals[peer]
                if lower is not None and isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                    return f"{a / b:.2f}× ({'lower' if lower else 'higher'} is better)"
                return ""

            ratios = [ratio("meteord", "nchan"), ratio("meteord-noping", "nchan"),
                      ratio("meteord-noping", "bare")]
            print(f"| {case_name(first)} | {name} | {' | '.join(cells)} | {' | '.join(ratios)} |")
        other = [f'{by[l]["other_cpu_s"]:.1f}' if l in by and "other_cpu_s" in by[l] else "–" for l in labels]
        print(f"| {case_name(first)} | other processes' CPU-s during the run | {' | '.join(other)} | | | |")
        print(f"| {case_name(first)} | run result | " + " | ".join(
            "ok" if by.get(l, {}).get("ok") else ("–" if l not in by else "FAILED") for l in labels) + " | | | |")


if __name__ == "__main__":
    main()
