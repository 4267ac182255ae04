"""Registry reload and key rotation on four real cbnodes (spec/protocol.md
§1, §10). Each node reads its own copy of the registry, so one node can
learn of a change before another.

- A member removed from sh's registry (SIGHUP): sh drops its link and its
  inbound session, sh's lookups to it fail naming why, its lookups to sh
  fail; put back (SIGHUP), both directions work again.
- A member's endpoint changed in sh's registry: sh's link moves there
  (lookups fail while nobody listens), and back.
- sh holds two identity keys, A (identity_key_file) and B
  (extra_identity_key_files). While the registry lists only A, sh signs and
  handshakes with A. With B valid a few seconds from now (A still valid:
  the overlap), sh switches to B by itself at that time: lookups it answers
  and asks are signed with B and verify at peers that list B; js, whose
  registry does not list B yet, refuses both ways with the reason, and
  after a restart refuses sh's new TLS key at the handshake; once js's
  registry lists B (SIGHUP), js and sh talk again. A registry where B has
  expired (SIGHUP) puts sh back on A."""
import json
import os
import signal
import subprocess
import time

from cbharness import Federation, REGIONS, SOURCE_DIR, check, free_port, id_number, keys_sh, run_tests

fed = None
WANDERER = id_number("310101", "19900307", "123")
ISSUER = {"sh": "10272", "js": "10284", "zj": "10335", "ah": "10357"}
A_PUB = B_PUB = None


def reg_path(region):
    return os.path.join(fed.fed, "registry-%s.json" % region)


def read_reg(region):
    with open(reg_path(region)) as f:
        return json.load(f)


