"""Bad bytes on the admin socket: every case gets a clear Error (or, for a
truncated frame, a closed connection), the daemon keeps serving, and
nothing is stored. spec/admin.md "Errors"."""
import struct
import time

from cbharness import (F_DEPOSIT, F_HELLO, F_IMPORT, F_STATS, F_STATS_RESPONSE, Node, RawClient, check,
                       envelope, frame, id_number, pb_decode, pb_field, run_tests)

MAX_FRAME = 65536
node = None


def stats():
    c = RawClient(node.socket)
    c.send(frame(envelope(F_STATS, b"", request_id=77)))
    env = c.recv_frame()
    c.close()
    check(env is not None and F_STATS_RESPONSE in env, "stats reply: %r" % env)
    check(env[2][0] == 77, "request id not echoed")
    s = pb_decode(env[F_STATS_RESPONSE][0])
    return s.get(1, [0])[0], s.get(2, [0])[0]


def setup():
    global node
    node = Node("sh", limits={"max_frame_bytes": MAX_FRAME, "max_admin_connections": 4})
    node.init()
    node.start()


def test_oversized_frame():
    c = RawClient(node.socket)
    # Announce 1 GiB: refused from the header alone, nothing allocated.
    c.send(struct.pack(">I", 1 << 30))
    reason = c.expect_error("FRAME_TOO_LARGE")
    check("1073741824" in reason and str(MAX_FRAME) in reason, reason)
    check(c.closed(), "connection left open after an oversized frame")
    # Just over the limit, with the bytes actually sent.
    c = RawClient(node.socket)
    try:
        c.send(struct.pack(">I", MAX_FRAME + 1) + b"\0" * (MAX_FRAME + 1))
    except (BrokenPipeError, ConnectionResetError):
        pass
    c.expect_error("FRAME_TOO_LARGE")
    check(node.alive(), "node died")


def test_zero_length_frame():
    c = RawClient(node.socket)
    c.send(struct.pack(">I", 0))
    c.expect_error("MALFORMED")
    check(c.closed(), "connection open after a zero-length frame")


def test_malformed_protobuf():
    for junk in (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",    # varint too long
                 b"\x0f\x01",                                      # wire type 7
                 b"\x08\x01\x8a\x01\x10\x08\x01",                  # field 17 claims 16 bytes, has 3
                 b"\x08\x01\xaa\x01\x05abc"):                      # stats field truncated
        c = RawClient(node.socket)
        c.send(frame(junk))
        reason = c.expect_error("MALFORMED")
        check("not a valid Envelope" in reason, reason)
        check(c.closed(), "connection open after malformed protobuf")


def test_unknown_type_keeps_connection():
    c = RawClient(node.socket)
    # Field 49 (free range) carries nothing the node knows.
    c.send(frame(envelope(49, b"", request_id=5)))
    reason = c.expect_error("UNKNOWN_TYPE")
    check("no known message type" in reason, reason)
    # A peer message (field 50+) is not served on the admin socket.
    c.send(frame(envelope(50, b"", request_id=6)))
    reason = c.expect_error("UNKNOWN_TYPE")
    check("not served" in reason, reason)
    # A response type sent as a request.
    c.send(frame(envelope(F_STATS_RESPONSE, b"", request_id=7)))
    c.expect_error("UNKNOWN_TYPE")
    # Same connection still answers.
    c.send(frame(envelope(F_HELLO, pb_field(1, "raw test"), request_id=8)))
    env = c.recv_frame()
    check(env is not None and 12 in env and env[2][0] == 8, "hello after errors: %r" % env)
    c.close()


def test_wrong_version():
    c = RawClient(node.socket)
    c.send(frame(envelope(F_STATS, b"", version=2, request_id=9)))
    reason = c.expect_error("UNSUPPORTED_VERSION")
    check("version 2" in reason, reason)
    check(c.closed(), "connection open after a wrong version")


def achievement(kind=1, credits=3000, awarded=20210630, title="电子技术"):
    return (pb_field(3, kind) + pb_field(4, "10272") + pb_field(5, "C001") + pb_field(6, title)
            + pb_field(8, credits) + pb_field(10, awarded))


