"""Four real cbnodes (sh, js, zj, ah) on loopback, connected by peer
sessions: cross-region lookup from each region to each other, the access
log on the answering node, fan-out with one peer killed (partial results,
a clear per-peer error, no hang), tampered and wrongly signed answers from
a fake member, a slow peer (its own deadline), a restarted peer (sessions come back by themselves), and the
refusals of signed requests (replayed nonce, stale and future time, a key
not in the registry, a key outside its validity period, another member's
request relayed), registry reload on SIGHUP (a bad file keeps the old one),
a client without a certificate and TLS 1.2. Each refusal changes nothing:
the access log only grows for answered lookups."""
import json
import os
import signal
import socket
import ssl
import subprocess
import time

from cbharness import (Federation, REGIONS, SOURCE_DIR, check, free_port, id_number, run_tests)

fed = None
# A learner who studied in all four provinces, and one known only in sh.
WANDERER = id_number("310101", "19900307", "123")
LOCAL = id_number("310104", "19850612", "246")
ISSUER = {"sh": "10272", "js": "10284", "zj": "10335", "ah": "10357"}


def lookup(src, *args, expect=None):
    return fed.nodes[src].cbctl("lookup", "--id", WANDERER, *args, expect=expect)


def access_log(region, idn=WANDERER):
    return fed.nodes[region].cbctl("access-log", "--id", idn, expect=0).doc["entries"]


def test_start_federation():
    global fed
    fed = Federation().start()
    fed.wait_links()
    for r in REGIONS:
        n = fed.nodes[r]
        n.cbctl("learner", "open", "--id", WANDERER, "--name", "王小明", expect=0)
        n.cbctl("deposit", "--id", WANDERER, "--kind", "academic_course", "--issuer", ISSUER[r], "--code",
                "C-" + r, "--title", "课程 " + r, "--credits", "3", "--awarded", "2024-06-30", expect=0)
    fed.nodes["sh"].cbctl("learner", "open", "--id", LOCAL, "--name", "李华", expect=0)


def test_lookup_each_to_each():
    for src in REGIONS:
        r = lookup(src, "--all-regions", "--purpose", "recognition at " + src, "--operator", "op-" + src, expect=0)
        others = [x for x in REGIONS if x != src]
        got = {x["region"]: x for x in r.doc["results"]}
        check(sorted(got) == sorted(others), "asked %s, got %s" % (others, sorted(got)))
        check(r.doc["partial"] is False, r)
        for x in others:
            res = got[x]
            check(res["ok"] and res["found"] and res["verified"], "%s -> %s: %r" % (src, x, res))
            check(len(res["achievements"]) == 1, res)
            a = res["achievements"][0]
            check(a["code"] == "C-" + x and a["issuer"] == ISSUER[x], a)
            check(a["issuer_region"] == x and a["verified"] is True, a)
            check("Ed25519 signature by %s" % x in res["verification"], res["verification"])
    # One region at a time, and several named.
    r = lookup("sh", "--region", "js", expect=0)
    check([x["region"] for x in r.doc["results"]] == ["js"], r)
    r = lookup("js", "--region", "zj", "--region", "ah", expect=0)
    check(sorted(x["region"] for x in r.doc["results"]) == ["ah", "zj"], r)
    # Not found is an answer, not an error.
    r = fed.nodes["sh"].cbctl("lookup", "--id", LOCAL, "--all-regions", expect=0)
    check(all(x["ok"] and not x["found"] and x["verified"] for x in r.doc["results"]), r)


def test_bad_operator_input():
    n = fed.nodes["sh"]
    r = n.cbctl("lookup", "--id", "310101199003071231", "--region", "js", expect=1)
    check("id_number" in r.doc["error"]["reason"], r)
    r = n.cbctl("lookup", "--id", WANDERER, "--region", "sh", expect=1)
    check("own region" in r.doc["error"]["reason"], r)
    r = n.cbctl("lookup", "--id", WANDERER, "--region", "xx", expect=1)
    check("regions[0]" in r.doc["error"]["reason"], r)
    n.cbctl("lookup", "--id", WANDERER, expect=2)


def test_id_number_stays_home():
    # LOCAL was typed at sh only (just above); js, zj, ah never saw it.
    for x in ("js", "zj", "ah"):
        with open(fed.nodes[x].log_path, encoding="utf-8") as f:
            check(LOCAL not in f.read(), "ID number reached %s's log" % x)
        data = open(os.path.join(fed.nodes[x].data_dir, "data.mdb"), "rb").read()
        check(LOCAL.encode() not in data, "ID number stored at %s" % x)


