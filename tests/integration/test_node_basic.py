"""cbnode + cbctl flows: init, learner open (GB 11643 refusals with the
reason), deposit, import (good, bad, --skip-invalid, re-import, GB18030,
BOM+CRLF), transcript totals, stats, config errors, clean SIGTERM
shutdown with everything kept, JSON log lines, socket and key modes."""
import collections
import os
import stat

from cbharness import (Node, cbctl, check, generate, id_number, mdb_stat_ok, read_csv_rows, credits_milli,
                       run_tests, tempdir, SOURCE_DIR)

node = None


def test_init_and_modes():
    global node
    node = Node("sh")
    node.init()
    st = os.stat(os.path.join(node.data_dir, "identity.pem"))
    check(stat.S_IMODE(st.st_mode) == 0o600, "identity key mode %o" % stat.S_IMODE(st.st_mode))
    check(stat.S_IMODE(os.stat(node.fedkey).st_mode) == 0o600, "federation key mode")
    check(stat.S_IMODE(os.stat(node.data_dir).st_mode) == 0o700, "data dir mode")
    before = open(os.path.join(node.data_dir, "identity.pem")).read()
    r = node.init(expect_ok=False)
    check(r.returncode == 1 and "refusing to overwrite" in r.stderr, "second --init: %r" % r.stderr)
    check(open(os.path.join(node.data_dir, "identity.pem")).read() == before, "identity changed by second --init")
    node.start()
    check(stat.S_IMODE(os.stat(node.socket).st_mode) == 0o660, "admin socket mode %o" % stat.S_IMODE(os.stat(node.socket).st_mode))
    r = node.cbctl("hello", expect=0)
    check(r.doc["node_id"] == "sh" and r.doc["region"] == "sh", r)


def test_loose_key_refused():
    n = Node("js")
    n.init()
    os.chmod(os.path.join(n.data_dir, "identity.pem"), 0o644)
    n.start(wait=False)
    rc = n.proc.wait(timeout=30)
    n.stop()
    check(rc == 1, "cbnode started with a 0644 identity key (rc %s)" % rc)
    check(any("mode 0644" in l.get("error", "") for l in n.log_lines()), n.log_tail())


def test_learner_open():
    good = id_number("310101", "19900307", "123")
    r = node.cbctl("learner", "open", "--id", good, "--name", "王小明", expect=0)
    check(r.doc["created"] is True and r.doc["learner"]["id_number"] == good, r)
    check(len(r.doc["learner"]["learner_ref"]) == 64, r)
    r2 = node.cbctl("learner", "open", "--id", good.lower(), "--name", "王小明", expect=0)
    check(r2.doc["created"] is False and r2.doc["learner"]["learner_ref"] == r.doc["learner"]["learner_ref"], r2)
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    cases = [
        (good[:17], "17 characters"),
        ("99" + good[2:17], "region"),                      # fixed below with a real check char
        (id_number("310101", "19990230", "123"), "19990230"),  # not a real date
        (id_number("310101", "20991231", "123"), "future"),
        (bad_check, "check character"),
        ("31010119900307123A", "character"),
    ]
    cases[1] = (id_number("990101", "19900307", "123"), "region")
    for bad, fragment in cases:
        r = node.cbctl("learner", "open", "--id", bad, "--name", "x", expect=1)
        check(r.doc["ok"] is False and r.doc["error"]["code"] == "INVALID_ARGUMENT", r)
        check(fragment in r.doc["error"]["reason"], "reason for %s lacks '%s': %r" % (bad, fragment, r))
        check(fragment in r.stderr, "stderr lacks the reason: %r" % r.stderr)
    r = node.cbctl("learner", "open", "--id", good, expect=2)
    r = node.cbctl("stats", expect=0)
    check(r.doc["learners"] == 1, r)


def test_deposit():
    good = id_number("310101", "19900307", "123")
    args = ["deposit", "--id", good, "--kind", "vocational_qualification", "--issuer", "SH-OSTA",
            "--code", "6-07-06-05", "--title", "电工", "--level", "三级", "--credits", "8",
            "--score", "合格", "--awarded", "2023-06-30", "--depositor-role", "appraisal_centre",
            "--depositor-code", "SH-ASC-01", "--depositor-name", "上海市职业技能鉴定中心"]
    r = node.cbctl(*args, expect=0)
    check(r.doc["duplicate"] is False and r.doc["achievement_id"] > 0, r)
    r2 = node.cbctl(*args, expect=0)
    check(r2.doc["duplicate"] is True and r2.doc["achievement_id"] == r.doc["achievement_id"], r2)
    # Unknown learner, bad flags.
    other = id_number("320102", "19850101", "555")
    r = node.cbctl("deposit", "--id", other, "--kind", "1", "--issuer", "X", "--code", "C", "--title", "T",
                   "--credits", "1", "--awarded", "2020-01-01", expect=1)
    check(r.doc["error"]["code"] == "NOT_FOUND", r)
    r = node.cbctl("deposit", "--id", good, "--kind", "9", "--issuer", "X", "--code", "C", "--title", "T",
                   "--credits", "1", "--awarded", "2020-01-01", expect=2)
    r = node.cbctl("deposit", "--id", good, "--kind", "1", "--issuer", "X", "--code", "C", "--title", "T",
                   "--credits", "1.5x", "--awarded", "2020-01-01", expect=2)
    r = node.cbctl("deposit", "--id", good, "--kind", "1", "--issuer", "X", "--code", "C", "--title", "T",
                   "--credits", "1", "--awarded", "2020-02-30", expect=2)
    r = node.cbctl("stats", expect=0)
    check(r.doc["achievements"] == 1, r)


