#!/usr/bin/env python3
"""kmsg_gen.py OUT SENSOR SEQ [NPKT [PART/PARTS]]: writes OUT, one Kafka
message value as the Kafka output makes it (docs/KAFKA.md: one pcapng
section in host byte order, an interface "SENSOR/eth0", NPKT packets),
and prints the kcat -H arguments of its headers (stream
00000000000000a1, batch SEQ, part PART/PARTS, 1/1 by default). For
tests that write into a topic what a sensor did not."""
import struct
import sys


def block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("=II", btype, n) + body + struct.pack("=I", n)


def main():
    out, sensor, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
    npkt = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    part = sys.argv[5] if len(sys.argv) > 5 else "1/1"
    shb = block(0x0A0D0D0A, struct.pack("=IHHq", 0x1A2B3C4D, 1, 0, -1))
    name = (sensor + "/eth0").encode()
    opt = struct.pack("=HH", 2, len(name)) + name + b"\0" * (-len(name) % 4)
    idb = block(1, struct.pack("=HHI", 1, 0, 65535) + opt + b"\0\0\0\0")
    epbs = b""
    for i in range(npkt):
        # An Ethernet frame whose payload names sensor, batch and packet.
        data = b"\x02" * 6 + b"\x04" * 6 + b"\x88\xb5" + \
            ("%s %d %s %d" % (sensor, seq, part, i)).encode().ljust(46, b".")
        ts = (1700000000 + seq) * 1000000 + int(part.split("/")[0]) * 1000 + i
        epbs += block(6, struct.pack("=IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                     len(data), len(data)) + data)
    with open(out, "wb") as f:
        f.write(shb + idb + epbs)
    print("-H ps-sensor=%s -H ps-stream=00000000000000a1 -H ps-seq=%d "
          "-H ps-part=%s -H ps-packets=%d -k %s/00000000000000a1"
          % (sensor, seq, part, npkt, sensor))


main()