def write_reg(region, doc):
    tmp = reg_path(region) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, reg_path(region))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def write_reg_to(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def member(doc, node_id):
    return [m for m in doc["members"] if m["node_id"] == node_id][0]


def events(region, name, **match):
    return [e for e in fed.nodes[region].log_lines()
            if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


def wait_for(what, cond, timeout=20):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        check(time.time() < deadline, "timed out waiting for %s" % what)
        time.sleep(0.05)


def reload(region):
    """SIGHUP; waits for registry_loaded (fails on registry_reload_failed)."""
    loaded = len(events(region, "registry_loaded"))
    failed = len(events(region, "registry_reload_failed"))
    fed.nodes[region].proc.send_signal(signal.SIGHUP)

    def done():
        f = events(region, "registry_reload_failed")
        check(len(f) == failed, "%s: reload failed: %r" % (region, f[-1:]))
        got = events(region, "registry_loaded")
        return got[-1] if len(got) > loaded else None
    return wait_for("%s's registry_loaded" % region, done)


def lookup(src, *args, expect=None):
    return fed.nodes[src].cbctl("lookup", "--id", WANDERER, *args, expect=expect)


def one(src, region, expect=None, timeout_ms=3000):
    r = lookup(src, "--region", region, "--timeout-ms", timeout_ms, expect=expect)
    return r.doc["results"][0]


def signed_with(res, pub):
    """The lookup result verified, signed with key pub (shown as its first 16 hex digits)."""
    check(res["ok"] and res["verified"], res)
    check("key %s" % pub[:16] in res["verification"], "not signed with %s: %r" % (pub[:16], res["verification"]))


def last_request_key(region, requester):
    """The key prefix of the last request from requester in region's access log."""
    entries = fed.nodes[region].cbctl("access-log", "--id", WANDERER, expect=0).doc["entries"]
    mine = [e for e in entries if e["requester"] == requester]
    check(mine, "no access-log entry from %s on %s" % (requester, region))
    return mine[-1]["verification"]


def link_up(src, peer):
    state = None
    for e in fed.nodes[src].log_lines():
        if e["event"] in ("peer_up", "peer_down") and e.get("peer") == peer:
            state = e["event"] == "peer_up"
    return state


def test_start_federation():
    global fed, A_PUB, B_PUB
    fed = Federation()
    A_PUB = keys_sh("pubhex", fed.key("sh"))
    # sh's second key, B: made now, listed in no registry yet.
    B_PUB = keys_sh("node", os.path.join(fed.fed, "sh-b"), "node")
    for r in REGIONS:
        write_reg(r, fed.load_registry())
        n = fed.nodes[r]
        with open(n.config) as f:
            text = f.read()
        with open(n.config, "w") as f:
            f.write(text.replace("registry_file = %s\n" % fed.registry, "registry_file = %s\n" % reg_path(r)))
    fed.start()
    fed.wait_links()
    for r in REGIONS:
        n = fed.nodes[r]
        n.cbctl("learner", "open", "--id", WANDERER, "--name", "王小明", expect=0)
        n.cbctl("deposit", "--id", WANDERER, "--kind", "academic_course", "--issuer", ISSUER[r], "--code",
                "C-" + r, "--title", "课程 " + r, "--credits", "3", "--awarded", "2024-06-30", expect=0)
    # B is not in the registry: sh uses A.
    used = events("sh", "identity_key_in_use")
    check(len(used) == 1 and used[0]["public_key"] == A_PUB and used[0]["keys_held"] == 1, used)
    signed_with(one("js", "sh", expect=0), A_PUB)


def test_member_removed_and_back():
    # Both of sh's sessions with ah are up: sh's link and ah's.
    check(one("sh", "ah", expect=0)["verified"] and one("ah", "sh", expect=0)["verified"], "sh <-> ah")
    full = read_reg("sh")
    doc = read_reg("sh")
    doc["members"] = [m for m in doc["members"] if m["node_id"] != "ah"]
    write_reg("sh", doc)
    ev = reload("sh")
    # sh's link to ah and ah's session to sh (inbound, its key no longer
    # valid) are both closed (one peer_down line per peer is logged).
    check(ev["members"] == 3 and ev["sessions_dropped"] == 1, ev)
    removed = events("sh", "peer_link_removed", peer="ah")
    check(len(removed) == 1 and removed[0]["link"] == "closed", removed)
    downs = [e["detail"] for e in events("sh", "peer_down", peer="ah")]
    check(any("link to ah removed: member removed from the registry" in d for d in downs), downs)
    # sh cannot ask ah: a clear error, not a hang.
    r = lookup("sh", "--region", "ah", expect=1)
    check("no member of region ah in the registry" in r.doc["error"]["reason"], r)
    r = lookup("sh", "--all-regions", expect=0)
    check(sorted(x["region"] for x in r.doc["results"]) == ["js", "zj"], r)
    # ah (whose registry still lists sh) is refused at the handshake.
    wait_for("ah's session to sh to close", lambda: link_up("ah", "sh") is False)
    t0 = time.time()
    res = one("ah", "sh", expect=1, timeout_ms=1500)
    check(not res["ok"] and res["error"].startswith("down") and "sh" in res["error"], res)
    check(time.time() - t0 < 5, "ah's lookup to sh hung")
    # Back in the registry: the link returns and both directions work.
    write_reg("sh", full)
    reload("sh")
    check(len(events("sh", "peer_link", peer="ah")) == 2, events("sh", "peer_link", peer="ah"))
    wait_for("sh's link to ah", lambda: link_up("sh", "ah"))
    res = one("sh", "ah", expect=0)
    check(res["ok"] and res["verified"] and res["achievements"][0]["code"] == "C-ah", res)
    wait_for("ah's link to sh", lambda: link_up("ah", "sh"), timeout=45)
    res = one("ah", "sh", expect=0)
    check(res["ok"] and res["verified"] and res["achievements"][0]["code"] == "C-sh", res)


def test_endpoint_moved():
    full = read_reg("sh")
    doc = read_reg("sh")
    old = member(doc, "js")["endpoint"]
    member(doc, "js")["endpoint"] = "127.0.0.1:%d" % free_port()
    write_reg("sh", doc)
    reload("sh")
    moved = events("sh", "peer_link_moved", peer="js")
    check(len(moved) == 1 and moved[0]["port"] == int(member(doc, "js")["endpoint"].split(":")[1]), moved)
    res = one("sh", "js", expect=1, timeout_ms=1000)
    check(not res["ok"] and res["error"].startswith("down") and "js" in res["error"], res)
    write_reg("sh", full)
    reload("sh")
    moved = events("sh", "peer_link_moved", peer="js")
    check(len(moved) == 2 and "%s:%d" % (moved[1]["host"], moved[1]["port"]) == old, moved)
    t0 = time.time()
    res = one("sh", "js", expect=0)  # the moved link connects at once (no backoff)
    check(res["ok"] and res["verified"] and time.time() - t0 < 3, res)


def set_extra_keys(region, value):
    """Sets (or with None removes) [node] extra_identity_key_files in region's config."""
    n = fed.nodes[region]
    with open(n.config) as f:
        lines = [l for l in f.read().splitlines() if not l.startswith("extra_identity_key_files")]
    if value is not None:
        lines.insert(lines.index("[node]") + 1, "extra_identity_key_files = %s" % value)
    with open(n.config, "w") as f:
        f.write("\n".join(lines) + "\n")


def test_rotation_with_overlap():
    # sh gets key B on SIGHUP, without a restart. A file that is not there
    # is refused with its name, and nothing changes.
    failed = len(events("sh", "registry_reload_failed"))
    set_extra_keys("sh", os.path.join(fed.fed, "sh-b", "missing.key"))
    fed.nodes["sh"].proc.send_signal(signal.SIGHUP)
    ev = wait_for("registry_reload_failed", lambda: events("sh", "registry_reload_failed")[failed:])
    check("missing.key" in ev[0]["error"], ev)
    set_extra_keys("sh", os.path.join(fed.fed, "sh-b", "node.key"))
    reload("sh")
    held = events("sh", "identity_keys_loaded")
    check(len(held) == 1 and held[0]["keys_held"] == 2 and held[0]["files"][1].endswith("sh-b/node.key"), held)
    check(events("sh", "identity_key_in_use")[-1]["public_key"] == A_PUB, "B is not in the registry yet")
    now = int(time.time() * 1000)
    t_b = now + 8000  # room for the setup below even under ASan on a loaded machine
    # The registry edits of the rotation procedure (deploy/README.md), with
    # deploy/keys.sh: A until T, B from T - 1 h (the overlap).
    work = os.path.join(fed.fed, "rotation.json")
    write_reg_to(work, read_reg("sh"))
    keys_sh("registry-end-key", work, "sh", A_PUB, t_b + 3600 * 1000)
    without_b = load_json(work)
    keys_sh("registry-add-key", work, "sh", B_PUB, t_b)
    with_b = load_json(work)
    check([k["public_key"] for k in member(with_b, "sh")["keys"]] == [A_PUB, B_PUB], with_b)
    # A key already listed is refused and the file stays as it was.
    r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "keys.sh"), "registry-add-key", work, "js",
                        B_PUB, str(t_b)], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "already listed for 'sh'" in r.stderr, r.stderr)
    check(load_json(work) == with_b, "refused edit changed the file")
    for r in ("sh", "zj", "ah"):
        write_reg(r, with_b)
    write_reg("js", without_b)
    for r in REGIONS:
        reload(r)
    # Before B's period: still A, both directions.
    check(int(time.time() * 1000) < t_b - 500, "setup took too long for the key window")
    signed_with(one("zj", "sh", expect=0), A_PUB)
    check(one("sh", "zj", expect=0)["verified"], "sh -> zj")
    check("key %s" % A_PUB[:16] in last_request_key("zj", "sh"), last_request_key("zj", "sh"))
    # At B's start sh switches by itself (no signal) and logs it.
    ev = wait_for("sh to use B", lambda: events("sh", "identity_key_in_use", public_key=B_PUB), timeout=15)
    check(int(time.time() * 1000) >= t_b, "switched to B before its period")
    # The TLS contexts are rebuilt after the switch is logged: wait for that too.
    wait_for("sh's TLS contexts to move to B",
             lambda: events("sh", "identity_key_tls", public_key=B_PUB), timeout=10)
    for peer in ("zj", "ah"):
        signed_with(one(peer, "sh", expect=0), B_PUB)
        res = one("sh", peer, expect=0)
        check(res["ok"] and res["verified"], res)
        check("key %s" % B_PUB[:16] in last_request_key(peer, "sh"), last_request_key(peer, "sh"))
    # js does not list B yet: it refuses sh's requests and sh's answers, saying why.
    res = one("sh", "js", expect=1)
    check(not res["ok"] and "refused by js" in res["error"] and "UNAUTHENTIC" in res["error"], res)
    check("key is not one of sh's keys" in res["error"], res)
    res = one("js", "sh", expect=1)
    check(not res["ok"] and res["error"].startswith("rejected") and "sh" in res["error"], res)
    check("achievements" not in res, res)
    # New sessions present B: js, restarted, refuses sh's key at the handshake.
    js = fed.nodes["js"]
    js.stop()
    js.start()
    refusal = wait_for("js to refuse sh's TLS key", lambda: [
        e for e in events("js", "peer_refused", peer="sh") if "not in the registry" in e["detail"]])
    check(B_PUB[:8] in refusal[-1]["detail"], refusal)
    res = one("js", "sh", expect=1, timeout_ms=1000)
    check(not res["ok"] and res["error"].startswith("down"), res)
    # js learns B: sessions come back and B verifies both ways.
    write_reg("js", with_b)
    reload("js")
    wait_for("js's link to sh", lambda: link_up("js", "sh"), timeout=45)
    signed_with(one("js", "sh", expect=0), B_PUB)
    wait_for("sh's link to js", lambda: link_up("sh", "js"), timeout=45)
    res = one("sh", "js", expect=0)
    check(res["ok"] and res["verified"], res)
    check("key %s" % B_PUB[:16] in last_request_key("js", "sh"), last_request_key("js", "sh"))


