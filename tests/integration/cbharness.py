"""Shared harness for integration tests: real cbnode processes on this
machine, driven by cbctl --json. Python 3 standard library only.

Every process started here is recorded by PID and stopped (SIGKILL if it
does not stop on SIGTERM) when the test ends, also when it fails.

Environment: CB_BUILD_DIR (set by ctest) names the build tree holding
node/cbnode and node/cbctl; CB_SOURCE_DIR the source tree. Without them the
harness looks for build/release under the source tree.
"""
import atexit
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("CB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("CB_BUILD_DIR") or os.path.join(SOURCE_DIR, "build", "release")
CBNODE = os.path.join(BUILD_DIR, "node", "cbnode")
CBCTL = os.path.join(BUILD_DIR, "node", "cbctl")

_procs = []      # every Popen started, for cleanup
_tmpdirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except Exception:
                p.kill()
                p.wait()
    for d in _tmpdirs:
        if os.environ.get("CB_KEEP_TMP"):
            print("harness: kept", d, file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    _cleanup()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def sanitized_build():
    """True if the build tree was configured with ASan/UBSan (slower)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return "CB_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def tempdir(prefix="cbtest-"):
    # Short paths: a Unix socket path must fit in 107 bytes.
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    _tmpdirs.append(d)
    return d


def free_port():
    """A TCP port on 127.0.0.1 the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Node:
    """One cbnode with its own directory, config, data and admin socket."""

    def __init__(self, node_id="sh", region=None, base=None, fedkey=None, limits=None, extra_node=None):
        self.id = node_id
        self.region = region or node_id
        self.dir = base or tempdir("cb-%s-" % node_id)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "node.ini")
        self.socket = os.path.join(self.dir, "admin.sock")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "node.log")
        self.fedkey = fedkey or os.path.join(self.dir, "federation.key")
        self.proc = None
        self._log = None
        lines = ["[node]", "id = %s" % node_id, "region = %s" % self.region, "data_dir = data",
                 "admin_socket = %s" % self.socket, "federation_key_file = %s" % self.fedkey]
        lines += extra_node or []
        lim = {"map_size_mb": 64}
        lim.update(limits or {})
        lines.append("[limits]")
        lines += ["%s = %s" % kv for kv in lim.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def init(self, expect_ok=True):
        r = subprocess.run([CBNODE, "--config", self.config, "--init"], capture_output=True, text=True, timeout=60)
        if expect_ok:
            check(r.returncode == 0, "cbnode --init failed: %s" % r.stderr)
        return r

    def start(self, wait=True):
        check(self.proc is None or self.proc.poll() is not None, "node already running")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CBNODE, "--config", self.config], stdout=subprocess.PIPE,
                                     stderr=self._log, stdin=subprocess.DEVNULL)
        _procs.append(self.proc)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("cbnode exited with %s while starting:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("cbnode did not open %s within %ss" % (self.socket, timeout))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the node by PID; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("cbnode did not stop on %s" % sig)
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        check(out == b"", "cbnode wrote to stdout: %r" % out[:200])
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log_lines(self):
        """The node's stderr, parsed: every line must be one JSON object."""
        out = []
        with open(self.log_path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8").rstrip("\n")
                if not line:
                    continue
                # ASan/UBSan reports are not ours to parse.
                if line.startswith("=") or "runtime error" in line:
                    raise AssertionError("sanitizer report in node log: %s" % line)
                obj = json.loads(line)
                check(isinstance(obj, dict) and "ts" in obj and "level" in obj and "event" in obj,
                      "log line without ts/level/event: %s" % line)
                out.append(obj)
        return out

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def cbctl(self, *args, **kw):
        return cbctl("--socket", self.socket, *args, **kw)


class Result:
    def __init__(self, rc, doc, stdout, stderr):
        self.rc, self.doc, self.stdout, self.stderr = rc, doc, stdout, stderr

    def __repr__(self):
        return "Result(rc=%s, doc=%s, stderr=%r)" % (self.rc, json.dumps(self.doc, ensure_ascii=False)[:800], self.stderr[-800:])


def cbctl(*args, json_out=True, timeout=600, expect=None):
    """Runs cbctl (with --json unless json_out=False); expect = exit code to require."""
    argv = [CBCTL]
    if json_out:
        argv.append("--json")
    argv += [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    doc = None
    if json_out and r.stdout.strip():
        doc = json.loads(r.stdout)
    res = Result(r.returncode, doc, r.stdout, r.stderr)
    if expect is not None:
        check(r.returncode == expect, "cbctl %s: exit %s, wanted %s: %r" % (" ".join(argv[1:]), r.returncode, expect, res))
    return res


def cbctl_popen(*args):
    """Starts cbctl --json in the background (recorded for cleanup)."""
    p = subprocess.Popen([CBCTL, "--json"] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    _procs.append(p)
    return p


def generate(path, seed, learners, per_learner, region, *flags):
    cbctl("generate", "--seed", seed, "--learners", learners, "--per-learner", per_learner,
          "--region", region, "--out", path, *flags, expect=0)
    return path


def mdb_stat_ok(data_dir):
    """The LMDB environment opens cleanly with the stock tool (lmdb-utils)."""
    r = subprocess.run(["mdb_stat", "-e", data_dir], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "mdb_stat failed on %s: %s" % (data_dir, r.stderr))
    return r.stdout


# ---- raw admin socket client: minimal protobuf encoding (tests only) ----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """Encodes one field: int -> varint, bytes/str -> length-delimited."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode("utf-8")
    return varint(num << 3 | 2) + varint(len(value)) + value


def envelope(msg_field, body=b"", version=1, request_id=1):
    return pb_field(1, version) + pb_field(2, request_id) + pb_field(msg_field, body)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def pb_decode(buf):
    """Decodes one message level into {field: [values]} (varint ints or bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def _read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# Envelope field numbers (proto/wire.proto) and ErrorCode values (proto/admin.proto).
F_ERROR, F_HELLO, F_LEARNER_OPEN, F_DEPOSIT, F_IMPORT, F_TRANSCRIPT, F_STATS = 10, 11, 13, 15, 17, 19, 21
F_STATS_RESPONSE = 22
ERROR_CODES = {1: "FRAME_TOO_LARGE", 2: "MALFORMED", 3: "UNSUPPORTED_VERSION", 4: "UNKNOWN_TYPE",
               5: "INVALID_ARGUMENT", 6: "NOT_FOUND", 7: "ALREADY_EXISTS", 8: "STORAGE", 9: "BUSY", 10: "INTERNAL"}


class RawClient:
    """A raw connection to the admin socket, for sending bad bytes."""

    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def send(self, data):
        self.s.sendall(data)

    def recv_frame(self):
        """Returns (envelope fields) or None if the node closed the connection."""
        hdr = self._recv_exact(4)
        if hdr is None:
            return None
        (n,) = struct.unpack(">I", hdr)
        body = self._recv_exact(n)
        check(body is not None, "connection closed inside a reply frame")
        return pb_decode(body)

    def expect_error(self, code):
        env = self.recv_frame()
        check(env is not None, "no reply: connection closed, wanted error %s" % code)
        check(F_ERROR in env, "reply is not an Error: %r" % env)
        err = pb_decode(env[F_ERROR][0])
        got = ERROR_CODES.get(err.get(1, [0])[0], "?")
        reason = err.get(2, [b""])[0].decode("utf-8")
        check(got == code, "error %s (%s), wanted %s" % (got, reason, code))
        check(reason, "error without a reason")
        return reason

    def closed(self):
        """True if the node has closed the connection (EOF)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(n - len(buf))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.s.close()


def run_tests(tests):
    """Runs test functions in order; prints each; exits 1 on the first failure."""
    for t in tests:
        t0 = time.time()
        print("--- %s" % t.__name__, flush=True)
        try:
            t()
        except Exception:
            import traceback
            traceback.print_exc()
            print("FAILED %s" % t.__name__, flush=True)
            _cleanup()
            sys.exit(1)
        print("ok %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
    print("all %d tests passed" % len(tests))


def id_number(region="310101", birth="19900307", seq="123"):
    """A GB 11643 ID number with a correct ISO 7064 MOD 11-2 check character."""
    body = region + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(body, weights))
    return body + "10X98765432"[s % 11]


def read_csv_rows(path, encoding="utf-8-sig"):
    import csv
    with open(path, newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


def credits_milli(s):
    whole, _, frac = s.partition(".")
    return int(whole) * 1000 + int((frac + "000")[:3] or 0)


# ---- four-node federation on loopback (test_federation*.py) ----

PEER_PROBE = os.path.join(BUILD_DIR, "tests", "integration", "peer_probe")
REGIONS = ("sh", "js", "zj", "ah")


class Federation:
    """Four cbnodes (sh, js, zj, ah) with keys, certificates and a registry
    made by deploy/mkfederation.sh on free loopback ports, each node's
    identity key and registry_file taken from it."""

    def __init__(self, limits=None):
        self.dir = tempdir("cbfed-")
        self.ports = {r: free_port() for r in REGIONS}
        self.fed = os.path.join(self.dir, "fed")
        r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "mkfederation.sh"), self.fed] +
                           [str(self.ports[x]) for x in REGIONS], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "mkfederation.sh failed: %s" % r.stderr)
        self.registry = os.path.join(self.fed, "registry.json")
        self.fedkey = os.path.join(self.fed, "federation.key")
        self.nodes = {}
        for x in REGIONS:
            n = Node(x, base=os.path.join(self.dir, x), fedkey=self.fedkey, limits=limits)
            # --init makes the data directory (and a spare identity.pem);
            # the node then runs with the identity key the registry names.
            n.init()
            n.key = self.key(x)
            self._add_node_keys(n, ["identity_key_file = %s" % n.key, "registry_file = %s" % self.registry])
            self.nodes[x] = n

    @staticmethod
    def _add_node_keys(n, lines):
        with open(n.config) as f:
            text = f.read()
        text = text.replace("[node]\n", "[node]\n" + "".join(l + "\n" for l in lines), 1)
        with open(n.config, "w") as f:
            f.write(text)

    def key(self, region):
        return os.path.join(self.fed, region, "node.key")

    def start(self):
        for n in self.nodes.values():
            n.start()
        return self

    def wait_links(self, timeout=30):
        """Until every node has a session with every other (peer_up logged)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.links_up(x) >= len(REGIONS) - 1 for x in REGIONS):
                return
            time.sleep(0.1)
        raise AssertionError("peer sessions did not all come up: %s" % {x: self.links_up(x) for x in REGIONS})

    def links_up(self, region):
        up = set()
        for e in self.nodes[region].log_lines():
            if e["event"] == "peer_up":
                up.add(e["peer"])
            elif e["event"] == "peer_down":
                up.discard(e["peer"])
        return len(up)

    def load_registry(self):
        with open(self.registry) as f:
            return json.load(f)

    def write_registry(self, doc):
        tmp = self.registry + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, self.registry)

    def probe(self, mode, *args, timeout=60):
        """Runs peer_probe; returns its JSON lines."""
        r = subprocess.run([PEER_PROBE, mode, "--registry", self.registry] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        check(r.returncode == 0, "peer_probe %s failed (%s): %s" % (mode, r.returncode, r.stderr))
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def probe_popen(self, mode, *args):
        p = subprocess.Popen([PEER_PROBE, mode, "--registry", self.registry] + [str(a) for a in args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _procs.append(p)
        return p


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- operator TLS port (test_operators.py) --------------------------------

KEYS_SH = os.path.join(SOURCE_DIR, "deploy", "keys.sh")


def keys_sh(*args, env=None):
    """Runs deploy/keys.sh; returns its stdout (stripped)."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(["bash", KEYS_SH] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=60, env=e)
    check(r.returncode == 0, "keys.sh %s failed: %s" % (" ".join(map(str, args)), r.stderr))
    return r.stdout.strip()


def add_config_section(node, name, items):
    """Appends [name] with items to the node's config (before it starts)."""
    with open(node.config, "a") as f:
        f.write("[%s]\n" % name + "".join("%s = %s\n" % kv for kv in items.items()))


def node_public_key(node):
    """The node's Ed25519 identity key as 64 hex digits (what cbctl pins)."""
    return keys_sh("pubhex", os.path.join(node.data_dir, "identity.pem"))


def cbctl_remote(addr, cert, key, node_key, *args, **kw):
    """cbctl --remote over the operator TLS port with an operator certificate."""
    return cbctl("--remote", addr, "--cert", cert, "--key", key, "--node-key", node_key, *args, **kw)
