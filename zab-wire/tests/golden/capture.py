#!/usr/bin/env python3
"""Capture golden jute frames from a real Apache ZooKeeper server.

Starts a standalone ZooKeeper (Debian's 3.8 package by default) on a free
127.0.0.1 port with a temporary data directory and
`zookeeper.extendedTypesEnabled=true` (needed for createTTL), drives it with a
tiny raw-socket client written here, and writes every frame exchanged, byte
for byte, to one fixture file per scenario in this directory. The server is
killed when the script ends, whatever happens.

Fixture format (read by `zab-wire/tests/golden.rs`), one frame per line,
each frame in hex *including* its 4-byte length prefix:

    # step: <name>            starts a step (a comment for humans and test output)
    connect> <hex>            ConnectRequest frame (client to server)
    connect< <hex>            ConnectResponse frame
    > <hex>                   RequestHeader + request record
    < <hex>                   ReplyHeader + (if err == 0) response record
    eof                       the server closed the connection

Usage (from the repository root):

    python3 zab-wire/tests/golden/capture.py [--classpath CP] [--out DIR]

The captured values (session ids, zxids, times, passwords) change from run to
run; the Rust tests only rely on the structure that ZooKeeper guarantees.
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

DEFAULT_CLASSPATH = "/usr/share/java/*:/usr/share/zookeeper/*"

# Opcodes (ZooDefs.OpCode) and special xids, as the Java client uses them.
OP_CREATE, OP_DELETE, OP_EXISTS, OP_GET_DATA, OP_SET_DATA = 1, 2, 3, 4, 5
OP_GET_ACL, OP_SET_ACL, OP_GET_CHILDREN, OP_SYNC, OP_PING = 6, 7, 8, 9, 11
OP_GET_CHILDREN2, OP_CHECK, OP_MULTI, OP_CREATE2 = 12, 13, 14, 15
OP_CHECK_WATCHES, OP_REMOVE_WATCHES, OP_CREATE_CONTAINER = 17, 18, 19
OP_CREATE_TTL, OP_MULTI_READ = 21, 22
OP_AUTH, OP_SET_WATCHES, OP_GET_EPHEMERALS = 100, 101, 103
OP_GET_ALL_CHILDREN_NUMBER, OP_SET_WATCHES2, OP_ADD_WATCH = 104, 105, 106
OP_WHO_AM_I, OP_CLOSE_SESSION = 107, -11
XID_PING, XID_AUTH, XID_SET_WATCHES = -2, -4, -8

OPEN_ACL = [(31, "world", "anyone")]


# --- jute encoding (reference A) -------------------------------------------

def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buf(b):
    return i32(-1) if b is None else i32(len(b)) + b


def ustr(s):
    return buf(s.encode("utf-8"))


def strings(items):
    return i32(len(items)) + b"".join(ustr(s) for s in items)


def acls(items):
    return i32(len(items)) + b"".join(i32(p) + ustr(s) + ustr(i) for p, s, i in items)


def create_req(path, data, flags, acl=OPEN_ACL):
    return ustr(path) + buf(data) + acls(acl) + i32(flags)


def path_watch(path, watch):
    return ustr(path) + boolean(watch)


def multi_body(ops):
    """ops: list of (opcode, record bytes); headers as the Java client writes them."""
    out = b""
    for op, rec in ops:
        out += i32(op) + boolean(False) + i32(-1) + rec
    return out + i32(-1) + boolean(True) + i32(-1)


# --- a raw connection that logs every frame --------------------------------

class Conn:
    def __init__(self, port, log):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.log = log
        self.xid = 0
        self.last_zxid = 0

    def _send(self, kind, payload):
        frame = i32(len(payload)) + payload
        self.sock.sendall(frame)
        self.log.append(f"{kind} {frame.hex()}")

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                return None
            out += chunk
        return out

    def _recv(self, kind):
        head = self._recv_exact(4)
        if head is None:
            self.log.append("eof")
            return None
        (n,) = struct.unpack(">i", head)
        payload = self._recv_exact(n)
        if payload is None:
            raise RuntimeError("connection closed mid-frame")
        self.log.append(f"{kind} {(head + payload).hex()}")
        return payload

    def step(self, name):
        self.log.append(f"# step: {name}")

    def connect(self, session_id=0, passwd=b"\0" * 16, read_only=True, timeout_ms=10000):
        body = i32(0) + i64(self.last_zxid) + i32(timeout_ms) + i64(session_id) + buf(passwd)
        if read_only is not None:
            body += boolean(read_only)
        self._send("connect>", body)
        resp = self._recv("connect<")
        _, _, sid, plen = struct.unpack(">iiqi", resp[:20])
        return sid, resp[20:20 + plen]

    def request(self, op, body, xid=None):
        """Sends one request and reads frames up to and including its reply
        (watch notifications arriving first are logged too). Returns the
        reply's err code, or None if the server closed the connection."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send(">", i32(xid) + i32(op) + body)
        while True:
            payload = self._recv("<")
            if payload is None:
                return None
            rxid, zxid, err = struct.unpack(">iqi", payload[:16])
            if rxid == xid:
                if zxid > 0:
                    self.last_zxid = zxid
                return err

    def expect_eof(self):
        if self._recv("<") is not None:
            raise RuntimeError("expected the server to close the connection")

    def close(self):
        self.sock.close()