def test_sighup_back_to_a():
    """A registry where B has ended (A still valid): SIGHUP puts sh back on A."""
    doc = read_reg("sh")
    b = [k for k in member(doc, "sh")["keys"] if k["public_key"] == B_PUB][0]
    b["not_after"] = int(time.time() * 1000) - 1
    for r in REGIONS:
        write_reg(r, doc)
    for r in REGIONS:
        reload(r)
    used = events("sh", "identity_key_in_use")
    check(used[-1]["public_key"] == A_PUB, used)
    signed_with(one("zj", "sh", expect=0), A_PUB)
    check(one("sh", "ah", expect=0)["verified"], "sh -> ah with A")
    # With no valid key at all the reload is refused and A stays in use.
    for k in member(doc, "sh")["keys"]:
        k["not_before"] = 0
        k["not_after"] = int(time.time() * 1000) - 1
    write_reg("sh", doc)
    failed = len(events("sh", "registry_reload_failed"))
    fed.nodes["sh"].proc.send_signal(signal.SIGHUP)
    ev = wait_for("registry_reload_failed", lambda: events("sh", "registry_reload_failed")[failed:])
    check("key has expired" in ev[0]["error"] and A_PUB in ev[0]["error"] and B_PUB in ev[0]["error"], ev)
    signed_with(one("zj", "sh", expect=0), A_PUB)


