"""Kazoo (Debian's python3-kazoo) against a ZooKeeper-compatible server.

Run by zab-server/tests/compat_kazoo.rs as
`python3 scenarios.py HOST:PORT SCENARIO`; exits 0 when every check of
the scenario holds, else prints what failed and exits 1. Each scenario
works under its own root node, so they can share a server.

Nothing here is zab's code: the client, its recipes and their use of the
protocol are kazoo's, which is the point.
"""

import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.security import make_acl, make_digest_acl

HOSTS = sys.argv[1]
ROOT = "/kazoo-" + sys.argv[2]
WITHIN = 20.0


def client(**kw):
    c = KazooClient(hosts=HOSTS, timeout=10.0, **kw)
    c.start(timeout=WITHIN)
    return c


def wait_for(cond, what):
    """Polls `cond` until it holds or WITHIN seconds pass."""
    deadline = time.monotonic() + WITHIN
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def expect(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc:
        return
    raise AssertionError("expected %s from %s%r" % (exc.__name__, fn.__name__, args))


def crud():
    zk = client()
    zk.ensure_path(ROOT + "/a/b")
    path = zk.create(ROOT + "/a/b/c", b"v0")
    assert path == ROOT + "/a/b/c", path
    data, stat = zk.get(path)
    assert (data, stat.version, stat.numChildren) == (b"v0", 0, 0), (data, stat)
    stat1 = zk.set(path, b"v1", version=0)
    assert stat1.version == 1 and stat1.mzxid > stat.mzxid, stat1
    expect(BadVersionError, zk.set, path, b"v2", version=0)
    expect(NodeExistsError, zk.create, path, b"")
    expect(NotEmptyError, zk.delete, ROOT + "/a/b")
    deep = zk.create(ROOT + "/x/y/z", b"deep", makepath=True)
    assert zk.get(deep)[0] == b"deep"
    # A sequence number is the parent's cversion: two children so far.
    assert zk.exists(ROOT).cversion == 2
    seqs = [zk.create(ROOT + "/seq-", b"", sequence=True) for _ in range(3)]
    assert seqs == [ROOT + "/seq-%010d" % i for i in (2, 3, 4)], seqs
    assert sorted(zk.get_children(ROOT)) == ["a", "seq-0000000002", "seq-0000000003", "seq-0000000004", "x"]
    children, stat = zk.get_children(ROOT + "/a/b", include_data=True)
    assert children == ["c"] and stat.numChildren == 1, (children, stat)
    zk.delete(ROOT + "/x", recursive=True)
    assert zk.exists(ROOT + "/x") is None
    expect(NoNodeError, zk.get, ROOT + "/x/y")
    # The async API: results arrive through kazoo's handler.
    assert zk.get_async(path).get(timeout=WITHIN)[0] == b"v1"
    # Ephemerals go with their session.
    other = client()
    other.create(ROOT + "/eph", b"", ephemeral=True)
    owner = zk.exists(ROOT + "/eph").ephemeralOwner
    assert owner == other.client_id[0], (owner, other.client_id)
    other.stop()
    other.close()
    wait_for(lambda: zk.exists(ROOT + "/eph") is None, "the ephemeral to go")
    zk.stop()


def watches():
    zk = client()
    writer = client()
    zk.ensure_path(ROOT)
    seen_data = []
    seen_children = []

    @zk.DataWatch(ROOT)
    def on_data(data, stat):
        seen_data.append(data)

    @zk.ChildrenWatch(ROOT)
    def on_children(children):
        seen_children.append(sorted(children))

    wait_for(lambda: seen_data == [b""] and seen_children == [[]], "the first calls")
    writer.set(ROOT, b"one")
    wait_for(lambda: seen_data[-1:] == [b"one"], "the data change")
    writer.create(ROOT + "/c1", b"")
    writer.create(ROOT + "/c2", b"")
    wait_for(lambda: seen_children[-1:] == [["c1", "c2"]], "the children change")
    writer.delete(ROOT + "/c1")
    wait_for(lambda: seen_children[-1:] == [["c2"]], "the child delete")
    # A one-shot watch fires once, with the event's type and path.
    events = []
    zk.exists(ROOT + "/later", watch=events.append)
    writer.create(ROOT + "/later", b"")
    wait_for(lambda: len(events) == 1, "the exists watch")
    assert (events[0].type, events[0].path) == ("CREATED", ROOT + "/later"), events
    writer.set(ROOT + "/later", b"again")
    time.sleep(0.3)
    assert len(events) == 1, events
    writer.stop()
    zk.stop()


def transactions():
    zk = client()
    zk.ensure_path(ROOT)
    t = zk.transaction()
    t.create(ROOT + "/t1", b"a")
    t.create(ROOT + "/t2", b"b")
    t.check(ROOT, 0)
    t.set_data(ROOT + "/t1", b"a2")
    results = t.commit()
    assert results[:2] == [ROOT + "/t1", ROOT + "/t2"], results
    assert results[2] is True and results[3].version == 1, results
    # A failing op rolls the whole transaction back; kazoo maps each result.
    t = zk.transaction()
    t.delete(ROOT + "/t2")
    t.create(ROOT + "/t1", b"dup")
    results = t.commit()
    assert isinstance(results[0], RolledBackError), results
    assert isinstance(results[1], NodeExistsError), results
    assert zk.exists(ROOT + "/t2") is not None
    zk.stop()


def recipes():
    a = client()
    b = client()
    a.ensure_path(ROOT)

    # Lock: b waits until a releases.
    lock_a = a.Lock(ROOT + "/lock", "a")
    lock_b = b.Lock(ROOT + "/lock", "b")
    assert lock_a.acquire(timeout=WITHIN)
    got = []
    th = threading.Thread(target=lambda: got.append(lock_b.acquire(timeout=WITHIN)))
    th.start()
    wait_for(lambda: len(lock_a.contenders()) == 2, "b to queue for the lock")
    assert lock_a.contenders() == ["a", "b"], lock_a.contenders()
    assert not got
    lock_a.release()
    th.join(WITHIN)
    assert got == [True], got
    lock_b.release()

    # Election: the first contender leads; the next leads when it leaves.
    leaders = []
    ev_a, ev_b = threading.Event(), threading.Event()

    def lead(name, stop):
        leaders.append(name)
        stop.wait(WITHIN)

    ea = a.Election(ROOT + "/election", "a")
    eb = b.Election(ROOT + "/election", "b")
    ta = threading.Thread(target=ea.run, args=(lead, "a", ev_a))
    ta.start()
    wait_for(lambda: leaders == ["a"], "a to lead")
    tb = threading.Thread(target=eb.run, args=(lead, "b", ev_b))
    tb.start()
    wait_for(lambda: len(ea.contenders()) == 2, "b to contend")
    ev_a.set()
    ta.join(WITHIN)
    wait_for(lambda: leaders == ["a", "b"], "b to lead")
    ev_b.set()
    tb.join(WITHIN)

    # Counter: versioned read-modify-write from two clients.
    ca = a.Counter(ROOT + "/counter")
    cb = b.Counter(ROOT + "/counter")
    for _ in range(10):
        ca += 1
        cb += 2
    assert ca.value == 30 and cb.value == 30, (ca.value, cb.value)

    # Queue and LockingQueue keep order across clients.
    qa = a.Queue(ROOT + "/queue")
    for i in range(5):
        qa.put(b"item-%d" % i)
    qb = b.Queue(ROOT + "/queue")
    assert [qb.get() for _ in range(5)] == [b"item-%d" % i for i in range(5)]
    lq = a.LockingQueue(ROOT + "/lqueue")
    lq.put(b"first")
    lq.put(b"second", priority=1)
    assert b.LockingQueue(ROOT + "/lqueue").get(timeout=WITHIN) == b"second"

    # Semaphore with one lease, and a Party listing its members.
    sa = a.Semaphore(ROOT + "/sem", max_leases=1)
    sb = b.Semaphore(ROOT + "/sem", max_leases=1)
    assert sa.acquire(timeout=WITHIN)
    assert not sb.acquire(blocking=False)
    sa.release()
    assert sb.acquire(timeout=WITHIN)
    sb.release()
    pa = a.Party(ROOT + "/party", "a")
    pb = b.Party(ROOT + "/party", "b")
    pa.join()
    pb.join()
    assert sorted(pa) == ["a", "b"], list(pa)
    pb.leave()
    wait_for(lambda: list(pa) == ["a"], "b to leave the party")

    # Barrier: b waits until a removes it.
    barrier = a.Barrier(ROOT + "/barrier")
    barrier.create()
    passed = []
    tw = threading.Thread(target=lambda: passed.append(b.Barrier(ROOT + "/barrier").wait(WITHIN)))
    tw.start()
    time.sleep(0.2)
    assert not passed
    barrier.remove()
    tw.join(WITHIN)
    assert passed == [True], passed
    b.stop()
    a.stop()


def acls():
    admin = client()
    admin.ensure_path(ROOT)
    admin.add_auth("digest", "alice:secret")
    acl = make_digest_acl("alice", "secret", all=True)
    admin.create(ROOT + "/private", b"mine", acl=[acl])
    stranger = client()
    expect(NoAuthError, stranger.get, ROOT + "/private")
    # getACL needs READ or ADMIN (ZooKeeper 3.5.5+, CVE-2019-0201) ...
    expect(NoAuthError, stranger.get_acls, ROOT + "/private")
    # ... and without ADMIN the digests are masked.
    admin.create(ROOT + "/shared", b"", acl=[acl, make_acl("world", "anyone", read=True)])
    got_acls, _ = stranger.get_acls(ROOT + "/shared")
    assert sorted(a.id.id for a in got_acls) == ["alice:x", "anyone"], got_acls
    alice = client(auth_data=[("digest", "alice:secret")])
    assert alice.get(ROOT + "/private")[0] == b"mine"
    got_acls, _ = alice.get_acls(ROOT + "/shared")
    assert acl.id.id in [a.id.id for a in got_acls], got_acls
    stranger.stop()
    alice.stop()
    admin.stop()


def server_info():
    zk = client()
    # `server_version` reads the `envi` four-letter word.
    version = zk.server_version()
    assert version[:2] == (3, 8), version
    assert zk.command(b"ruok") == "imok"
    zk.stop()


def failover():
    """Against an ensemble: the server the client is on is killed (by
    the test, on our request over stdout/stdin); kazoo moves the session to
    another server, which keeps its ephemeral node, its lock and its
    DataWatch. (A plain one-shot watch would not do: kazoo fires it with the
    connection's state change, on ZooKeeper as on zab.)"""
    states = []
    zk = client()
    zk.add_listener(states.append)
    zk.ensure_path(ROOT)
    zk.create(ROOT + "/mine", b"", ephemeral=True)
    lock = zk.Lock(ROOT + "/lock", "me")
    assert lock.acquire(timeout=WITHIN)
    seen = []
    zk.DataWatch(ROOT, lambda data, stat: seen.append(data))
    wait_for(lambda: seen == [b""], "the DataWatch's first call")
    session = zk.client_id[0]
    host, port = zk._connection._socket.getpeername()[:2]
    print("kill %s:%d" % (host, port), flush=True)
    assert sys.stdin.readline().strip() == "killed"
    wait_for(lambda: "SUSPENDED" in states, "the client to notice")
    wait_for(lambda: states[-1] == "CONNECTED", "the client to reconnect")
    assert "LOST" not in states, states
    assert zk.client_id[0] == session
    new_port = zk._connection._socket.getpeername()[1]
    assert new_port != port, (port, new_port)
    # The session's ephemeral node and lock survived the move.
    assert zk.exists(ROOT + "/mine").ephemeralOwner == session
    assert lock.contenders() == ["me"], lock.contenders()
    # Writes work, and the DataWatch set before the move sees them.
    zk.set(ROOT, b"after")
    wait_for(lambda: seen[-1:] == [b"after"], "the DataWatch after the move")
    lock.release()
    zk.stop()


SCENARIOS = {
    "failover": failover,
    "crud": crud,
    "watches": watches,
    "transactions": transactions,
    "recipes": recipes,
    "acls": acls,
    "server_info": server_info,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("ok", sys.argv[2])
