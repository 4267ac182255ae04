"""Operators over TLS (spec/admin.md "Operators over TLS"): cbctl --remote
with operator certificates issued by deploy/keys.sh; the node enforces the
role of each certificate. Refusals (an outlet depositing for another
institution, an auditor writing, no certificate, another province's CA, an
expired certificate, TLS 1.2, a wrong pinned node key) each get a clear
error and change nothing."""
import os
import select
import socket
import ssl
import struct
import subprocess
import time

from cbharness import (CBNODE, Node, add_config_section, cbctl, cbctl_remote, check, envelope, frame, free_port,
                       id_number, keys_sh, node_public_key, pb_decode, run_tests, tempdir, F_HELLO,
                       F_STATS_RESPONSE, F_STATS, F_ERROR)

HANDSHAKE_TIMEOUT_MS = 3000
IDLE_TIMEOUT_MS = 2000
MAX_CONNECTIONS = 4

node = None
addr = None
node_key = None
certs = {}           # name -> (crt, key)
ID_A = id_number("310101", "19900307", "123")
ID_B = id_number("310104", "19850611", "456")


def remote(who, *args, **kw):
    crt, key = certs[who]
    return cbctl_remote(addr, crt, key, node_key, *args, **kw)


def stats():
    r = node.cbctl("stats", expect=0)
    return (r.doc["learners"], r.doc["achievements"])


def deposit_args(idn, code, kind="academic_course", *extra):
    return ["deposit", "--id", idn, "--kind", kind, "--issuer", "10272", "--code", code, "--title", "电子技术",
            "--credits", "4", "--awarded", "2024-01-15"] + list(extra)


def transcript_codes(idn):
    r = node.cbctl("transcript", "--id", idn, expect=0)
    return {a["code"]: a["depositor"] for a in r.doc["achievements"]}


def expect_forbidden(r, *words):
    check(r.rc == 1, "wanted a refusal (exit 1): %r" % r)
    check(r.doc and r.doc["ok"] is False and r.doc["error"]["code"] == "FORBIDDEN", "not FORBIDDEN: %r" % r)
    reason = r.doc["error"]["reason"]
    for w in words:
        check(w in reason, "reason %r does not name %r" % (reason, w))
    check("nothing was changed" in reason, reason)


def test_setup():
    global node, addr, node_key
    d = tempdir("cb-ops-")
    keys_sh("operator-ca", os.path.join(d, "sh"), "sh")
    keys_sh("operator-ca", os.path.join(d, "js"), "js")
    issued = [("sh", "admin", "admin", None), ("sh", "outlet-a", "outlet", "INST-A"),
              ("sh", "branch-1", "branch", "BR-1"), ("sh", "ac-1", "appraisal-centre", "AC-1"),
              ("sh", "auditor", "auditor", None), ("js", "js-admin", "admin", None)]
    for ca, name, role, inst in issued:
        keys_sh("operator", os.path.join(d, ca), os.path.join(d, "ops"), name, role, *([inst] if inst else []))
    # Issued by the right CA but already expired (notAfter a day before notBefore).
    keys_sh("operator", os.path.join(d, "sh"), os.path.join(d, "ops"), "expired", "admin",
            env={"CB_CERT_DAYS": "-1"})
    for name in [i[1] for i in issued] + ["expired"]:
        certs[name] = (os.path.join(d, "ops", name + ".crt"), os.path.join(d, "ops", name + ".key"))

    node = Node("sh")
    port = free_port()
    addr = "127.0.0.1:%d" % port
    add_config_section(node, "operators", {
        "listen": addr, "ca_file": os.path.join(d, "sh", "operator-ca.crt"),
        "handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS, "idle_timeout_ms": IDLE_TIMEOUT_MS,
        "max_connections": MAX_CONNECTIONS})
    node.init()
    node.start()
    node_key = node_public_key(node)
    check(any(l["event"] == "operators_listening" and l["port"] == port for l in node.log_lines()),
          node.log_tail())