# --- scenarios --------------------------------------------------------------

def scenario_connect(port):
    log = []
    c = Conn(port, log)
    c.step("connect, new session, with the readOnly byte (45-byte request)")
    c.connect(read_only=False)
    c.step("closeSession: header-only reply, then the server closes")
    assert c.request(OP_CLOSE_SESSION, b"") == 0
    c.expect_eof()
    c.close()
    return log


def scenario_connect_old_client(port):
    log = []
    c = Conn(port, log)
    c.step("connect without the readOnly byte: pre-3.4 client (behaviour 39)")
    c.connect(read_only=None)
    c.step("closeSession")
    assert c.request(OP_CLOSE_SESSION, b"") == 0
    c.expect_eof()
    c.close()
    return log


def scenario_resume_wrong_password(port):
    log = []
    c = Conn(port, log)
    sid, _ = c.connect(read_only=False)
    c.close()
    log.clear()
    c = Conn(port, log)
    c.step("resume with a wrong password: timeOut 0, id 0, zero password, close (behaviour 35)")
    c.connect(session_id=sid, passwd=b"\x01" * 16, read_only=False)
    c.expect_eof()
    c.close()
    return log


def scenario_ops(port):
    log = []
    c = Conn(port, log)
    c.step("connect")
    c.connect(read_only=False)

    c.step("create /g (op 1) with data")
    assert c.request(OP_CREATE, create_req("/g", b"hello", 0)) == 0
    c.step("create2 /g/c2 (op 15) with null data")
    assert c.request(OP_CREATE2, create_req("/g/c2", None, 0)) == 0
    c.step("create sequential /g/s- (op 1, flags 2)")
    assert c.request(OP_CREATE, create_req("/g/s-", b"", 2)) == 0
    c.step("createContainer /g/box (op 19, flags 4)")
    assert c.request(OP_CREATE_CONTAINER, create_req("/g/box", b"x", 4)) == 0
    c.step("createTTL /g/ttl (op 21, flags 5, ttl 60000)")
    assert c.request(OP_CREATE_TTL, create_req("/g/ttl", b"t", 5) + i64(60000)) == 0
    c.step("create ephemeral /g/eph (op 1, flags 1)")
    assert c.request(OP_CREATE, create_req("/g/eph", None, 1)) == 0
    c.step("create existing /g: NodeExists, header only")
    assert c.request(OP_CREATE, create_req("/g", None, 0)) == -110

    c.step("getData /g/c2: null data reads back as length -1 (behaviour 9)")
    assert c.request(OP_GET_DATA, path_watch("/g/c2", False)) == 0
    c.step("setData /g")
    assert c.request(OP_SET_DATA, ustr("/g") + buf(b"world") + i32(-1)) == 0
    c.step("exists /missing: NoNode, header only (behaviour 18)")
    assert c.request(OP_EXISTS, path_watch("/missing", False)) == -101
    c.step("exists /g")
    assert c.request(OP_EXISTS, path_watch("/g", False)) == 0
    c.step("getChildren /g")
    assert c.request(OP_GET_CHILDREN, path_watch("/g", False)) == 0
    c.step("getChildren2 /g")
    assert c.request(OP_GET_CHILDREN2, path_watch("/g", False)) == 0
    c.step("getACL /g")
    assert c.request(OP_GET_ACL, ustr("/g")) == 0
    c.step("setACL /g (version 0 = expected aversion)")
    assert c.request(OP_SET_ACL, ustr("/g") + acls([(31, "world", "anyone")]) + i32(0)) == 0
    c.step("delete /g/c2")
    assert c.request(OP_DELETE, ustr("/g/c2") + i32(-1)) == 0

    c.step("multi, all ops succeed: create, create2, setData, check, delete")
    assert c.request(OP_MULTI, multi_body([
        (OP_CREATE, create_req("/m1", b"a", 0)),
        (OP_CREATE2, create_req("/m2", None, 0)),
        (OP_SET_DATA, ustr("/m1") + buf(b"b") + i32(0)),
        (OP_CHECK, ustr("/m1") + i32(1)),
        (OP_DELETE, ustr("/m2") + i32(-1)),
    ])) == 0
    c.step("multi that fails on its second op (reference C, behaviour 46)")
    assert c.request(OP_MULTI, multi_body([
        (OP_CREATE, create_req("/mf", None, 0)),
        (OP_CREATE, create_req("/g", None, 0)),
        (OP_SET_DATA, ustr("/zz") + buf(b"") + i32(-1)),
    ])) == 0
    c.step("empty multi: terminator only")
    assert c.request(OP_MULTI, multi_body([])) == 0
    c.step("multiRead: getData, getChildren, getData of a missing node")
    assert c.request(OP_MULTI_READ, multi_body([
        (OP_GET_DATA, path_watch("/g", False)),
        (OP_GET_CHILDREN, path_watch("/g", False)),
        (OP_GET_DATA, path_watch("/nope", False)),
    ])) == 0

    c.step("getEphemerals / (op 103)")
    assert c.request(OP_GET_EPHEMERALS, ustr("/")) == 0
    c.step("getAllChildrenNumber /g (op 104)")
    assert c.request(OP_GET_ALL_CHILDREN_NUMBER, ustr("/g")) == 0
    c.step("sync /g")
    assert c.request(OP_SYNC, ustr("/g")) == 0
    c.step("whoAmI before auth")
    assert c.request(OP_WHO_AM_I, b"") == 0
    c.step("auth digest (xid -4): header only, zxid 0")
    assert c.request(OP_AUTH, i32(0) + ustr("digest") + buf(b"user:secret"), xid=XID_AUTH) == 0
    c.step("whoAmI after auth")
    assert c.request(OP_WHO_AM_I, b"") == 0
    c.step("ping (xid -2)")
    assert c.request(OP_PING, b"", xid=XID_PING) == 0

    c.step("addWatch /g persistent (op 106): 4-byte ErrorResponse body")
    assert c.request(OP_ADD_WATCH, ustr("/g") + i32(0)) == 0
    c.step("checkWatches /g any (op 17)")
    assert c.request(OP_CHECK_WATCHES, ustr("/g") + i32(3)) == 0
    c.step("removeWatches /g any (op 18)")
    assert c.request(OP_REMOVE_WATCHES, ustr("/g") + i32(3)) == 0
    c.step("checkWatches on a path with no watch: NoWatcher")
    assert c.request(OP_CHECK_WATCHES, ustr("/g") + i32(2)) == -121

    c.step("setWatches (op 101, xid -8) with a stale zxid: fires NodeDataChanged")
    assert c.request(OP_SET_WATCHES, i64(1) + strings(["/g"]) + strings(["/nope"]) + strings([]),
                     xid=XID_SET_WATCHES) == 0
    c.step("setWatches2 (op 105, xid -8)")
    assert c.request(OP_SET_WATCHES2, i64(c.last_zxid) + strings(["/g"]) + strings(["/nope"])
                     + strings(["/g"]) + strings([]) + strings(["/m1"]), xid=XID_SET_WATCHES) == 0

    c.step("getData /g with a watch, then setData /g: notification precedes the reply")
    assert c.request(OP_GET_DATA, path_watch("/g", True)) == 0
    assert c.request(OP_SET_DATA, ustr("/g") + buf(b"again") + i32(-1)) == 0
    c.step("getChildren /g with a watch, then create a child: NodeChildrenChanged")
    assert c.request(OP_GET_CHILDREN, path_watch("/g", True)) == 0
    assert c.request(OP_CREATE, create_req("/g/kid", None, 0)) == 0

    c.step("closeSession")
    assert c.request(OP_CLOSE_SESSION, b"") == 0
    c.expect_eof()
    c.close()
    return log