def test_access_log_on_answering_node():
    entries = access_log("js")
    by = {}
    for e in entries:
        by.setdefault(e["requester"], []).append(e)
    check(sorted(by) == ["ah", "sh", "zj"], sorted(by))
    e = by["zj"][0]
    check(e["operator"] == "op-zj" and e["purpose"] == "recognition at zj", e)
    check(e["requester_region"] == "zj" and e["signature_valid"] and e["found"] and e["achievements"] == 1, e)
    check(len(e["nonce"]) == 32 and e["answered_at_ms"] >= e["request_time_ms"] - 1000, e)
    # Human table names the province, operator and purpose.
    r = fed.nodes["js"].cbctl("access-log", "--id", WANDERER, json_out=False, expect=0)
    check("op-zj" in r.stdout and "recognition at zj" in r.stdout and "valid" in r.stdout, r.stdout)


def ref_of(idn):
    return fed.nodes["sh"].cbctl("lookup", "--id", idn, "--region", "js", expect=0).doc["learner_ref"]


def probe_as_ah(*args, target="sh"):
    return fed.probe("client", "--connect", "127.0.0.1:%d" % fed.ports[target], "--tls-key", fed.key("ah"),
                     "--node", "ah", "--target", target, *args)


def count_from(region, requester):
    return sum(1 for e in access_log(region) if e["requester"] == requester)


def test_refused_requests_change_nothing():
    ref = ref_of(WANDERER)
    before = count_from("sh", "ah")
    # Replay: the second copy of the same signed request is refused.
    out = probe_as_ah("--ref", ref, "--send", 2)
    check(out[1]["reply"] == "lookup_response" and out[1]["verified"] and out[1]["found"], out)
    check(out[2]["name"] == "PEER_ERROR_REPLAYED" and "replayed" in out[2]["reason"], out)
    check(count_from("sh", "ah") == before + 1, "replay logged")
    # Outside the clock skew, both ways.
    out = probe_as_ah("--ref", ref, "--time-offset-ms", -120000)
    check(out[1]["name"] == "PEER_ERROR_STALE" and "older than the allowed clock skew" in out[1]["reason"], out)
    out = probe_as_ah("--ref", ref, "--time-offset-ms", 120000)
    check(out[1]["name"] == "PEER_ERROR_STALE" and "ahead" in out[1]["reason"], out)
    # Signed with a key the registry does not list for ah.
    stranger = os.path.join(fed.dir, "stranger.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", stranger], check=True, capture_output=True)
    out = probe_as_ah("--ref", ref, "--sign-key", stranger)
    check(out[1]["name"] == "PEER_ERROR_UNAUTHENTIC" and "not one of ah's keys" in out[1]["reason"], out)
    # Another member's request relayed on ah's session.
    out = probe_as_ah("--ref", ref, "--sign-key", fed.key("zj"), "--requester", "zj")
    check(out[1]["name"] == "PEER_ERROR_UNAUTHENTIC" and "zj" in out[1]["reason"], out)
    # Addressed to another node.
    out = fed.probe("client", "--connect", "127.0.0.1:%d" % fed.ports["sh"], "--tls-key", fed.key("ah"),
                    "--node", "ah", "--target", "js", "--ref", ref)
    check(out[0].get("session_error") or out[1].get("name") == "PEER_ERROR_WRONG_TARGET", out)
    # A TLS client whose key is not in the registry never gets a session.
    out = fed.probe("client", "--connect", "127.0.0.1:%d" % fed.ports["sh"], "--tls-key", stranger, "--node", "ah",
                    "--target", "sh", "--ref", ref)
    check("session_error" in out[0], out)
    check(count_from("sh", "ah") == before + 1, "a refused request reached the access log")
    events = [e for e in fed.nodes["sh"].log_lines() if e["event"] in ("peer_request_refused", "peer_refused")]
    check(any("replayed" in e.get("reason", "") for e in events), "no log line for the replay")