def test_invalid_content():
    ident = id_number("310101", "19900307", "123")
    cases = [
        (pb_field(1, ident) + pb_field(2, achievement(kind=9)), "kind 9"),
        (pb_field(1, ident) + pb_field(2, achievement(credits=5_000_000)), "credits_milli"),
        (pb_field(1, ident) + pb_field(2, achievement(awarded=1)), "awarded_on"),
        (pb_field(1, ident) + pb_field(2, achievement(title=b"\xff\xfe bad utf8")), "UTF-8"),
        (pb_field(1, ident) + pb_field(2, achievement(title="")), "title is required"),
        (pb_field(1, ident), "achievement is required"),
        (pb_field(1, "x" * 40) + pb_field(2, achievement()), "id_number is 40 bytes"),
    ]
    c = RawClient(node.socket)
    for body, fragment in cases:
        c.send(frame(envelope(F_DEPOSIT, body, request_id=11)))
        reason = c.expect_error("INVALID_ARGUMENT")
        check(fragment in reason, "reason %r lacks %r" % (reason, fragment))
    # Import: an empty batch, and a bad row named by index and line.
    c.send(frame(envelope(F_IMPORT, b"", request_id=12)))
    check("empty batch" in c.expect_error("INVALID_ARGUMENT"), "empty batch")
    good_row = pb_field(1, 2) + pb_field(2, ident) + pb_field(3, "王") + pb_field(4, achievement())
    bad_row = pb_field(1, 3) + pb_field(2, ident) + pb_field(3, "王") + pb_field(4, achievement(kind=0))
    c.send(frame(envelope(F_IMPORT, pb_field(1, good_row) + pb_field(1, bad_row), request_id=13)))
    reason = c.expect_error("INVALID_ARGUMENT")
    check("rows[1] (line 3)" in reason, reason)
    # A bad ID number inside an otherwise valid batch refuses the batch.
    bad_id = pb_field(1, 4) + pb_field(2, ident[:17] + ("0" if ident[17] != "0" else "1")) + pb_field(3, "王") + pb_field(4, achievement())
    c.send(frame(envelope(F_IMPORT, pb_field(1, good_row) + pb_field(1, bad_id), request_id=14)))
    reason = c.expect_error("INVALID_ARGUMENT")
    check("rows[1] (line 4)" in reason and "nothing was written" in reason, reason)
    c.close()


def test_truncated_frame_then_close():
    c = RawClient(node.socket)
    f = frame(envelope(F_STATS, b"", request_id=3))
    c.send(f[:len(f) - 2])
    c.close()
    c = RawClient(node.socket)
    c.send(struct.pack(">I", 100)[:2])
    c.close()
    check(node.alive(), "node died after truncated frames")


def test_byte_by_byte_request_works():
    c = RawClient(node.socket)
    for b in frame(envelope(F_STATS, b"", request_id=21)):
        c.send(bytes([b]))
    env = c.recv_frame()
    check(env is not None and F_STATS_RESPONSE in env, "stats reply after slow send: %r" % env)
    c.close()


def test_connection_cap():
    # A connection the client has closed counts until the node has read its
    # EOF; let earlier tests' connections drain first.
    time.sleep(0.5)
    held = []
    for _ in range(4):
        held.append(RawClient(node.socket))
        time.sleep(0.05)
    time.sleep(0.2)
    extra = RawClient(node.socket)
    extra.expect_error("BUSY")
    check(extra.closed(), "over-cap connection left open")
    for h in held:
        h.close()
    time.sleep(0.2)
    stats()


def test_still_serving_and_nothing_stored():
    check(node.alive(), "node died")
    learners, achievements = stats()
    check(learners == 0 and achievements == 0, "bad input stored something: %d learners, %d achievements"
          % (learners, achievements))
    r = node.cbctl("learner", "open", "--id", id_number(), "--name", "王小明", expect=0)
    check(r.doc["created"], r)
    check(node.stop() == 0, "clean stop after bad input")
    events = [l for l in node.log_lines() if l["event"] == "admin_bad_input"]
    check(events, "no admin_bad_input log lines")
    check(all(l["level"] == "warn" and l.get("reason") for l in events), events[:3])


if __name__ == "__main__":
    setup()
    run_tests([test_oversized_frame, test_zero_length_frame, test_malformed_protobuf,
               test_unknown_type_keeps_connection, test_wrong_version, test_invalid_content,
               test_truncated_frame_then_close, test_byte_by_byte_request_works, test_connection_cap,
               test_still_serving_and_nothing_stored])