def scenario_max_buffer(port):
    """Behaviour 15: the limit is on the whole frame, `len > jute.maxbuffer`
    refused. Sends a setData whose frame payload is exactly 0xFFFFF bytes
    (accepted), then one of 0x100000 bytes (connection closed)."""
    log = []
    c = Conn(port, log)
    c.connect(read_only=False)
    log.clear()
    header_and_fixed = 8 + (4 + 2) + 4 + 4  # header, path "/g", data len, version
    for total, ok in ((0xFFFFF, True), (0x100000, False)):
        data = b"z" * (total - header_and_fixed)
        body = ustr("/g") + buf(data) + i32(-1)
        c.xid += 1
        payload = i32(c.xid) + i32(OP_SET_DATA) + body
        assert len(payload) == total
        c.sock.sendall(i32(len(payload)) + payload)
        try:
            head = c._recv_exact(4)
        except ConnectionResetError:
            head = None
        if head is None:
            log.append(f"# frame payload {total}: connection closed")
            assert not ok, "server refused a frame it should accept"
        else:
            (n,) = struct.unpack(">i", head)
            reply = c._recv_exact(n)
            err = struct.unpack(">iqi", reply[:16])[2]
            log.append(f"# frame payload {total}: reply err {err}")
            assert ok, "server accepted a frame it should refuse"
    c.close()
    # A line the Rust test parses: the largest payload ZooKeeper accepted.
    log.append(f"max-accepted {0xFFFFF}")
    return log