def test_admin_over_tls():
    r = remote("admin", "hello", expect=0)
    check(r.doc["node_id"] == "sh", r)
    remote("admin", "learner", "open", "--id", ID_A, "--name", "王小明", expect=0)
    r = remote("admin", *deposit_args(ID_A, "ADM-1", "academic_course", "--depositor-role", "outlet",
                                      "--depositor-code", "ANY-OUTLET", "--depositor-name", "某社区学院"), expect=0)
    check(r.doc["duplicate"] is False, r)
    # An admin records on behalf of any depositor of the province.
    check(transcript_codes(ID_A)["ADM-1"]["code"] == "ANY-OUTLET", transcript_codes(ID_A))
    # The node's key given as a PEM public key file works as well as hex.
    pub = os.path.join(tempdir("cb-ops-pin-"), "node.pub")
    subprocess.run(["openssl", "pkey", "-in", os.path.join(node.data_dir, "identity.pem"), "-pubout",
                    "-out", pub], check=True, capture_output=True, timeout=30)
    crt, key = certs["admin"]
    r = cbctl("--remote", addr, "--cert", crt, "--key", key, "--node-cert", pub, "hello", expect=0)
    check(r.doc["node_id"] == "sh", r)
    r = cbctl("--remote", addr, "--cert", crt, "--key", key, "--node-cert", key, "hello")
    check(r.rc == 2 and "not a PEM certificate or public key" in r.stderr, "a private key as --node-cert: %r" % r)


def test_outlet_own_institution():
    before = stats()
    r = remote("outlet-a", *deposit_args(ID_A, "OUT-1"), expect=0)
    r = remote("outlet-a", *deposit_args(ID_A, "OUT-2", "academic_course", "--depositor-role", "outlet",
                                         "--depositor-code", "INST-A", "--depositor-name", "A学院"), expect=0)
    dep = transcript_codes(ID_A)
    # Role and code come from the certificate; the name the client gave is kept.
    check(dep["OUT-1"] == {"role": "outlet", "code": "INST-A", "name": "outlet-a"}, dep["OUT-1"])
    check(dep["OUT-2"] == {"role": "outlet", "code": "INST-A", "name": "A学院"}, dep["OUT-2"])
    check(stats()[1] == before[1] + 2, stats())
    # Outlets open learners.
    r = remote("outlet-a", "learner", "open", "--id", ID_B, "--name", "李四", expect=0)
    check(r.doc["created"] is True, r)


def test_outlet_other_institution_refused():
    before = stats()
    r = remote("outlet-a", *deposit_args(ID_A, "OUT-X", "academic_course", "--depositor-role", "outlet",
                                         "--depositor-code", "INST-B", "--depositor-name", "B学院"))
    expect_forbidden(r, "outlet 'outlet-a'", "INST-A", "INST-B")
    check(stats() == before, "stats changed by a refused deposit")
    check("OUT-X" not in transcript_codes(ID_A), "refused deposit stored")
    # Its own code under another role is refused too.
    r = remote("outlet-a", *deposit_args(ID_A, "OUT-Y", "academic_course", "--depositor-role", "branch",
                                         "--depositor-code", "INST-A", "--depositor-name", "x"))
    expect_forbidden(r, "branch")
    check(stats() == before, "stats changed")