def test_extra_key_refusals():
    """A missing extra key file, or one holding the same key as identity_key_file: no start, the reason named."""
    from cbharness import Node
    for name, extra, want in (("missing", os.path.join(fed.fed, "nope.key"), "nope.key"),
                              ("twice", fed.key("sh"), "holds the same key as")):
        n = Node("sh", base=os.path.join(fed.dir, "extra-" + name), fedkey=fed.fedkey)
        n.init()
        Federation._add_node_keys(n, ["identity_key_file = %s" % fed.key("sh"), "registry_file = %s" % reg_path("sh"),
                                      "peer_listen = 127.0.0.1:%d" % free_port(), "extra_identity_key_files = %s" % extra])
        n.start(wait=False)
        rc = n.proc.wait(timeout=30)
        n.stop()
        tail = n.log_tail()
        check(rc == 1 and want in tail, "%s: rc %s, log:\n%s" % (name, rc, tail))


def test_clean_stop():
    for r in REGIONS:
        rc = fed.nodes[r].stop()
        check(rc == 0, "%s exited %s" % (r, rc))


if __name__ == "__main__":
    run_tests([test_start_federation, test_member_removed_and_back, test_endpoint_moved,
               test_rotation_with_overlap, test_sighup_back_to_a, test_extra_key_refusals, test_clean_stop])
