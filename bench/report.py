#!/usr/bin/env python3
"""Turns bench/run.sh's results.tsv into markdown tables (medians over runs).

Usage: report.py results.tsv
"""
import statistics
import sys
from collections import defaultdict


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


def extra(r, key):
    for part in (r.get("extra") or "").split():
        if part.startswith(key + "="):
            return num(part.split("=", 1)[1])
    return None


def main():
    rows = []
    with open(sys.argv[1]) as fh:
        head = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            vals = line.rstrip("\n").split("\t")
            rows.append(dict(zip(head, vals + [""] * (len(head) - len(vals)))))

    by = defaultdict(list)
    for r in rows:
        by[(r["scenario"], r["tool"], r["param"])].append(r)

    # ---------------------------------------------------------------- live
    rates = []
    for r in rows:
        if r["scenario"] == "live" and r["param"] not in rates:
            rates.append(r["param"])
    if rates:
        print("### live capture (veth, tcpreplay), medians of runs\n")
        print("Loss = sent by tcpreplay minus written to the output file. "
              "CPU = user+sys seconds of the whole process life; "
              "per Mpkt = CPU / packets sent * 1e6.\n")
        variants = [("", "default (lz4)"), ("-none", "--compress none")]
        variants = [v for v in variants
                    if any(by[("live", "ps-sensor" + v[0], r)] for r in rates)]
        print("| rate (pps) | sensor settings | runs | sent | achieved pps | "
              "tcpdump written | tcpdump kernel drops | tcpdump loss % | "
              "ps written | sensor kernel drops | ps loss % |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rate in rates:
            td = by[("live", "tcpdump", rate)]
            for sfx, label in variants:
                ps = by[("live", "ps-sensor" + sfx, rate)]
                if not ps:
                    continue
                sent = med([num(r["sent"]) for r in ps])
                pps = med([num(r["sent"]) / extra(r, "replay_s")
                           for r in ps + td if extra(r, "replay_s")])
                tdl = med([100.0 * (num(r["sent"]) - num(r["written"])) /
                           num(r["sent"]) for r in td if num(r["sent"])])
                psl = med([100.0 * (num(r["sent"]) - num(r["written"])) /
                           num(r["sent"]) for r in ps if num(r["sent"])])
                print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |"
                      % (rate, label, len(ps), f(sent, "{:.0f}"),
                         f(pps, "{:.0f}"),
                         f(med([num(r["written"]) for r in td]), "{:.0f}"),
                         f(med([num(r["kdrop"]) for r in td]), "{:.0f}"),
                         f(tdl, "{:.3f}"),
                         f(med([num(r["written"]) for r in ps]), "{:.0f}"),
                         f(med([num(r["kdrop"]) for r in ps]), "{:.0f}"),
                         f(psl, "{:.3f}")))
        print()
        print("| rate (pps) | sensor settings | tcpdump CPU s | tcpdump CPU "
              "s/Mpkt | sensor CPU s | sensor CPU s/Mpkt | sensor/tcpdump CPU "
              "| receiver CPU s | (sensor+receiver)/tcpdump | tcpdump RSS MB "
              "| sensor RSS MB | receiver RSS MB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

        def cpu(r):
            return num(r["user_s"]) + num(r["sys_s"])

        for rate in rates:
            td = {r["run"]: r for r in by[("live", "tcpdump", rate)]}
            for sfx, label in variants:
                ps = {r["run"]: r for r in by[("live", "ps-sensor" + sfx, rate)]}
                rc = {r["run"]: r
                      for r in by[("live", "ps-receiver" + sfx, rate)]}
                if not ps:
                    continue
                ratio, ratio2 = [], []
                for run in ps:
                    if run in td and cpu(td[run]) > 0:
                        ratio.append(cpu(ps[run]) / cpu(td[run]))
                        if run in rc:
                            ratio2.append((cpu(ps[run]) + cpu(rc[run])) /
                                          cpu(td[run]))
                print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                      "| %s |" % (
                          rate, label,
                          f(med([cpu(r) for r in td.values()])),
                          f(med([cpu(r) / num(r["sent"]) * 1e6
                                 for r in td.values()])),
                          f(med([cpu(r) for r in ps.values()])),
                          f(med([cpu(r) / num(r["sent"]) * 1e6
                                 for r in ps.values()])),
                          f(med(ratio)), f(med([cpu(r) for r in rc.values()])),
                          f(med(ratio2)),
                          f(med([num(r["rss_kb"]) / 1024 for r in td.values()]),
                            "{:.1f}"),
                          f(med([num(r["rss_kb"]) / 1024 for r in ps.values()]),
                            "{:.1f}"),
                          f(med([num(r["rss_kb"]) / 1024 for r in rc.values()]),
                            "{:.1f}")))
        print()

    # ---------------------------------------------------------- throughput
    ip = by[("throughput", "iperf3", "tcp")]
    if ip:
        ipbps = med([extra(r, "bytes_per_s") for r in ip])
        print("### throughput from a file, loopback, medians of runs\n")
        print("| what | runs | packets | wall s | packets/s | MB/s (packet "
              "bytes) | % of iperf3 | CPU user+sys s | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("| iperf3 -c 127.0.0.1 (TCP ceiling) | %d | - | %s | - | %s | "
              "100 | - | - |" % (len(ip), f(med([num(r["wall_s"]) for r in ip]),
                                            "{:.0f}"),
                                 f(ipbps / 1e6, "{:.1f}")))
        labels = [
            ("tcpdump", "tcpdump -r BIG -w /dev/shm/OUT"),
            ("ps-sensor-none", "ps-sensor -r BIG --compress none -> -w /dev/shm"),
            ("ps-receiver-none", "  its ps-receiver"),
            ("ps-sensor-none-null", "ps-sensor -r BIG --compress none -> -w /dev/null"),
            ("ps-receiver-none-null", "  its ps-receiver"),
            ("ps-sensor-lz4", "ps-sensor -r BIG --compress lz4 -> -w /dev/shm"),
            ("ps-receiver-lz4", "  its ps-receiver"),
            ("ps-sensor-zlib", "ps-sensor -r BIG --compress zlib -> -w /dev/shm"),
            ("ps-receiver-zlib", "  its ps-receiver"),
            ("ps-sensor-none-tls", "ps-sensor -r BIG --compress none, TLS -> -w /dev/shm"),
            ("ps-receiver-none-tls", "  its ps-receiver"),
            ("ps-sensor-none-tls-null", "ps-sensor -r BIG --compress none, TLS -> -w /dev/null"),
            ("ps-receiver-none-tls-null", "  its ps-receiver"),
        ]
        for tool, label in labels:
            rs = by[("throughput", tool, "file")]
            if not rs:
                continue
            wall = med([num(r["wall_s"]) for r in rs])
            pk = med([num(r["written"]) for r in rs])
            pps = med([num(r["sent"]) / num(r["wall_s"]) for r in rs
                       if num(r["wall_s"])])
            bps = med([extra(r, "bytes") / num(r["wall_s"]) for r in rs
                       if num(r["wall_s"]) and extra(r, "bytes")])
            if tool.startswith("ps-receiver"):
                print("| %s | %d | %s | %s | - | - | - | %s | %s |" % (
                    label, len(rs), f(pk, "{:.0f}"), f(wall),
                    f(med([num(r["user_s"]) + num(r["sys_s"]) for r in rs])),
                    f(med([num(r["rss_kb"]) / 1024 for r in rs]), "{:.1f}")))
                continue
            print("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                label, len(rs), f(pk, "{:.0f}"), f(wall), f(pps, "{:.0f}"),
                f(bps / 1e6 if bps else None, "{:.1f}"),
                f(100.0 * bps / ipbps if bps and ipbps else None, "{:.1f}"),
                f(med([num(r["user_s"]) + num(r["sys_s"]) for r in rs])),
                f(med([num(r["rss_kb"]) / 1024 for r in rs]), "{:.1f}")))
        print()

    # ------------------------------------------------------------ sessions
    ns = sorted({r["param"] for r in rows if r["scenario"] == "sessions"},
                key=int)
    if ns:
        print("### sessions: one receiver, N sensor sessions from bench/loadgen "
              "(one process), 20k pps in total, medians of runs\n")
        print("CPU/Mpkt = receiver user+sys over its whole life (accepting, "
              "handshakes, idle 3 s, traffic, closing) / packets written * 1e6. "
              "Idle RSS = the receiver's VmRSS with every session connected and "
              "idle (before any packet).\n")
        print("| sessions | runs | sessions seen | failed | refused | sent | "
              "written | lost | receiver CPU s | of which before traffic | CPU s/Mpkt | "
              "traffic-only CPU s/Mpkt | CPU/Mpkt vs 1 session (all / traffic-only) "
              "| peak RSS MB | idle RSS MB | loadgen CPU s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = base2 = None
        for n in ns:
            rs = by[("sessions", "ps-receiver", n)]
            lg = by[("sessions", "loadgen", n)]
            cpu = med([num(r["user_s"]) + num(r["sys_s"]) for r in rs])
            per = med([(num(r["user_s"]) + num(r["sys_s"])) / num(r["written"]) * 1e6
                       for r in rs if num(r["written"])])
            pre = med([extra(r, "cpu_before_traffic_s") for r in rs])
            per2 = med([(num(r["user_s"]) + num(r["sys_s"]) -
                         (extra(r, "cpu_before_traffic_s") or 0)) /
                        num(r["written"]) * 1e6 for r in rs if num(r["written"])])
            if base is None:
                base, base2 = per, per2
            print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |" % (
                n, len(rs), f(med([extra(r, "sessions") for r in rs]), "{:.0f}"),
                f(med([extra(r, "failed") for r in rs]), "{:.0f}"),
                f(med([extra(r, "refused") for r in rs]), "{:.0f}"),
                f(med([num(r["sent"]) for r in rs]), "{:.0f}"),
                f(med([num(r["written"]) for r in rs]), "{:.0f}"),
                f(med([num(r["sent"]) - num(r["written"]) for r in rs
                       if num(r["sent"]) is not None and num(r["written"]) is not None]), "{:.0f}"),
                f(cpu), f(pre), f(per, "{:.3f}"), f(per2, "{:.3f}"),
                f(per / base if per and base else None, "{:.2f}"),
                f(per2 / base2 if per2 and base2 else None, "{:.2f}"),
                f(med([num(r["rss_kb"]) / 1024 for r in rs]), "{:.1f}"),
                f(med([extra(r, "idle_rss_kb") / 1024 for r in rs
                       if extra(r, "idle_rss_kb")]), "{:.1f}"),
                f(med([num(r["user_s"]) + num(r["sys_s"]) for r in lg]))))
        if len(ns) >= 2:
            lo, hi = ns[0], ns[-1]
            d = (int(hi) - int(lo))
            idle = med([extra(r, "idle_rss_kb") for r in by[("sessions", "ps-receiver", hi)]])
            idle0 = med([extra(r, "idle_rss_kb") for r in by[("sessions", "ps-receiver", lo)]])
            peak = med([num(r["rss_kb"]) for r in by[("sessions", "ps-receiver", hi)]])
            peak0 = med([num(r["rss_kb"]) for r in by[("sessions", "ps-receiver", lo)]])
            print()
            if idle and idle0:
                print("Per additional idle session: (idle RSS %s - idle RSS %s) / %d "
                      "= %.1f KiB. Per additional streaming session (peak RSS): "
                      "%.1f KiB." % (hi, lo, d, (idle - idle0) / d,
                                     (peak - peak0) / d if peak and peak0 else float("nan")))
        print()

    # ------------------------------------------------------------- latency
    lat = [(k, v) for k, v in by.items() if k[0] == "latency"]
    if lat:
        print("### latency: kernel capture time stamp to the packet on the "
              "output stream (last packet of each 3-packet burst)\n")
        print("| pipeline | bursts | packets seen | median ms | min ms | "
              "max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for (sc, tool, _), rs in sorted(lat):
            ms = [extra(r, "latency_ms") for r in rs]
            pk = sum(num(r["written"]) or 0 for r in rs)
            print("| %s | %d | %d | %s | %s | %s |" % (
                {"ps-sensor": "ps-sensor -> ps-receiver -w -",
                 "tcpdump-U": "tcpdump -U -w -"}.get(tool, tool), len(rs), pk,
                f(med(ms), "{:.1f}"), f(min(ms), "{:.1f}"),
                f(max(ms), "{:.1f}")))
        print()


if __name__ == "__main__":
    main()