def write_csv(rows):
    path = os.path.join(tempdir("cb-ops-csv-"), "rows.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("id_number,name,kind,issuer,code,title,credits,awarded_on,depositor_role,depositor_code,depositor_name\n")
        for r in rows:
            f.write(",".join(r) + "\n")
    return path


def test_outlet_import():
    ok = write_csv([
        (ID_A, "王小明", "academic_course", "10272", "IMP-1", "高等数学", "3", "2024-01-15", "", "", ""),
        (ID_B, "李四", "academic_course", "10272", "IMP-2", "线性代数", "2", "2024-01-15", "outlet", "INST-A", "A学院"),
    ])
    before = stats()
    r = remote("outlet-a", "import", ok, expect=0)
    check(stats()[1] == before[1] + 2, "import by outlet: %r" % r)
    check(transcript_codes(ID_A)["IMP-1"]["code"] == "INST-A", transcript_codes(ID_A))
    bad = write_csv([
        (ID_A, "王小明", "academic_course", "10272", "IMP-3", "概率论", "3", "2024-01-15", "", "", ""),
        (ID_B, "李四", "academic_course", "10272", "IMP-4", "数值分析", "2", "2024-01-15", "outlet", "INST-B", "B学院"),
        (ID_B, "李四", "academic_course", "10272", "IMP-5", "离散数学", "2", "2024-01-15", "outlet", "INST-A", "A学院"),
    ])
    before = stats()
    r = remote("outlet-a", "import", bad)
    check(r.rc == 1, "import with a row of another institution: %r" % r)
    check("outlet 'outlet-a' deposits only for its own institution" in r.stderr and "INST-B" in r.stderr and
          "nothing was changed" in r.stderr, r)
    check(r.doc["rows_committed"] == 0, r)
    check(stats() == before, "a refused import stored something")
    codes = transcript_codes(ID_A)
    check("IMP-3" not in codes, "row 1 of a refused import stored")


def test_branch_and_appraisal_centre():
    remote("branch-1", *deposit_args(ID_A, "BR-DEP"), expect=0)
    check(transcript_codes(ID_A)["BR-DEP"]["role"] == "branch" and
          transcript_codes(ID_A)["BR-DEP"]["code"] == "BR-1", transcript_codes(ID_A))
    remote("ac-1", *deposit_args(ID_A, "AC-CERT", "vocational_qualification"), expect=0)
    dep = transcript_codes(ID_A)["AC-CERT"]
    check(dep["role"] == "appraisal_centre" and dep["code"] == "AC-1", dep)
    before = stats()
    expect_forbidden(remote("ac-1", *deposit_args(ID_A, "AC-COURSE", "academic_course")), "vocational")
    check(stats() == before, "stats changed")


def test_auditor_reads_only():
    before = stats()
    r = remote("auditor", "transcript", "--id", ID_A, expect=0)
    check(len(r.doc["achievements"]) >= 3, r)
    remote("auditor", "stats", expect=0)
    expect_forbidden(remote("auditor", *deposit_args(ID_A, "AUD-1")), "auditor 'auditor'", "DepositRequest")
    expect_forbidden(remote("auditor", "learner", "open", "--id", id_number("310101", "19700101", "777"),
                            "--name", "x"), "LearnerOpenRequest")
    csv = write_csv([(ID_A, "王小明", "academic_course", "10272", "AUD-2", "x", "1", "2024-01-15", "", "", "")])
    r = remote("auditor", "import", csv)
    check(r.rc == 1 and "auditor" in r.stderr, r)
    check(stats() == before, "an auditor changed something")
    refused = [l for l in node.log_lines() if l["event"] == "operator_refused" and l["operator"] == "auditor"]
    check(len(refused) >= 3 and all(l["role"] == "auditor" and l["request"] for l in refused), refused)


def test_lookup_operator_is_the_certificate():
    # The access log at the answering node names the certificate's operator,
    # so a lookup under another name is refused before anything is asked.
    r = remote("auditor", "lookup", "--id", ID_A, "--all-regions", "--operator", "somebody")
    expect_forbidden(r, "operator_id 'somebody'", "--operator auditor")
    r = remote("auditor", "lookup", "--id", ID_A, "--all-regions", "--operator", "auditor")
    check(not (r.doc and r.doc.get("error", {}).get("code") == "FORBIDDEN"), "lookup under its own name: %r" % r)


def test_unix_socket_still_admin():
    r = node.cbctl(*deposit_args(ID_A, "LOCAL-1", "academic_course", "--depositor-role", "outlet",
                                 "--depositor-code", "INST-Z", "--depositor-name", "z"), expect=0)
    check(transcript_codes(ID_A)["LOCAL-1"]["code"] == "INST-Z", r)


def tls_client(cert=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the node's key is pinned by cbctl; here we test the node's side
    if cert:
        ctx.load_cert_chain(*certs[cert])
    if max_version:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = max_version
    host, port = addr.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=None, do_handshake_on_connect=False)


def hello_answered(s):
    """Sends Hello; True if a reply frame came back, False if the TLS session was refused."""
    try:
        s.do_handshake()
        s.sendall(frame(envelope(F_HELLO, b"")))
        hdr = b""
        while len(hdr) < 4:
            chunk = s.recv(4 - len(hdr))
            if not chunk:
                return False
            hdr += chunk
        return True
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return False
    finally:
        s.close()


def test_refused_at_the_handshake():
    before = stats()
    check(hello_answered(tls_client("admin")), "python TLS 1.3 client with the admin certificate")
    check(not hello_answered(tls_client(None)), "a client without a certificate got an answer")
    check(not hello_answered(tls_client("admin", ssl.TLSVersion.TLSv1_2)), "TLS 1.2 was accepted")
    for who, words in (("js-admin", "refused this operator certificate"), ("expired", "expired")):
        r = remote(who, "stats")
        check(r.rc == 1 and words in r.stderr, "%s: %r" % (who, r))
        r = remote(who, *deposit_args(ID_A, "NOPE-" + who))
        check(r.rc == 1, "%s deposited: %r" % (who, r))
    r = cbctl("--remote", addr, "stats")
    check(r.rc == 2 and "--cert" in r.stderr, "cbctl without a certificate: %r" % r)
    check(stats() == before, "a refused session changed something")
    reasons = [l["reason"] for l in node.log_lines() if l["event"] == "operator_tls_refused"]
    check(any("expired" in x for x in reasons), reasons)
    check(any("certificate" in x for x in reasons), reasons)


def test_wrong_node_key():
    crt, key = certs["admin"]
    wrong = "%064x" % (int(node_key, 16) ^ 1)
    r = cbctl("--remote", addr, "--cert", crt, "--key", key, "--node-key", wrong, "stats")
    check(r.rc == 1 and "does not match --node-key" in r.stderr, r)
    r = cbctl("--remote", addr, "--cert", crt, "--key", key, "--node-key", "xyz", "stats")
    check(r.rc == 2 and "64 hex digits" in r.stderr, r)


def read_frame(s):
    """One reply frame's envelope fields, or None at the end of the session."""
    buf = b""
    try:
        while len(buf) < 4:
            chunk = s.recv(4 - len(buf))
            if not chunk:
                return None
            buf += chunk
        n = struct.unpack(">I", buf)[0]
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                return None
            body += chunk
    except (ssl.SSLError, ConnectionResetError):
        return None
    return pb_decode(body)


def test_framing_over_tls():
    """The socket's framing gates hold on the operator port: a bad request is answered
    and the session goes on; an oversized frame is answered, then the session closes."""
    s = tls_client("admin")
    s.do_handshake()
    s.sendall(frame(envelope(99, b"")))
    env = read_frame(s)
    check(env is not None and F_ERROR in env, "unknown type over TLS: %r" % env)
    check(pb_decode(env[F_ERROR][0])[1][0] == 4, "not UNKNOWN_TYPE: %r" % env)
    s.sendall(frame(envelope(F_STATS, b"")))
    env = read_frame(s)
    check(env is not None and F_STATS_RESPONSE in env, "session did not go on: %r" % env)
    s.sendall(struct.pack(">I", 0x7FFFFFFF) + b"xx")
    env = read_frame(s)
    check(env is not None and F_ERROR in env and pb_decode(env[F_ERROR][0])[1][0] == 1, "oversized: %r" % env)
    check(read_frame(s) is None, "session stayed open after an oversized frame")
    s.close()


def test_timeouts_and_cap():
    # Plain TCP clients that never start TLS: the cap, then the handshake timeout.
    # One more than the cap is closed at once (sessions of earlier tests that the
    # node has not yet seen end may make it more than one).
    host, port = addr.rsplit(":", 1)
    t0 = time.time()
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(MAX_CONNECTIONS + 1)]
    fast = set()
    while time.time() - t0 < 1.0:
        ready, _, _ = select.select([x for x in socks if x not in fast], [], [], 0.1)
        for x in ready:
            check(x.recv(1) == b"", "the node sent bytes to a client that sent none")
            fast.add(x)
    check(len(fast) >= 1, "no connection over the cap of %d was refused" % MAX_CONNECTIONS)
    slow = [x for x in socks if x not in fast]
    check(slow, "every connection was refused at once")
    for x in slow:
        check(x.recv(1) == b"", "a silent client was not closed")
    waited = time.time() - t0
    check(HANDSHAKE_TIMEOUT_MS / 1000.0 * 0.9 <= waited <= HANDSHAKE_TIMEOUT_MS / 1000.0 + 3,
          "closed after %.2fs" % waited)
    for x in socks:
        x.close()
    # A connection counts against the cap until the node has finished closing it
    # (its next loop turn): give it that before connecting again.
    time.sleep(0.3)
    # An established session with nothing to say is closed after the idle timeout.
    s = tls_client("auditor")
    s.do_handshake()
    s.sendall(frame(envelope(F_STATS, b"")))
    n = struct.unpack(">I", s.recv(4))[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    check(F_STATS_RESPONSE in pb_decode(body), "auditor stats over raw TLS")
    t0 = time.time()
    try:
        got = s.recv(1)
    except (ssl.SSLError, ConnectionResetError):
        got = b""
    idle = time.time() - t0
    check(got == b"" and IDLE_TIMEOUT_MS / 1000.0 * 0.9 <= idle <= IDLE_TIMEOUT_MS / 1000.0 + 3,
          "idle session: %r after %.2fs" % (got, idle))
    s.close()
    events = {l["event"] for l in node.log_lines()}
    check({"operator_busy", "operator_tls_timeout", "operator_idle_timeout"} <= events, events)
    remote("auditor", "hello", expect=0)


def test_config_errors():
    """A bad [operators] section stops cbnode with file:line and the reason."""
    d = tempdir("cb-ops-cfg-")
    ca = os.path.join(d, "sh", "operator-ca.crt")
    keys_sh("operator-ca", os.path.join(d, "sh"), "sh")
    cases = [
        ({"listen": "127.0.0.1:%d" % free_port()}, "needs both listen and ca_file"),
        ({"listen": "localhost:7443", "ca_file": ca}, "not an IP address"),
        ({"listen": "127.0.0.1", "ca_file": ca}, "expected HOST:PORT"),
        ({"listen": "127.0.0.1:70000", "ca_file": ca}, "out of range"),
        ({"listen": "127.0.0.1:0", "ca_file": ca, "idle_timeout_ms": "5"}, "idle_timeout_ms"),
        ({"listen": "127.0.0.1:0", "ca_file": ca, "colour": "blue"}, "unknown key 'colour' in section [operators]"),
        ({"listen": "127.0.0.1:0", "ca_file": os.path.join(d, "missing.crt")}, "cannot load operator CA"),
    ]
    for items, words in cases:
        n = Node("sh", base=tempdir("cb-ops-cfgn-"))
        n.init()
        add_config_section(n, "operators", items)
        r = subprocess.run([CBNODE, "--config", n.config], capture_output=True, text=True, timeout=60)
        check(r.returncode != 0 and words in r.stderr, "%r: rc %s, %r" % (items, r.returncode, r.stderr[-400:]))
        check(not os.path.exists(n.socket), "admin socket left behind after a failed start")


def test_clean_shutdown():
    check(node.stop() == 0, node.log_tail())
    node.log_lines()  # every line is JSON, no sanitizer report


if __name__ == "__main__":
    run_tests([test_setup, test_admin_over_tls, test_outlet_own_institution, test_outlet_other_institution_refused,
               test_outlet_import, test_branch_and_appraisal_centre, test_auditor_reads_only,
               test_lookup_operator_is_the_certificate, test_unix_socket_still_admin, test_refused_at_the_handshake, test_wrong_node_key,
               test_framing_over_tls, test_timeouts_and_cap, test_config_errors, test_clean_shutdown])