def tls_client(min_v=None, max_v=None, cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if min_v:
        ctx.minimum_version = min_v
    if max_v:
        ctx.maximum_version = max_v
    if cert:
        ctx.load_cert_chain(os.path.join(fed.fed, "ah", "node.crt"), fed.key("ah"))
    return ctx


def test_tls_refusals():
    port = fed.ports["sh"]
    # TLS 1.2 offered: refused in the handshake.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            tls_client(max_v=ssl.TLSVersion.TLSv1_2).wrap_socket(s)
        raise AssertionError("TLS 1.2 handshake succeeded")
    except ssl.SSLError as e:
        check("VERSION" in str(e).upper(), "TLS 1.2: %s" % e)
    # No client certificate: the node refuses (TLS 1.3 reports it at the first read).
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t = tls_client(min_v=ssl.TLSVersion.TLSv1_3, cert=False).wrap_socket(s)
            data = t.recv(100)
            check(data == b"", "session without a client certificate got data: %r" % data)
    except ssl.SSLError as e:
        check("CERTIFICATE_REQUIRED" in str(e).upper(), "no cert: %s" % e)
    time.sleep(0.2)
    details = [e.get("detail", "") for e in fed.nodes["sh"].log_lines() if e["event"] == "peer_refused"]
    check(any("unsupported protocol" in d for d in details), details)
    check(any("did not return a certificate" in d for d in details), details)


def test_key_validity_and_sighup():
    ref = ref_of(WANDERER)
    before = count_from("sh", "ah")
    # ah gets a second key that expired yesterday (rotation with overlap
    # lists old and new keys side by side); sh rereads the registry.
    old = os.path.join(fed.fed, "ah-old")
    pub = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "keys.sh"), "node", old, "node"],
                         check=True, capture_output=True, text=True).stdout.strip()
    future = os.path.join(fed.fed, "ah-next")
    pub_next = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "keys.sh"), "node", future, "node"],
                              check=True, capture_output=True, text=True).stdout.strip()
    doc = fed.load_registry()
    ah = [m for m in doc["members"] if m["node_id"] == "ah"][0]
    ah["keys"].append({"public_key": pub, "not_before": "2020-01-01T00:00:00Z", "not_after": int((time.time() - 86400) * 1000)})
    ah["keys"].append({"public_key": pub_next, "not_before": int((time.time() + 86400) * 1000)})
    fed.write_registry(doc)
    n = fed.nodes["sh"]
    loaded = sum(1 for e in n.log_lines() if e["event"] == "registry_loaded")
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while sum(1 for e in n.log_lines() if e["event"] == "registry_loaded") == loaded:
        check(time.time() < deadline, "no registry_loaded after SIGHUP")
        time.sleep(0.05)
    out = probe_as_ah("--ref", ref, "--sign-key", os.path.join(old, "node.key"))
    check(out[1]["name"] == "PEER_ERROR_UNAUTHENTIC" and "expired" in out[1]["reason"], out)
    out = probe_as_ah("--ref", ref, "--sign-key", os.path.join(future, "node.key"))
    check(out[1]["name"] == "PEER_ERROR_UNAUTHENTIC" and "not yet valid" in out[1]["reason"], out)
    out = fed.probe("client", "--connect", "127.0.0.1:%d" % fed.ports["sh"], "--tls-key", os.path.join(old, "node.key"),
                    "--node", "ah", "--target", "sh", "--ref", ref)
    check("session_error" in out[0], "TLS with an expired key: %r" % out)
    check(count_from("sh", "ah") == before, "refused requests reached the access log")
    # A broken registry file is refused; the node keeps the one it had.
    with open(fed.registry, "w") as f:
        f.write("{ not json")
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while not any(e["event"] == "registry_reload_failed" for e in n.log_lines()):
        check(time.time() < deadline, "no registry_reload_failed after a bad file")
        time.sleep(0.05)
    fed.write_registry(doc)
    r = lookup("sh", "--region", "js", expect=0)
    check(r.doc["results"][0]["verified"], r)
    check(n.alive(), "sh died on a bad registry")


