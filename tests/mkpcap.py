#!/usr/bin/env python3
"""mkpcap: writes a small deterministic capture file for the tests, so
they need no corpus.

    mkpcap.py OUT COUNT [SIZE]

Classic pcap (microseconds, LINKTYPE_ETHERNET, snaplen 262144) with
COUNT Ethernet/IPv4/UDP frames of SIZE bytes (default 200, at least
42) from 10.0.0.1:1000 to 10.0.0.2:2000, one per millisecond from
2024-01-01; each payload starts with the frame's number, so no two
frames are alike.
"""
import struct
import sys


def frame(i, size):
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    udp_len = size - 14 - 20
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, i & 0xFFFF, 0, 64,
                     17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    s = sum(struct.unpack("!10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    ip = ip[:10] + struct.pack("!H", ~s & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", 1000, 2000, udp_len, 0)
    body = b"%08d " % i
    body = (body * (udp_len // len(body) + 1))[:udp_len - 8]
    return eth + ip + udp + body


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    if size < 42 + 9:
        sys.exit("mkpcap: SIZE must be at least 51")
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        t0 = 1704067200
        for i in range(count):
            data = frame(i, size)
            f.write(struct.pack("<IIII", t0 + i // 1000, (i % 1000) * 1000,
                                len(data), len(data)))
            f.write(data)


if __name__ == "__main__":
    main()
