"""Hostile input on a node's peer port, from a client that completed TLS
with a registry member's certificate (or never did): an oversized frame
length, a truncated frame, malformed protobuf, an unknown message type, a
client that opens TCP and never speaks (handshake timeout), and 1,000
connections opened and dropped. Throughout, the node keeps serving its
other peers (lookups from js keep working, its session with js stays up),
its memory stays bounded and its log lines stay rate-limited."""
import os
import socket
import ssl
import struct
import time

from cbharness import (Federation, check, envelope, frame, id_number, pb_field, rss_kib, run_tests,
                       sanitized_build)

fed = None
LEARNER = id_number("320102", "19920115", "357")


def ok_lookup():
    r = fed.nodes["js"].cbctl("lookup", "--id", LEARNER, "--region", "sh", "--timeout-ms", 3000, expect=0)
    res = r.doc["results"][0]
    check(res["ok"] and res["verified"] and len(res["achievements"]) == 1, res)


def tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(os.path.join(fed.fed, "ah", "node.crt"), fed.key("ah"))
    return ctx


def session(hello=True):
    """A TLS session to sh as ah; reads sh's Hello; optionally sends ours."""
    s = socket.create_connection(("127.0.0.1", fed.ports["sh"]), timeout=10)
    t = tls_ctx().wrap_socket(s)
    hdr = recv_exact(t, 4)
    check(hdr is not None, "no Hello from sh")
    body = recv_exact(t, struct.unpack(">I", hdr)[0])
    check(body is not None, "Hello cut short")
    if hello:
        h = pb_field(1, "ah") + pb_field(2, 1) + pb_field(3, "lookup/v1") + pb_field(4, int(time.time() * 1000))
        t.sendall(frame(envelope(50, h)))
    return t


def recv_exact(t, n):
    buf = b""
    while len(buf) < n:
        try:
            c = t.recv(n - len(buf))
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            return None
        if not c:
            return None
        buf += c
    return buf


def closed_by_node(t, within=10):
    """True if the node closes the session (EOF) within the time."""
    t.settimeout(within)
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            c = t.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        if not c:
            return True
    return False


def refused_lines():
    return [e for e in fed.nodes["sh"].log_lines() if e["event"] in ("peer_refused", "peer_request_refused")]


def test_start():
    global fed
    fed = Federation().start()
    fed.wait_links()
    fed.nodes["sh"].cbctl("learner", "open", "--id", LEARNER, "--name", "张伟", expect=0)
    fed.nodes["sh"].cbctl("deposit", "--id", LEARNER, "--kind", "academic_course", "--issuer", "10272", "--code",
                          "X1", "--title", "高等数学", "--credits", "4", "--awarded", "2024-01-15", expect=0)
    ok_lookup()


def test_oversized_frame_length():
    t = session()
    t.sendall(b"\xff\xff\xff\xff")
    check(closed_by_node(t), "session kept open after a 4 GiB frame length")
    ok_lookup()


def test_truncated_frame():
    t = session()
    t.sendall(struct.pack(">I", 100) + b"x" * 10)
    t.close()
    t = session(hello=False)
    t.sendall(struct.pack(">I", 100)[:2])
    t.close()
    ok_lookup()


def test_malformed_protobuf():
    t = session()
    t.sendall(frame(b"\xff\xff\xff\xff\x0f"))
    check(closed_by_node(t), "session kept open after malformed protobuf")
    # Before Hello, too.
    t = session(hello=False)
    t.sendall(frame(b"\x0a\x80"))
    check(closed_by_node(t), "session kept open after malformed protobuf before Hello")
    ok_lookup()


def test_unknown_message_type():
    t = session()
    t.sendall(frame(envelope(99, b"\x08\x01")))
    t.settimeout(5)
    # Either an error reply or a closed session; never a crash or a hang.
    hdr = recv_exact(t, 4)
    if hdr is not None:
        body = recv_exact(t, struct.unpack(">I", hdr)[0])
        check(body is not None, "reply cut short")
    ok_lookup()
    # A request type the node does not serve, addressed as a request (Hello
    # as second message) closes too.
    t = session()
    h = pb_field(1, "ah") + pb_field(2, 1)
    t.sendall(frame(envelope(50, h)))
    check(closed_by_node(t), "second Hello accepted")


def test_silent_client_handshake_timeout():
    s = socket.create_connection(("127.0.0.1", fed.ports["sh"]), timeout=15)
    t0 = time.time()
    s.settimeout(15)
    try:
        data = s.recv(100)
    except ConnectionResetError:
        data = b""
    took = time.time() - t0
    check(data == b"", "node sent %r to a silent client" % data)
    check(3 < took < 12, "silent client closed after %.1fs (handshake timeout 5s)" % took)
    s.close()
    ok_lookup()


def flood(n):
    """n connections in batches of 100 open at once, then reset: a third
    silent, a third with a ClientHello cut short, a third not TLS at all."""
    junk = b"\x16\x03\x01\x02\x00" + os.urandom(40)
    for batch in range(n // 100):
        socks = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", fed.ports["sh"]), timeout=10)
            if i % 3 == 1:
                s.sendall(junk)
            elif i % 3 == 2:
                s.sendall(os.urandom(64))
            socks.append(s)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        if batch % 5 == 4:
            ok_lookup()
    time.sleep(1.0)
    ok_lookup()


def test_thousand_connections():
    pid = fed.nodes["sh"].proc.pid
    rss0 = rss_kib(pid)
    lines0 = len(refused_lines())
    log0 = len(fed.nodes["sh"].log_lines())
    flood(1000)
    rss1 = rss_kib(pid)
    # Up to 100 sessions at once cost their buffers once (the allocator
    # keeps the pages); a second round must not add to it: nothing leaks
    # per connection.
    flood(1000)
    rss2 = rss_kib(pid)
    # ASan keeps up to 256 MiB of freed memory in quarantine, so there the
    # bounds are loose; its leak check at exit (test_clean_stop) is the
    # sharper test.
    first, again = (393216, 262144) if sanitized_build() else (65536, 8192)
    check(rss1 - rss0 < first, "RSS grew %d KiB over the first 1,000 connections" % (rss1 - rss0))
    check(rss2 - rss1 < again, "RSS grew again by %d KiB over the next 1,000 connections" % (rss2 - rss1))
    logged = len(refused_lines()) - lines0
    check(0 < logged < 400, "%d refusal log lines for 2,000 connections: none, or not rate-limited" % logged)
    # The session with js never went down.
    downs = [e for e in fed.nodes["sh"].log_lines()[log0:] if e["event"] == "peer_down" and e.get("peer") == "js"]
    check(not downs, "sh lost js during the flood: %r" % downs)
    print("  RSS %d -> %d -> %d KiB, %d refusal lines logged" % (rss0, rss1, rss2, logged))


def test_clean_stop():
    for n in fed.nodes.values():
        check(n.stop() == 0, "%s did not stop cleanly:\n%s" % (n.id, n.log_tail()))
        n.log_lines()  # every line JSON, no sanitizer (leak) report


if __name__ == "__main__":
    run_tests([test_start, test_oversized_frame_length, test_truncated_frame, test_malformed_protobuf,
               test_unknown_message_type, test_silent_client_handshake_timeout, test_thousand_connections,
               test_clean_stop])
