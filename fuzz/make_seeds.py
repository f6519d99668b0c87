#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets under fuzz/seeds/<target>/.

Reproducible: the same script writes the same bytes (no clock, no random
numbers). The frames follow lib/ps_proto.c and docs/PROTOCOL.md; they are
built here by hand so that a bug in the library's encoder cannot hide the
same bug in its decoder. Run from anywhere: python3 fuzz/make_seeds.py
"""
import hashlib
import hmac
import os
import struct
import zlib

(HELLO, WELCOME, ERROR, IFACE, BATCH, ACK, STATS, HEARTBEAT, CLOSE, AUTH,
 AUTH_OK) = range(1, 12)
STORED, ZLIB = 0, 1
TSRES_USEC, TSRES_NSEC = 6, 9

# What fuzz/fuzz_session.c uses: its receiver nonce, and the key a keyed
# session (first byte bit 5) requires.
FUZZ_RNONCE = b"fuzz-rnonce-0001"
FUZZ_KEY = b"fuzz-shared-key"
SNONCE = bytes(range(16))  # the nonce hello() sends

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def frame(ftype, payload):
    return struct.pack(">BBHI", ftype, 0, 0, len(payload)) + payload


def hello(name=b"sensor-1", codecs=0b11, vmin=1, vmax=1, stream=None):
    """stream: a stream id (flag bit 0 and 8 more bytes), as ps-sensor
    sends; None for a connection that is its own stream."""
    flags = 0 if stream is None else 1
    tail = b"" if stream is None else struct.pack(">Q", stream)
    return frame(HELLO, b"PSTR" + struct.pack(">HHII", vmin, vmax, codecs,
                                               flags)
                 + SNONCE + struct.pack(">H", len(name)) + name + tail)


def auth_mac(key, receiver, rnonce, snonce, name):
    """HMAC-SHA256(key, label || rnonce || snonce || name), PROTOCOL.md."""
    label = b"PSTR auth rcvr  " if receiver else b"PSTR auth sensor"
    return hmac.new(key, label + rnonce + snonce + name,
                    hashlib.sha256).digest()


def auth(name=b"sensor-1", key=FUZZ_KEY, receiver=False, ftype=AUTH):
    return frame(ftype, auth_mac(key, receiver, FUZZ_RNONCE, SNONCE, name))


def welcome(codec=ZLIB, session=1):
    return frame(WELCOME, struct.pack(">HBBIIIQ", 1, codec, 0,
                                      8 * 1024 * 1024 + 20, 8 * 1024 * 1024,
                                      262144, session) + bytes(16))


def error(code, text):
    return frame(ERROR, struct.pack(">HH", code, len(text)) + text)


def iface(ifid=0, name=b"eth0", linktype=1, snaplen=65535, tsres=TSRES_USEC,
          opts=()):
    # Version 2: options (key, value) after the name.
    o = b"".join(bytes([len(k)]) + k + struct.pack(">H", len(v)) + v
                 for k, v in opts)
    return frame(IFACE, struct.pack(">IIIBBH", ifid, linktype, snaplen, tsres,
                                    0, len(name)) + name + o)


POD_OPTS = ((b"description", b"pod default/web-1 network namespace"),
            (b"netns.inode", b"4026532301"), (b"pod.namespace", b"default"),
            (b"pod.name", b"web-1"), (b"pod.uid", b"0f1e2d3c-aaaa"),
            (b"node", b"node-1"))


def record(ifid, sec, frac, data, wirelen=None):
    return struct.pack(">IQIII", ifid, sec, frac, len(data),
                       len(data) if wirelen is None else wirelen) + data


def packets(n, ifid=0, size=60):
    """n small Ethernet-looking packets, different from each other."""
    out = b""
    for i in range(n):
        body = bytes((i * 7 + k) & 0xFF for k in range(size - 14))
        eth = bytes.fromhex("ffffffffffff0200000000010800")
        out += record(ifid, 1700000000 + i, i * 1000, eth + body, size + 4)
    return out


def batch(seq, raw, count, codec=STORED, raw_len=None):
    data = zlib.compress(raw, 1) if codec == ZLIB else raw
    return frame(BATCH, struct.pack(">QBBBBII", seq, codec, 0, 0, 0, count,
                                    len(raw) if raw_len is None else raw_len)
                 + data)


def stats(ifid=0, captured=3, dropped=0, overflow=0):
    return frame(STATS, struct.pack(">IQQQQQQQ", ifid, captured, captured * 60,
                                    captured, dropped, 0, 0, overflow))


def ack(seq):
    return frame(ACK, struct.pack(">Q", seq))


def close(seq):
    return frame(CLOSE, struct.pack(">Q", seq))


def heartbeat():
    return frame(HEARTBEAT, b"")


def session_stored():
    return (hello(codecs=0b01) + iface() + batch(1, packets(3), 3)
            + heartbeat() + stats() + close(1))


def session_zlib():
    return (hello() + iface(0, b"eth0") + iface(1, b"wlan0", 105, 262144,
                                                TSRES_NSEC)
            + batch(1, packets(4), 4, ZLIB)
            + batch(2, packets(2, ifid=1, size=200), 2, ZLIB)
            + batch(2, packets(2, ifid=1, size=200), 2, ZLIB)  # duplicate
            + stats(0, 4) + stats(1, 2, dropped=5) + close(2))


# What fuzz/fuzz_stream.c's sensor is: its name, its nonce, its key.
STREAM_SENSOR = b"fuzz-sensor"
STREAM_SNONCE = b"fuzz-snonce-0001"
# The receiver's replies below are what lib/ps_session.c sends that
# sensor (tests/test_ssession.c checks it): its default limits, session
# id 1, this nonce, zlib (the sensor offers stored and zlib).
STREAM_RNONCE = b"fuzz-rnonce-0001"
RCV_MAX_BATCH_RAW = 4 * 1024 * 1024 + 24 + 262144
RCV_MAX_FRAME = 20 + RCV_MAX_BATCH_RAW


def rcv_welcome(flags=0, codec=ZLIB, session=1, nonce=STREAM_RNONCE,
                version=2):
    return frame(WELCOME, struct.pack(">HBBIIIQ", version, codec, flags,
                                      RCV_MAX_FRAME, RCV_MAX_BATCH_RAW,
                                      262144, session) + nonce)


def rcv_auth_ok(key=FUZZ_KEY):
    return frame(AUTH_OK, auth_mac(key, True, STREAM_RNONCE, STREAM_SNONCE,
                                   STREAM_SENSOR))


def write(target, name, data):
    assert len(data) < 64 * 1024, (target, name)
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # fuzz_frame: the input is a byte stream of frames.
    write("fuzz_frame", "session-stored", session_stored())
    # Version 2 STATS: 68 bytes, sampled_out last.
    write("fuzz_frame", "stats-v2",
          frame(STATS, struct.pack(">IQQQQQQQQ", 0, 3, 180, 3, 0, 0, 0, 0, 9)))
    write("fuzz_frame", "session-zlib", session_zlib())
    write("fuzz_frame", "receiver-replies",
          welcome() + ack(1) + heartbeat() + error(508, b"batches are missing")
          + close(1))
    # A leading byte with the top bit set picks tight limits; it is not a
    # frame type, so parsing resynchronises after it.
    write("fuzz_frame", "tight-limits",
          b"\x80" + hello() + iface() + batch(1, packets(5), 5)
          + batch(2, packets(1, size=1000), 1))
    write("fuzz_frame", "iface-options",
          iface(1, b"default/web-1/eth0", opts=POD_OPTS)
          + iface(2, b"x/lo", opts=((b"k", b"v" * 1024),))
          + iface(3, b"dup", opts=((b"k", b"1"), (b"k", b"2")))
          + iface(4, b"bad", opts=((b"K!", b"1"),))
          + iface(5, b"many", opts=tuple((b"k%d" % i, b"v")
                                         for i in range(17)))
          + iface(6, b"cut", opts=((b"key", b"value"),))[:-3])
    write("fuzz_frame", "bad-frames",
          frame(BATCH, b"\x00" * 19) + error(1, b"x" * 1025)
          + iface(300) + hello(vmin=2, vmax=1) + stats(256)
          + batch(3, packets(2), 3))

    # fuzz_session: first byte = chunk size (bits 0-4, 0 = all at once),
    # bit 5 = shared key required, bit 6 = sink refuses the third packet,
    # bit 7 = tight limits.
    write("fuzz_session", "stored-all", b"\x00" + session_stored())
    write("fuzz_session", "zlib-chunk1", b"\x01" + session_zlib())
    write("fuzz_session", "zlib-chunk7", b"\x07" + session_zlib())
    write("fuzz_session", "refuse-third", b"\x40" + session_zlib())
    write("fuzz_session", "bad-seq",
          b"\x00" + hello() + iface() + batch(5, packets(1), 1))
    write("fuzz_session", "no-hello", b"\x00" + iface() + close(0))
    # A stream: gaps are batches the sensor dropped, duplicates are
    # skipped, overflow is reported in the statistics.
    write("fuzz_session", "stream-gap",
          b"\x00" + hello(stream=0x0102030405060708) + iface()
          + batch(1, packets(2), 2) + batch(4, packets(1), 1)
          + batch(4, packets(1), 1) + stats(0, 3, overflow=7) + close(4))
    # raw_len declared 1 KiB, inflates to 62 KiB.
    bomb_raw = packets(1, size=1000) * 62
    write("fuzz_session", "bomb",
          b"\x00" + hello() + iface()
          + batch(1, bomb_raw, 1, ZLIB, raw_len=1024))
    write("fuzz_session", "tight-oversized",
          b"\x80" + hello() + iface()
          + batch(1, packets(9), 9) + close(1))
    write("fuzz_session", "unannounced-iface",
          b"\x00" + hello() + iface() + batch(1, packets(1, ifid=3), 1))
    write("fuzz_session", "sensor-error",
          b"\x03" + hello() + error(3, b"capture failed\x01\n"))
    # Time stamps no file holds (issue 9): the callback sink gets them
    # verbatim; seconds are the wire's unsigned view of a signed value.
    eth = bytes.fromhex("ffffffffffff0200000000010800") + bytes(46)
    write("fuzz_session", "ts-extremes",
          b"\x00" + hello() + iface(0, tsres=TSRES_NSEC)
          + iface(1, b"eth1", tsres=TSRES_USEC)
          + batch(1, record(0, (1 << 63) - 1, 1000000000, eth)
                  + record(1, (1 << 63) - 1, 1000000, eth)
                  + record(0, (1 << 64) - 1, 0xFFFFFFFF, eth)
                  + record(1, 1 << 63, 0, eth), 4)
          + close(1))
    # Keyed sessions: the right proof, then a stream; a wrong key; no
    # proof; the receiver's proof reflected back.
    write("fuzz_session", "auth-ok",
          b"\x20" + hello() + auth() + iface() + batch(1, packets(3), 3)
          + close(1))
    write("fuzz_session", "auth-ok-chunk5",
          b"\x25" + hello(b"s") + auth(b"s") + iface()
          + batch(1, packets(2), 2, ZLIB) + stats() + close(1))
    write("fuzz_session", "auth-wrong-key",
          b"\x20" + hello() + auth(key=b"fuzz-shared-kez") + iface())
    write("fuzz_session", "auth-missing",
          b"\x20" + hello() + iface() + batch(1, packets(1), 1))
    write("fuzz_session", "auth-reflected",
          b"\x20" + hello() + auth(receiver=True, ftype=AUTH_OK))

    # fuzz_stream: first byte = chunk size (bits 0-4, 0 = all at once),
    # bit 5 = the sensor proves a shared key, bit 6 = it asks for the
    # close once active, bit 7 = a 64 KiB replay buffer; then what a
    # receiver sends. The sensor has batches 1..6 (1..3 went to a broken
    # connection) and seals one more per chunk until it asks to close.
    # Chunks of 16 bytes: the welcome takes three, each ACK one, so the
    # sensor writes its batches between the receiver's replies.
    acks = b"".join(ack(i) for i in range(1, 6))
    write("fuzz_stream", "real-replies",
          b"\x10" + rcv_welcome() + ack(0) + acks + heartbeat())
    write("fuzz_stream", "real-replies-keyed",
          b"\x30" + rcv_welcome(flags=1) + rcv_auth_ok() + ack(0) + acks)
    # A version 1 receiver (every build before the control frames)
    # answering a version 2 sensor: it chooses version 1 and the sensor
    # streams without them.
    write("fuzz_stream", "old-receiver-v1",
          b"\x10" + rcv_welcome(version=1) + ack(0) + acks + heartbeat())
    write("fuzz_stream", "all-at-once",
          b"\x00" + rcv_welcome() + ack(0) + ack(2) + heartbeat() + ack(3))
    # Active after chunk 4, when batch 10 is the last: CLOSE 10.
    write("fuzz_stream", "close-confirmed",
          b"\x50" + rcv_welcome() + ack(0) + ack(10) + close(10))
    write("fuzz_stream", "close-wrong-seq",
          b"\x50" + rcv_welcome() + ack(0) + close(7))
    write("fuzz_stream", "resume-covers-limbo",
          b"\x90" + rcv_welcome() + ack(1) + ack(3) + ack(6))
    write("fuzz_stream", "resume-beyond-sent",
          b"\x00" + rcv_welcome() + ack(9))
    write("fuzz_stream", "ack-backwards",
          b"\x10" + rcv_welcome() + ack(2) + ack(4) + ack(3))
    write("fuzz_stream", "refused-full",
          b"\x00" + error(509, b"the receiver is at its limit of 1024 "
                                b"sensors"))
    write("fuzz_stream", "refused-after-welcome",
          b"\x08" + rcv_welcome() + error(508, b"bad\x01\nline"))
    write("fuzz_stream", "key-not-asked", b"\x20" + rcv_welcome())
    write("fuzz_stream", "key-asked-none", b"\x00" + rcv_welcome(flags=1))
    write("fuzz_stream", "wrong-proof",
          b"\x20" + rcv_welcome(flags=1) + rcv_auth_ok(b"fuzz-shared-kez"))
    write("fuzz_stream", "codec-not-offered",
          b"\x00" + rcv_welcome(codec=2))
    write("fuzz_stream", "answered-with-tls",
          b"\x00" + bytes.fromhex("160303003d0200003903030000") + bytes(50))
    # One byte per chunk, 250 ms each: the hello deadline (10 s) passes
    # before the welcome is whole.
    write("fuzz_stream", "hello-timeout", b"\x01" + rcv_welcome()[:47])
    write("fuzz_stream", "sensor-frames",
          b"\x00" + rcv_welcome() + ack(0) + iface() + batch(1, packets(1), 1))

    # fuzz_codec: 4-byte declared length, then zlib data; the whole input
    # also makes a compress/decompress round trip.
    text = b"".join(b"line %d of some compressible text\n" % i
                    for i in range(200))
    raw = packets(20)
    write("fuzz_codec", "exact", struct.pack(">I", len(raw))
          + zlib.compress(raw, 6))
    write("fuzz_codec", "text", struct.pack(">I", len(text))
          + zlib.compress(text, 9))
    write("fuzz_codec", "short-declared", struct.pack(">I", 100)
          + zlib.compress(text, 1))
    write("fuzz_codec", "long-declared", struct.pack(">I", 1 << 20)
          + zlib.compress(text, 1))
    write("fuzz_codec", "trailing", struct.pack(">I", len(text))
          + zlib.compress(text, 1) + b"junk")
    write("fuzz_codec", "incompressible",
          bytes((i * 2654435761 >> 13) & 0xFF for i in range(3000)))
    write("fuzz_codec", "empty", b"")

    # fuzz_pcapfmt: 21-byte records (resolution byte, seconds, fraction,
    # caplen selector, len), then an interface name.
    INT64_MAX, INT64_MIN = (1 << 63) - 1, -(1 << 63)
    U32 = 0xFFFFFFFF

    def ts(res, sec, frac, caplen=60, wirelen=None, nano=False, raw=False):
        b0 = (0x80 | res) if raw else (1 if res == TSRES_NSEC else 0)
        b0 |= 0x10 if nano else 0
        return struct.pack(">BqII I", b0, sec, frac, caplen,
                           caplen if wirelen is None else wirelen)

    write("fuzz_pcapfmt", "ordinary",
          ts(TSRES_USEC, 1700000000, 123456)
          + ts(TSRES_NSEC, 1700000000, 123456789, nano=True) + b"eth0")
    # Issue 9, F1: INT64_MAX and a whole second, both directions.
    write("fuzz_pcapfmt", "int64-max-whole-second",
          ts(TSRES_NSEC, INT64_MAX, 1000000000)
          + ts(TSRES_USEC, INT64_MAX, 1000000, nano=True)
          + ts(TSRES_NSEC, INT64_MAX, 999999999)
          + ts(TSRES_USEC, INT64_MAX - 4294, U32, nano=True))
    # The 32-bit seconds field's edges; fractions at, above and far
    # above the unit, verbatim and converted.
    write("fuzz_pcapfmt", "uint32-edges",
          ts(TSRES_USEC, U32, 999999) + ts(TSRES_USEC, U32, 1000000)
          + ts(TSRES_USEC, U32, 1000000, nano=True)
          + ts(TSRES_USEC, U32 - 1, 1000000, nano=True)
          + ts(TSRES_NSEC, U32 - 4, U32) + ts(TSRES_NSEC, U32 - 3, U32)
          + ts(TSRES_USEC, 1 << 32, 0) + ts(TSRES_NSEC, 1 << 31, U32))
    # Negative seconds: sign-extended 32-bit values, and below them.
    write("fuzz_pcapfmt", "negative",
          ts(TSRES_USEC, -1, 5) + ts(TSRES_NSEC, -(1 << 31), 0, nano=True)
          + ts(TSRES_USEC, -(1 << 31) - 1, 0) + ts(TSRES_NSEC, INT64_MIN, U32)
          + ts(TSRES_USEC, -1, 1000000, nano=True))
    # pcapng's 64 bits: the last unit in ns and us, and one past.
    write("fuzz_pcapfmt", "pcapng-edges",
          ts(TSRES_NSEC, 18446744073, 709551615)
          + ts(TSRES_NSEC, 18446744073, 709551616)
          + ts(TSRES_USEC, 18446744073709, 551615)
          + ts(TSRES_USEC, 18446744073709, 551616)
          + ts(TSRES_NSEC, 18446744073, 1000000000))
    # caplen: 0, the largest, one past it, one that would wrap a 32-bit
    # block length; odd resolutions (0, 3, 10, 15).
    write("fuzz_pcapfmt", "lengths-resolutions",
          ts(TSRES_USEC, 1, 0, caplen=0)
          + ts(TSRES_USEC, 1, 0, caplen=0x40000008, wirelen=U32)
          + ts(TSRES_NSEC, 1, 0, caplen=0x40000009)
          + ts(TSRES_USEC, 1, 0, caplen=U32)
          + ts(0, 5, 7, raw=True) + ts(3, 5, 4321, raw=True, nano=True)
          + ts(10, 5, 7, raw=True) + ts(15, 5, 7, raw=True) + b"x" * 20)

    # fuzz_tail: byte 0 picks the format (bit 0 pcapng), nanosecond pcap
    # (bit 1), the output's link type (bits 2-3: 1, 101, 113,
    # 0x24000001) and an I/O error (bit 4) at the offset in bytes 1-2;
    # then the file, as --append finds it.
    def tail(fmt_ng=False, nano=False, lt=0, err=None):
        b0 = (1 if fmt_ng else 0) | (2 if nano else 0) | (lt << 2)
        b0 |= 0x10 if err is not None else 0
        return struct.pack(">BH", b0, err or 0)

    def pcap_hdr(linktype=1, nano=False, magic=None, ver=(2, 4)):
        m = magic if magic is not None else (0xA1B23C4D if nano
                                             else 0xA1B2C3D4)
        return struct.pack("<IHHiIII", m, ver[0], ver[1], 0, 0, 262144,
                           linktype)

    def pcap_rec(sec, frac, data, caplen=None):
        return struct.pack("<IIII", sec, frac,
                           len(data) if caplen is None else caplen,
                           len(data) + 4) + data

    eth = bytes.fromhex("ffffffffffff0200000000010800") + bytes(range(46))
    recs = b"".join(pcap_rec(1700000000 + i, i, eth[:20 + 13 * i])
                    for i in range(4))
    write("fuzz_tail", "pcap-whole", tail() + pcap_hdr() + recs)
    write("fuzz_tail", "pcap-torn", tail() + (pcap_hdr() + recs)[:-9])
    write("fuzz_tail", "pcap-torn-header", tail() + pcap_hdr()[:10])
    write("fuzz_tail", "pcap-nano-raw",
          tail(nano=True, lt=1) + pcap_hdr(101, nano=True) + recs)
    # What is not continued: another precision, link type, byte order,
    # version; text.
    write("fuzz_tail", "pcap-other-precision",
          tail(nano=True) + pcap_hdr() + recs)
    write("fuzz_tail", "pcap-other-linktype",
          tail(lt=3) + pcap_hdr(0x24000002) + recs)
    write("fuzz_tail", "pcap-swapped",
          tail() + struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    write("fuzz_tail", "pcap-version",
          tail() + pcap_hdr(ver=(2, 3)) + recs)
    write("fuzz_tail", "pcap-text", tail() + b"not a capture file at all")

    # fuzz_control: byte 0 picks the parser (0 ANNOUNCE, 1 CAPTURE_START,
    # 2 CAPTURE_CHANGE, 3 CAPTURE_STOP, 4 CAPTURE_STATE payloads; 5 a POST
    # /api/v1/captures body, 6 a PATCH body), the rest is its input.
    def t1(b):
        return struct.pack(">B", len(b)) + b

    def t2(b):
        return struct.pack(">H", len(b)) + b

    announce = (struct.pack(">I", 3) + t1(b"0.1.0") + t1(b"web-7")
                + struct.pack(">H", 2) + struct.pack(">I", 1) + t1(b"eth0")
                + struct.pack(">I", 101) + t1(b"tun0")
                + struct.pack(">B", 2) + t1(b"app") + t1(b"web")
                + t1(b"zone") + t1(b""))
    write("fuzz_control", "announce", b"\x00" + announce)
    write("fuzz_control", "announce-bad-key",
          b"\x00" + announce.replace(b"\x04zone", b"\x044one"))
    write("fuzz_control", "announce-short", b"\x00" + announce[:-3])
    start = (struct.pack(">QQQIIII", 7, 600000, 0, 65535, 1000, 10, 0)
             + struct.pack(">B", 1) + t1(b"eth0") + t2(b"tcp port 443"))
    write("fuzz_control", "capture-start", b"\x01" + start)
    write("fuzz_control", "capture-start-flags",
          b"\x01" + start[:36] + b"\x00\x00\x00\x01" + start[40:])
    write("fuzz_control", "capture-change",
          b"\x02" + struct.pack(">QIII", 7, 1, 0, 0) + t2(b"udp"))
    write("fuzz_control", "capture-stop", b"\x03" + struct.pack(">Q", 7))
    write("fuzz_control", "capture-stop-zero", b"\x03" + bytes(8))
    write("fuzz_control", "capture-state",
          b"\x04" + struct.pack(">QBBH", 7, 3, 0, 1) + struct.pack(">I", 0)
          + struct.pack(">QQ", 120, 4) + t2(b"duration reached"))
    # The sensor's own capture (state 6, id 2^63): filter, then sample_n
    # and max_pps.
    write("fuzz_control", "capture-state-own",
          b"\x04" + struct.pack(">QBBH", 1 << 63, 6, 0, 1) + struct.pack(">I", 0)
          + struct.pack(">QQ", 20, 60) + t2(b"udp port 9999")
          + struct.pack(">II", 4, 0))
    write("fuzz_control", "api-capture",
          b"\x05" + b'{"sensors": {"labels": {"app": "web"}}, "filter": '
          b'"udp port 9999", "duration_s": 3, "interfaces": ["s0"], '
          b'"snaplen": 65535, "sample": "1/10", "max_pps": 1000}')
    write("fuzz_control", "api-capture-glob",
          b"\x05" + b'{"sensors": ["web-*", "db-1"], "count": 10}')
    write("fuzz_control", "api-capture-bad",
          b"\x05" + b'{"sensors": "web-*", "sensors": "x", "sample": "1/0"}')
    write("fuzz_control", "api-change",
          b"\x06" + b'{"filter": "udp port 9997", "sample": "1/2"}')
    write("fuzz_control", "api-change-empty", b"\x06" + b"{}")
    # 7: the receiver's captures' state (STATE.captures).
    capstate = (
        b'{"version": 1, "next_id": 3, "captures": [{"id": 2, '
        b'"created_ms": 1764652000000, "stop_requested": false, '
        b'"output_opened": true, "request": {"names": ["web-*"], '
        b'"labels": {"app": "web"}, "filter": "udp port 9999", '
        b'"interfaces": ["s0"], "snaplen": 0, "max_pps": 0, "sample_n": 0, '
        b'"duration_ms": 4000, "count": 0, "output": "k-{capture}.pcap"}, '
        b'"paths": ["/d/k-2.pcap"], "sensors": [{"sensor": "web-1", '
        b'"state": "running", "reason": "", "packets": 10, "bytes": 900, '
        b'"sensor_packets": 10, "sampled_out": 0, '
        b'"stream": "8f0c2a7d11e45b90", "seq": 17, '
        b'"wire_id": "0000000000000002"}], "own": false, '
        b'"read_only": false}]}')
    write("fuzz_control", "capture-state-file", b"\x07" + capstate)
    write("fuzz_control", "capture-state-file-bad",
          b"\x07" + capstate.replace(b'"next_id": 3', b'"next_id": 1'))
    write("fuzz_control", "capture-state-file-dotdot",
          b"\x07" + capstate.replace(b'"k-{capture}', b'"../k-{capture}'))
    # A record no sensor could have sent (caplen past 262144) ends it.
    write("fuzz_tail", "pcap-caplen-past-max",
          tail() + pcap_hdr() + recs[:36]
          + struct.pack("<IIII", 5, 5, 262145, 262145) + eth)
    write("fuzz_tail", "pcap-read-error",
          tail(err=24 + 50) + pcap_hdr() + recs)

    def block(btype, body, be=False):
        e = ">" if be else "<"
        n = 12 + len(body)
        return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)

    def shb(be=False):
        e = ">" if be else "<"
        return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                     + struct.pack(e + "HH", 0, 0), be)

    def idb(linktype=1, be=False):
        e = ">" if be else "<"
        return block(1, struct.pack(e + "HHI", linktype, 0, 262144)
                     + struct.pack(e + "HHB3xHH", 9, 1, 6, 0, 0), be)

    def epb(data, be=False):
        e = ">" if be else "<"
        pad = (-len(data)) % 4
        return block(6, struct.pack(e + "IIIII", 0, 0, 1700000000, len(data),
                                    len(data)) + data + bytes(pad)
                     + struct.pack(e + "I", 0), be)

    def isb(be=False):
        e = ">" if be else "<"
        return block(5, struct.pack(e + "III", 0, 0, 5)
                     + struct.pack(e + "HH", 0, 0), be)

    ng = shb() + idb() + epb(eth[:21]) + epb(eth[:60]) + isb()
    ngbe = shb(True) + idb(101, True) + epb(eth[:33], True)
    write("fuzz_tail", "pcapng-whole", tail(True) + ng)
    write("fuzz_tail", "pcapng-torn", tail(True) + ng[:-30])
    write("fuzz_tail", "pcapng-torn-first", tail(True) + ng[:20])
    write("fuzz_tail", "pcapng-big-endian", tail(True) + ngbe)
    write("fuzz_tail", "pcapng-two-sections", tail(True) + ng + ngbe[:-2])
    bad = bytearray(ng)
    bad[len(shb() + idb() + epb(eth[:21])) - 4] ^= 0xFF  # its trailer
    write("fuzz_tail", "pcapng-bad-trailer", tail(True) + bytes(bad))
    # Blocks that do not begin with a section header are not pcapng.
    write("fuzz_tail", "pcapng-no-section", tail(True) + idb() + ng)
    write("fuzz_tail", "pcapng-text", tail(True) + b"0123456789abcdef")
    write("fuzz_tail", "pcapng-read-error",
          tail(True, err=len(shb() + idb()) + 8) + ng)
    write("fuzz_tail", "empty", tail(True))

    # fuzz_cli: strings as typed on a command line.
    for i, s in enumerate([b"127.0.0.1:5000", b"[::1]:0", b"[fe80::1%eth0]:9",
                           b":5000", b"5000", b"receiver.example.org:65535",
                           b"host:65536", b"::1:80", b"18446744073709551615",
                           b"18446744073709551616", b"007", b"[]:1",
                           b"a:b:c", b"h\x01st:1", b"[x]y:1",
                           # review, issue 9: brackets around a name or
                           # IPv4, sizes out of range
                           b"[127.0.0.1]:5555", b"[fe80::1%]:1",
                           b"[::ffff:10.0.0.1]:80", b"99999999999g",
                           b"18446744073709551615k", b"1000000000",
                           b"64k", b"0", b"outside00", b"0" * 55 + b"m"]):
        write("fuzz_cli", "arg-%02d" % i, s)
    # Command lines (one argument a line) for the common options.
    for i, s in enumerate([b"--tls-ca\nx\n--tls-ca\ny", b"--tls-cert=\n-q",
                           b"-Z\nnobody\n-v\n--tls-client-ca\nca.pem",
                           b"--tls-insecure\n--tls-pin\nsha256:AAAA\n-a\nb",
                           b"-qvZ\nu\n--auth-key-file\nk\n--beta\n-V",
                           b"--tls-k\nk\n--tls\n--alpha=\n-x", b"-h",
                           b"--relinquish-privileges\n\n--auth-key-file"]):
        write("fuzz_cli", "opts-%02d" % i, s)


if __name__ == "__main__":
    main()