def test_fanout_with_peer_killed_and_fake_peer():
    fed.nodes["zj"].kill()
    t0 = time.time()
    r = lookup("sh", "--all-regions", "--timeout-ms", 1500, expect=1)
    took = time.time() - t0
    check(took < 5, "fan-out took %.1fs with one peer down" % took)
    got = {x["region"]: x for x in r.doc["results"]}
    check(r.doc["partial"] is True and not got["zj"]["ok"], r)
    check(got["zj"]["error"].startswith(("down:", "timeout:")) and "zj" in got["zj"]["error"], got["zj"])
    for x in ("js", "ah"):
        check(got[x]["ok"] and got[x]["verified"] and len(got[x]["achievements"]) == 1, got[x])
    # Human output names the failing peer.
    r = fed.nodes["sh"].cbctl("lookup", "--id", WANDERER, "--all-regions", "--timeout-ms", 1000, json_out=False,
                              expect=1)
    check("ERROR" in r.stdout and "zj" in r.stdout and "C-js" in r.stdout, r.stdout)
    # A fake zj (zj's own key) answers with a tampered or wrongly signed
    # statement: sh shows nothing of it, only why.
    def zj_ups():
        return sum(1 for e in fed.nodes["sh"].log_lines() if e["event"] == "peer_up" and e.get("peer") == "zj")

    def fake_zj(*args):
        """Starts the fake zj and waits until sh's link (reconnecting with
        backoff, up to 30 s between attempts) has a session with it."""
        ups = zj_ups()
        p = fed.probe_popen("serve", "--listen", "127.0.0.1:%d" % fed.ports["zj"], "--tls-key", fed.key("zj"),
                            "--node", "zj", "--only", "sh", "--max-seconds", 60, *args)
        check(json.loads(p.stdout.readline()).get("listening"), "probe did not listen")
        deadline = time.time() + 40
        while zj_ups() == ups:
            check(time.time() < deadline, "sh did not reach the fake zj")
            time.sleep(0.05)
        return p

    for how, args, want in (("body", ["--tamper", "body"], "signature does not verify"),
                            ("sig", ["--tamper", "sig"], "signature does not verify"),
                            ("wrong signer", ["--sign-key", fed.key("js"), "--signer", "js"], "signed by js, but zj was asked")):
        p = fake_zj(*args)
        r = lookup("sh", "--region", "zj", "--timeout-ms", 5000, expect=1)
        res = r.doc["results"][0]
        check(not res["ok"] and res["error"].startswith("rejected") and want in res["error"], "%s: %r" % (how, res))
        check("achievements" not in res, res)
        p.wait(timeout=30)
    # A slow zj (session up, never answers): its own deadline, the others still shown.
    p = fake_zj("--tamper", "stall", "--count", 1000)
    t0 = time.time()
    r = lookup("sh", "--all-regions", "--timeout-ms", 1500, expect=1)
    took = time.time() - t0
    got = {x["region"]: x for x in r.doc["results"]}
    check(got["zj"]["error"].startswith("timeout:") and 1400 <= got["zj"]["elapsed_ms"] < 3000, got["zj"])
    check(got["js"]["ok"] and got["ah"]["ok"] and took < 5, "slow peer held the others: %.1fs %r" % (took, r))
    p.kill()
    p.wait(timeout=10)
    check(all(fed.nodes[x].alive() for x in ("sh", "js", "ah")), "a node died")


def test_peer_restarted_sessions_return():
    fed.nodes["zj"].start()
    deadline = time.time() + 45
    while True:
        r = lookup("sh", "--region", "zj", "--timeout-ms", 2000)
        if r.rc == 0:
            break
        check(time.time() < deadline, "sh -> zj did not come back: %r" % r)
        time.sleep(0.5)
    res = r.doc["results"][0]
    check(res["verified"] and res["achievements"][0]["code"] == "C-zj", res)
    r = lookup("zj", "--all-regions", expect=0)
    check(all(x["ok"] for x in r.doc["results"]), r)


def test_clean_stop():
    for r in REGIONS:
        n = fed.nodes[r]
        check(n.stop() == 0, "%s did not stop cleanly:\n%s" % (r, n.log_tail()))
        n.log_lines()  # every line JSON, no sanitizer report


def start_refused(node, want):
    node.start(wait=False)
    rc = node.proc.wait(timeout=30)
    node.stop()
    tail = node.log_tail()
    check(rc == 1 and want in tail, "start with %r: rc %s, log:\n%s" % (want, rc, tail))


def test_start_refusals():
    """A node whose config disagrees with the registry does not start, and says why."""
    from cbharness import Node
    # Its own federation key (made by --init), not the registry's.
    n = Node("js", base=os.path.join(fed.dir, "lonely"))
    n.init()
    Federation._add_node_keys(n, ["identity_key_file = %s" % fed.key("js"), "registry_file = %s" % fed.registry])
    start_refused(n, "federation_key differs")
    # Not a member.
    n = Node("xx", region="sh", base=os.path.join(fed.dir, "stranger"), fedkey=fed.fedkey)
    n.init()
    Federation._add_node_keys(n, ["registry_file = %s" % fed.registry])
    start_refused(n, "not a member of the registry")
    # A member's id with a key that is not the member's.
    n = Node("sh", base=os.path.join(fed.dir, "impostor"), fedkey=fed.fedkey)
    n.init()
    Federation._add_node_keys(n, ["registry_file = %s" % fed.registry, "peer_listen = 127.0.0.1:%d" % free_port()])
    start_refused(n, "key does not belong to the member")
    # peer_listen without a port is a config error naming the line.
    n = Node("sh", base=os.path.join(fed.dir, "badlisten"), fedkey=fed.fedkey, extra_node=["peer_listen = 127.0.0.1"])
    r = n.init(expect_ok=False)
    check(r.returncode == 1 and "peer_listen" in r.stderr and "host:port" in r.stderr, r.stderr)


if __name__ == "__main__":
    run_tests([test_start_federation, test_lookup_each_to_each, test_bad_operator_input, test_id_number_stays_home,
               test_access_log_on_answering_node, test_refused_requests_change_nothing, test_tls_refusals,
               test_key_validity_and_sighup, test_fanout_with_peer_killed_and_fake_peer,
               test_peer_restarted_sessions_return, test_clean_stop, test_start_refusals])