SCENARIOS = [
    ("connect.txt", scenario_connect),
    ("connect_old_client.txt", scenario_connect_old_client),
    ("resume_wrong_password.txt", scenario_resume_wrong_password),
    ("ops.txt", scenario_ops),
    ("max_buffer.txt", scenario_max_buffer),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"srvr")
                if b"Mode:" in s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("ZooKeeper did not start in time")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classpath", default=DEFAULT_CLASSPATH)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="zab-golden-")
    port = free_port()
    cmd = ["java", "-cp", args.classpath,
           "-Dzookeeper.extendedTypesEnabled=true",
           "-Dzookeeper.admin.enableServer=false",
           "org.apache.zookeeper.server.ZooKeeperServerMain", str(port), data_dir]
    zk = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        wait_ready(port, time.monotonic() + 60)
        version = subprocess.run(
            ["java", "-cp", args.classpath, "org.apache.zookeeper.version.VersionInfoMain"],
            capture_output=True, text=True).stdout.strip() or "unknown"
        for name, scenario in SCENARIOS:
            lines = scenario(port)
            with open(os.path.join(args.out, name), "w") as f:
                f.write(f"# Captured by capture.py from {version}\n")
                f.write("\n".join(lines) + "\n")
            print(f"wrote {name}: {sum(1 for l in lines if not l.startswith('#'))} frames")
    finally:
        os.killpg(zk.pid, signal.SIGKILL)
        zk.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