def expected_totals(rows):
    by_id = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    for row in rows:
        t = by_id[row["id_number"].upper()][row["kind"]]
        t[0] += 1
        t[1] += credits_milli(row["credits"])
    return by_id


def test_import_and_transcript():
    d = tempdir()
    path = generate(os.path.join(d, "sh.csv"), 7, 300, 6, "sh")
    rows = read_csv_rows(path)
    check(len(rows) == 1800, "generated %d rows" % len(rows))
    before = node.cbctl("stats", expect=0).doc
    r = node.cbctl("import", path, "--batch", "500", expect=0)
    check(r.doc["rows"] == 1800 and r.doc["stored"] == 1800 and r.doc["duplicates"] == 0, r)
    check(r.doc["batches"] == 4 and r.doc["batches_committed"] == 4, r)
    after = node.cbctl("stats", expect=0).doc
    check(after["achievements"] == before["achievements"] + 1800, (before, after))
    check(after["learners"] == before["learners"] + 300, (before, after))
    # Re-import adds nothing.
    r = node.cbctl("import", path, expect=0)
    check(r.doc["stored"] == 0 and r.doc["duplicates"] == 1800, r)
    check(node.cbctl("stats", expect=0).doc["achievements"] == after["achievements"], "re-import changed counts")
    # Transcripts agree with the file, totals by kind included.
    exp = expected_totals(rows)
    for ident in sorted(exp)[:5]:
        t = node.cbctl("transcript", "--id", ident, expect=0).doc
        check(len(t["achievements"]) == sum(v[0] for v in exp[ident].values()), t)
        got = {x["kind"]: (x["count"], x["credits_milli"]) for x in t["totals"]}
        want = {k: tuple(v) for k, v in exp[ident].items()}
        check(got == want, "totals %r != %r" % (got, want))
        check(t["credits_milli_total"] == sum(v[1] for v in exp[ident].values()), t)
        by_ref = node.cbctl("transcript", "--ref", t["learner"]["learner_ref"], expect=0).doc
        check(by_ref["achievements"] == t["achievements"], "transcript by ref differs")
    # Human output has the totals table.
    h = cbctl("--socket", node.socket, "transcript", "--id", sorted(exp)[0], json_out=False, expect=0)
    check("Totals by kind" in h.stdout and "total" in h.stdout, h.stdout)
    r = node.cbctl("transcript", "--id", id_number("320102", "19850101", "555"), expect=1)
    check(r.doc["error"]["code"] == "NOT_FOUND", r)


