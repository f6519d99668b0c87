#!/usr/bin/env python3
"""PCAP-over-IP peers for tests/pcap_over_ip*.sh, on 127.0.0.1 only.

  poip_peer.py listen PORT PORTFILE OUT
      A consumer that listens, as Arkime's pcap-over-ip-server does:
      binds PORT (0: any free one, written to PORTFILE), takes one
      connection and writes what it sends to OUT until it ends (or this
      process is killed: a "restart" of the consumer).
  poip_peer.py crowd PORT N SECONDS
      Opens N connections at once, reads from each for SECONDS, and
      prints "served S refused R": S sent data, R were closed without.
  poip_peer.py garbage PORT SECONDS
      One client that writes random bytes at the server while it reads
      its stream; prints "garbage client read B bytes".
  poip_peer.py tls-read PORT CAFILE OUT
      A TLS client (as stunnel in front of a consumer): verifies the
      server for 127.0.0.1 with CAFILE and writes the stream to OUT until
      it ends.
  poip_peer.py tls-listen PORTFILE CERT KEY OUT
      A TLS consumer that listens (any free port, written to PORTFILE),
      takes one connection and writes the stream to OUT until it ends.
  poip_peer.py slowread PORT BYTES_PER_S SECONDS
      A client that reads at a fixed, slow rate; prints "slow client
      read B bytes".
  poip_peer.py churn PORT SECONDS
      Connects, reads a little or nothing, and disconnects (half of the
      time with a reset), in a loop; prints "churn C connections".
  poip_peer.py refuse PORTFILE N
      A consumer that listens (any free port, written to PORTFILE) and
      closes each connection at once, N times; prints the seconds
      between one connection and the next, "gaps G1 G2 ...".
"""
import os
import random
import select
import socket
import struct
import sys
import time


def listen(port, portfile, out):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(1)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(tmp, portfile)
    c, _ = s.accept()
    with open(out, "wb") as f:
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
            f.flush()


def tls_read(port, cafile, out):
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", int(port))) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as c:
            with open(out, "wb") as f:
                while True:
                    try:
                        b = c.recv(65536)
                    except ssl.SSLEOFError:
                        break
                    if not b:
                        break
                    f.write(b)
                    f.flush()


def tls_listen(portfile, cert, key, out):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(tmp, portfile)
    raw, _ = s.accept()
    with ctx.wrap_socket(raw, server_side=True) as c:
        with open(out, "wb") as f:
            while True:
                try:
                    b = c.recv(65536)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break
                if not b:
                    break
                f.write(b)
                f.flush()


def crowd(port, n, seconds):
    socks = []
    for _ in range(int(n)):
        c = socket.create_connection(("127.0.0.1", int(port)))
        c.setblocking(False)
        socks.append(c)
    got = {c: 0 for c in socks}
    closed = set()
    end = time.time() + float(seconds)
    while time.time() < end and len(closed) < len(socks):
        live = [c for c in socks if c not in closed]
        r, _, _ = select.select(live, [], [], 0.1)
        for c in r:
            try:
                b = c.recv(65536)
            except ConnectionResetError:
                b = b""
            if b:
                got[c] += len(b)
            else:
                closed.add(c)
    served = sum(1 for c in socks if got[c] > 0)
    refused = sum(1 for c in socks if got[c] == 0 and c in closed)
    print("served %d refused %d" % (served, refused))


def garbage(port, seconds):
    c = socket.create_connection(("127.0.0.1", int(port)))
    c.setblocking(False)
    rnd = random.Random(7)
    end = time.time() + float(seconds)
    total = 0
    while time.time() < end:
        r, w, _ = select.select([c], [c], [], 0.05)
        if w:
            try:
                c.send(bytes(rnd.getrandbits(8) for _ in range(4096)))
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
        if r:
            b = c.recv(65536)
            if not b:
                break
            total += len(b)
    print("garbage client read %d bytes" % total)


def slowread(port, rate, seconds):
    c = socket.create_connection(("127.0.0.1", int(port)))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    end = time.time() + float(seconds)
    total = 0
    chunk = max(1, int(rate) // 20)
    while time.time() < end:
        b = c.recv(chunk)
        if not b:
            break
        total += len(b)
        time.sleep(0.05)
    print("slow client read %d bytes" % total)


def churn(port, seconds):
    rnd = random.Random(11)
    end = time.time() + float(seconds)
    n = 0
    while time.time() < end:
        try:
            c = socket.create_connection(("127.0.0.1", int(port)))
        except OSError:
            time.sleep(0.01)
            continue
        n += 1
        want = rnd.choice([0, 1, 100, 5000, 70000])
        c.settimeout(0.5)
        got = 0
        try:
            while got < want:
                b = c.recv(min(65536, want - got))
                if not b:
                    break
                got += len(b)
        except socket.timeout:
            pass
        if rnd.random() < 0.5:
            # A reset instead of a close: the server's next write fails.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        c.close()
    print("churn %d connections" % n)


def refuse(portfile, n):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(tmp, portfile)
    at = []
    for _ in range(int(n)):
        c, _ = s.accept()
        at.append(time.monotonic())
        c.close()
    print("gaps " + " ".join("%.2f" % (b - a) for a, b in zip(at, at[1:])))


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"listen": listen, "crowd": crowd, "garbage": garbage,
     "churn": churn, "slowread": slowread, "tls-read": tls_read,
     "tls-listen": tls_listen, "refuse": refuse}[cmd](*sys.argv[2:])
