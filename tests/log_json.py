#!/usr/bin/env python3
"""log_json.py: checks the tools' --log-format json lines (tests/log_json.sh).

    log_json.py A.log B.log R.log NAME_A_FILE OUTPATH_FILE NA BYTES_A NB BYTES_B

A.log and B.log are two sensors' standard error (sensor a's name is the
bytes in NAME_A_FILE, b's is "b"), R.log the receiver's, which wrote the
file whose path is the bytes of OUTPATH_FILE. NA/NB packets and BYTES_*
bytes are what the sensors' inputs hold. Exit 0, or 1 naming the first
line or field that is wrong.
"""
import datetime
import json
import re
import sys

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
LEVELS = {"error", "warning", "info", "debug"}


def expected_text(raw):
    """The string the tools must give for raw bytes: valid UTF-8 as it
    is, every other byte U+FFFD (Python's strict decoder is the judge of
    a valid sequence: no overlong forms, surrogates or code points above
    U+10FFFF)."""
    out, i = [], 0
    while i < len(raw):
        for n in (1, 2, 3, 4):
            try:
                ch = raw[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ch)
                i += n
                break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def fail(why):
    print("log_json.py: " + why, file=sys.stderr)
    sys.exit(1)


def read_lines(path, tool, sensor):
    recs = []
    with open(path, "rb") as f:
        data = f.read()
    if not data.endswith(b"\n"):
        fail("%s: does not end with a newline" % path)
    for no, raw in enumerate(data.split(b"\n")[:-1], 1):
        where = "%s:%d" % (path, no)
        try:
            text = raw.decode("utf-8")  # strict: valid UTF-8 only
        except UnicodeDecodeError as e:
            fail("%s: not UTF-8: %s" % (where, e))
        if any(ord(c) < 0x20 for c in text):
            fail("%s: a raw control character" % where)
        try:
            rec = json.loads(text)  # strict: no raw control characters
        except ValueError as e:
            fail("%s: not JSON (%s): %r" % (where, e, text))
        if not isinstance(rec, dict):
            fail("%s: not an object" % where)
        if not TS.match(rec.get("ts", "")):
            fail("%s: ts %r is not RFC 3339 UTC with microseconds" % (where, rec.get("ts")))
        datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        if rec.get("level") not in LEVELS:
            fail("%s: level %r" % (where, rec.get("level")))
        if rec.get("tool") != tool:
            fail("%s: tool %r, expected %r" % (where, rec.get("tool"), tool))
        for k in ("event", "msg"):
            if not isinstance(rec.get(k), str) or not rec[k]:
                fail("%s: no %s" % (where, k))
        if sensor is not None and rec.get("sensor") != sensor:
            fail("%s: sensor %r, expected %r" % (where, rec.get("sensor"), sensor))
        rec["_where"] = where
        recs.append(rec)
    if not recs:
        fail("%s: no lines" % path)
    return recs


def only(recs, event, sensor=None, count=1):
    got = [r for r in recs if r["event"] == event and
           (sensor is None or r.get("sensor") == sensor)]
    if len(got) != count:
        fail("%d %r lines (sensor %r), expected %d" % (len(got), event, sensor, count))
    return got


def fields(rec, want):
    for k, v in want.items():
        if rec.get(k) != v or type(rec.get(k)) is not type(v):
            fail("%s: %s is %r, expected %r" % (rec["_where"], k, rec.get(k), v))
        if isinstance(v, int) and str(v) not in rec["msg"]:
            fail("%s: %s=%d is not in msg too" % (rec["_where"], k, v))


def main():
    a_log, b_log, r_log, name_file, out_file = sys.argv[1:6]
    na, bytes_a, nb, bytes_b = map(int, sys.argv[6:10])
    with open(name_file, "rb") as f:
        name_a = expected_text(f.read())
    with open(out_file, "rb") as f:
        out_path = expected_text(f.read())
    if "\ufffd" not in name_a or '"' not in name_a or "\\" not in name_a:
        fail("the test's sensor name is not hostile enough")
    if "\n" not in out_path or "\x01" not in out_path or "\ufffd" not in out_path:
        fail("the test's file name is not hostile enough")

    for log, name, n, nbytes in ((a_log, name_a, na, bytes_a),
                                 (b_log, "b", nb, bytes_b)):
        recs = read_lines(log, "ps-sensor", name)
        only(recs, "connected")
        src = only(recs, "source_summary")[0]
        fields(src, {"captured": n, "acknowledged": n, "kernel_dropped": 0,
                     "interface_dropped": 0, "overflow_dropped": 0, "lost": 0,
                     "truncated": 0})
        s = only(recs, "summary")[0]
        fields(s, {"packets": n, "bytes": nbytes, "acknowledged": n,
                   "lost": 0, "overflow_dropped": 0, "reconnects": 0,
                   "batches_resent": 0})
        if not s["receiver"].startswith("127.0.0.1:"):
            fail("summary receiver %r" % s["receiver"])

    recs = read_lines(r_log, "ps-receiver", None)
    lis = only(recs, "listening")[0]
    if lis.get("output") != out_path or out_path not in lis["msg"]:
        fail("listening: output %r, expected %r" % (lis.get("output"), out_path))
    fields(lis, {"address": "127.0.0.1", "format": "pcap"})
    for name, n, nbytes in ((name_a, na, bytes_a), ("b", nb, bytes_b)):
        c = only(recs, "connected", name)[0]
        if name not in c["msg"]:
            fail("%s: the sensor is not in msg" % c["_where"])
        only(recs, "interface", name)
        d = only(recs, "disconnected", name)[0]
        fields(d, {"packets": n, "bytes": nbytes, "dropped": 0,
                   "kernel_dropped": 0, "interface_dropped": 0,
                   "overflow_dropped": 0})
        if d["level"] != "info":
            fail("%s: level %s" % (d["_where"], d["level"]))
    s = only(recs, "summary")[0]
    fields(s, {"sessions": 2, "sessions_failed": 0, "packets": na + nb,
               "bytes": bytes_a + bytes_b, "dropped": 0, "overflow_dropped": 0,
               "duplicate_batches": 0, "write_stalls": 0,
               "connections": 2, "connections_no_hello": 0})
    if "sensor" in s:
        fail("the receiver's summary names a sensor")
    print("ok: %d sensor and %d receiver lines" %
          (len(read_lines(a_log, "ps-sensor", name_a)) +
           len(read_lines(b_log, "ps-sensor", "b")), len(recs)))


main()