def write_bad_file(d):
    good = id_number("310104", "19880808", "246")
    lines = ["id_number,name,kind,issuer,code,title,level,credits,score,awarded_on",
             "%s,李四,academic_course,10272,C001,电子技术,,3,85,2021-06-30" % good,
             "%s,李四,academic_course,10272,C002,机械制造工艺,,2.5,90,2021-06-30" % good,
             "%s,赵五,academic_course,10272,C001,电子技术,,3,85,2021-06-30" % (good[:17] + ("1" if good[17] != "1" else "2")),
             "%s,李四,no_such_kind,10272,C003,x,,3,85,2021-06-30" % good,
             '%s,李四,academic_course,10272,C004,"quoted, with comma",,abc,85,2021-06-30' % good,
             "%s,李四,academic_course,10272,C005,t,,3,85,2021-02-30" % good]
    p = os.path.join(d, "bad.csv")
    with open(p, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return p


def test_import_bad_rows():
    d = tempdir()
    p = write_bad_file(d)
    before = node.cbctl("stats", expect=0).doc
    r = node.cbctl("import", p, expect=1)
    check(r.doc["error"]["code"] == "INVALID_ROWS" and r.doc["invalid"] == 4 and r.doc["rows"] == 6, r)
    lines = sorted(e["line"] for e in r.doc["errors"])
    check(lines == [4, 5, 6, 7], "bad lines %r" % lines)
    reasons = {e["line"]: e["reason"] for e in r.doc["errors"]}
    check("check character" in reasons[4] and "kind" in reasons[5] and "credits" in reasons[6]
          and ("2021-02-30" in reasons[7] or "date" in reasons[7]), reasons)
    check(node.cbctl("stats", expect=0).doc == before, "a refused import changed the store")
    # Human mode lists every bad line on stderr.
    h = cbctl("--socket", node.socket, "import", p, json_out=False, expect=1)
    for ln in (4, 5, 6, 7):
        check("line %d:" % ln in h.stderr, h.stderr)
    # --skip-invalid imports the two good rows and lists the rest.
    r = node.cbctl("import", p, "--skip-invalid", expect=0)
    check(r.doc["stored"] == 2 and r.doc["invalid"] == 4 and len(r.doc["errors"]) == 4, r)
    after = node.cbctl("stats", expect=0).doc
    check(after["achievements"] == before["achievements"] + 2, (before, after))
    # A file-level error (missing required column) names the problem.
    p2 = os.path.join(d, "nohdr.csv")
    with open(p2, "w") as f:
        f.write("id_number,name\n%s,x\n" % id_number())
    r = node.cbctl("import", p2, expect=1)
    check(r.doc["error"]["code"] == "BAD_FILE" and "header" in r.doc["error"]["reason"], r)


def test_import_encodings():
    d = tempdir()
    src = generate(os.path.join(d, "ah.csv"), 11, 40, 3, "ah")
    text = open(src, encoding="utf-8").read()
    gb = os.path.join(d, "ah-gb18030.csv")
    with open(gb, "wb") as f:
        f.write(text.encode("gb18030"))
    r = node.cbctl("import", gb, expect=0)
    check(r.doc["encoding"] == "GB18030" and r.doc["stored"] == 120, r)
    # The same rows as UTF-8 with BOM and CRLF are duplicates: same content.
    bom = generate(os.path.join(d, "ah-bom.csv"), 11, 40, 3, "ah", "--bom", "--crlf")
    check(open(bom, "rb").read().startswith(b"\xef\xbb\xbf"), "no BOM written")
    r = node.cbctl("import", bom, expect=0)
    check(r.doc["bom"] is True and r.doc["stored"] == 0 and r.doc["duplicates"] == 120, r)
    ex = os.path.join(SOURCE_DIR, "deploy", "example-import.csv")
    if os.path.exists(ex):
        r = node.cbctl("import", ex, expect=0)
        check(r.doc["invalid"] == 0, r)


def test_restart_keeps_everything():
    before = node.cbctl("stats", expect=0).doc
    rc = node.stop()
    check(rc == 0, "SIGTERM exit code %s" % rc)
    check(not os.path.exists(node.socket), "socket left behind after clean stop")
    mdb_stat_ok(node.data_dir)
    node.start()
    after = node.cbctl("stats", expect=0).doc
    check(before["learners"] == after["learners"] and before["achievements"] == after["achievements"], (before, after))
    check(node.stop(__import__("signal").SIGINT) == 0, "SIGINT exit code")
    logs = node.log_lines()
    events = [l["event"] for l in logs]
    for e in ("ready", "admin_listening", "import_batch", "shutdown", "stopped"):
        check(e in events, "no '%s' log line" % e)
    # No raw ID number in the logs: they are personal data.
    raw = open(node.log_path, encoding="utf-8").read()
    check(id_number("310101", "19900307", "123") not in raw, "ID number written to the log")


def test_config_errors():
    d = tempdir()
    p = os.path.join(d, "bad.ini")
    with open(p, "w") as f:
        f.write("[node]\nid = x\nregion = sh\ncolour = red\n")
    r = __import__("subprocess").run([__import__("cbharness").CBNODE, "--config", p], capture_output=True, text=True)
    check(r.returncode == 1 and ("%s:4: unknown key 'colour'" % p) in r.stderr, r.stderr)
    check(r.stdout == "", "stdout not empty")
    r = cbctl("--config", p, "stats", expect=2)
    r = cbctl("--socket", os.path.join(d, "nothing.sock"), "stats", expect=1)
    check(r.doc["error"]["code"] == "UNAVAILABLE", r)
    r = cbctl("bogus-command", expect=2)


def test_second_node_same_socket_refused():
    n = Node("zj")
    n.init()
    n.start()
    twin = Node("zj", base=n.dir + "-twin")
    with open(twin.config) as f:
        cfg = f.read().replace(twin.socket, n.socket)
    with open(twin.config, "w") as f:
        f.write(cfg)
    twin.init()
    twin.start(wait=False)
    rc = twin.proc.wait(timeout=30)
    twin.stop()
    check(rc == 1, "second node on a live socket: rc %s" % rc)
    check(n.cbctl("hello", expect=0).doc["node_id"] == "zj", "first node disturbed")
    check(n.stop() == 0, "stop")


if __name__ == "__main__":
    run_tests([test_init_and_modes, test_loose_key_refused, test_learner_open, test_deposit,
               test_import_and_transcript, test_import_bad_rows, test_import_encodings,
               test_restart_keeps_everything, test_config_errors, test_second_node_same_socket_refused])
