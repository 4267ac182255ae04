"""Durability under SIGKILL (DESIGN.md "Records": nothing acknowledged is
ever lost).

A large import runs against cbnode, which is SIGKILLed after a random delay,
20 times in a loop, restarting it each time. After every kill:
  - the LMDB environment opens cleanly with mdb_stat, and cbnode restarts;
  - every batch cbctl reported committed is in the store;
  - the store holds whole batches only: its counts equal those of some
    prefix of the batches cbctl sends (rows sorted by ID number, then award
    date, then file order: node/cbctl_import.c);
  - running the same import again completes it, without a duplicate.
When a file is complete the loop moves on to a new one, so kills keep
landing inside imports. The seed is printed; CB_DURABILITY_SEED=N replays.
"""
import csv
import os
import random
import time

from cbharness import (Node, check, cbctl_popen, generate, mdb_stat_ok, run_tests, sanitized_build, tempdir)
import json

KILLS = 20
BATCH = 1000
SANITIZED = sanitized_build()
LEARNERS, PER = 5000, 10
REGIONS = ["js", "zj", "ah", "sh"]


class ImportFile:
    """One generated file and the store contents after each prefix of its batches."""

    def __init__(self, d, index):
        self.path = generate(os.path.join(d, "import-%d.csv" % index), 1000 + index, LEARNERS, PER,
                             REGIONS[index % 4])
        with open(self.path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["id_number"].upper(),
                                                         rows[i]["awarded_on"].replace("-", ""), i))
        self.rows = len(rows)
        self.batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
        self.keys = [(rows[i]["id_number"].upper(), rows[i]["issuer"], rows[i]["code"],
                      rows[i]["awarded_on"].replace("-", "")) for i in range(len(rows))]
        self.ids = [k[0] for k in self.keys]

    def prefix_sets(self, base_keys, base_ids):
        """[(learners, achievements)] after 0..n batches on top of the base sets."""
        keys, ids = set(base_keys), set(base_ids)
        out = [(len(ids), len(keys))]
        for b in self.batches:
            for i in b:
                keys.add(self.keys[i])
                ids.add(self.ids[i])
            out.append((len(ids), len(keys)))
        return out, keys, ids


def stats(node):
    r = node.cbctl("stats", expect=0)
    return r.doc["learners"], r.doc["achievements"]


def test_sigkill_loop():
    seed = int(os.environ.get("CB_DURABILITY_SEED", str(int(time.time()))))
    print("durability seed %d (CB_DURABILITY_SEED=%d replays the delays)" % (seed, seed), flush=True)
    rng = random.Random(seed)
    d = tempdir()
    node = Node("js", limits={"map_size_mb": 64, "import_batch_records": BATCH})
    node.init()
    node.start()

    done_keys, done_ids = set(), set()
    files = [ImportFile(d, 0)]
    cur = files[0]
    prefixes, _, _ = cur.prefix_sets(done_keys, done_ids)
    kills_mid_import = 0
    # Kill delays are drawn up to the time an import is expected to take,
    # learnt as the loop goes (machines and sanitizer builds differ).
    import_s = 1.0
    for it in range(KILLS):
        delay = rng.uniform(0.02, import_s * 1.1)
        p = cbctl_popen("--socket", node.socket, "import", cur.path, "--batch", BATCH)
        time.sleep(delay)
        node.kill()
        out, err = p.communicate(timeout=120)
        doc = json.loads(out) if out.strip() else {}
        completed = p.returncode == 0 and doc.get("ok") is True
        acked = len(cur.batches) if completed else doc.get("batches_committed", 0)
        if completed:
            import_s = max(0.1, doc.get("elapsed_ms", 1000) / 1000.0)
        elif acked > 0:
            import_s = max(0.1, delay * len(cur.batches) / acked)
        if not completed:
            kills_mid_import += 1
            check(p.returncode == 1, "cbctl exit %s: %s" % (p.returncode, err))
            check(doc.get("error", {}).get("code") in ("UNAVAILABLE", None) or "batches_committed" not in doc,
                  "unexpected cbctl error: %r" % doc)

        mdb_stat_ok(node.data_dir)
        node.start()
        got = stats(node)
        matches = [k for k, v in enumerate(prefixes) if v == got]
        check(matches, "iteration %d: store holds %r, not whole batches of the import (%r...)"
              % (it, got, prefixes[:3]))
        check(max(matches) >= acked, "iteration %d: cbctl had %d batches acknowledged, store has %r = %d batches"
              % (it, acked, got, max(matches)))
        print("kill %2d after %.2fs: cbctl acked %d/%d batches, store has %d batches (%d learners, %d achievements)"
              % (it + 1, delay, acked, len(cur.batches), max(matches), got[0], got[1]), flush=True)

        if max(matches) == len(cur.batches):
            # This file is complete: the next kills land in a new import.
            _, done_keys, done_ids = cur.prefix_sets(done_keys, done_ids)
            cur = ImportFile(d, len(files))
            files.append(cur)
            prefixes, _, _ = cur.prefix_sets(done_keys, done_ids)

    # Running the same imports again completes them without a duplicate.
    for f in files:
        r = node.cbctl("import", f.path, "--batch", BATCH, expect=0)
        check(r.doc["ok"] and r.doc["rows_committed"] == f.rows, r)
    all_keys, all_ids = set(), set()
    for f in files:
        all_keys.update(f.keys)
        all_ids.update(f.ids)
    check(stats(node) == (len(all_ids), len(all_keys)),
          "after completing: %r, expected %r" % (stats(node), (len(all_ids), len(all_keys))))
    for f in files:
        r = node.cbctl("import", f.path, expect=0)
        check(r.doc["stored"] == 0 and r.doc["learners_opened"] == 0, "re-import stored something: %r" % r)
    check(stats(node) == (len(all_ids), len(all_keys)), "re-import changed counts")
    check(node.stop() == 0, "clean stop")
    mdb_stat_ok(node.data_dir)
    print("%d kills, %d inside an import, %d files, %d achievements" % (KILLS, kills_mid_import, len(files), len(all_keys)))
    check(kills_mid_import >= KILLS // 4, "only %d kills landed inside an import" % kills_mid_import)


if __name__ == "__main__":
    run_tests([test_sigkill_loop])
