// Apache Curator (Debian's libcurator-*-java 5.4) against a
// ZooKeeper-compatible server.
//
// Run by zab-server/tests/compat_curator.rs with Java's source launcher:
// `java -cp <jars> CuratorScenarios.java HOST:PORT SCENARIO`. Prints
// "ok SCENARIO" and exits 0 when every check holds; an exception or a
// failed check exits non-zero. Each scenario works under its own root.
//
// The client, its recipes and their use of the protocol are Curator's,
// which is the point: Curator 5 watches with addWatch (persistent,
// recursive) in CuratorCache, creates with create2, and runs its
// transactions as multi.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.data.Stat;

public class CuratorScenarios {
    static String hosts;
    static String root;
    static final long WITHIN_MS = 20_000;

    static CuratorFramework client() throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(hosts)
            .sessionTimeoutMs(10_000)
            .connectionTimeoutMs(10_000)
            .retryPolicy(new RetryNTimes(3, 100))
            .build();
        c.start();
        check(c.blockUntilConnected(20, TimeUnit.SECONDS), "connected");
        return c;
    }

    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError("check failed: " + what);
        }
    }

    static void waitFor(BooleanSupplier cond, String what) throws InterruptedException {
        waitFor(cond, () -> what);
    }

    /** As above, `what` said as it is when the wait times out. */
    static void waitFor(BooleanSupplier cond, Supplier<String> what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WITHIN_MS;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out waiting for " + what.get());
            }
            Thread.sleep(20);
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void crud() throws Exception {
        try (CuratorFramework c = client()) {
            String p = c.create().creatingParentsIfNeeded().forPath(root + "/a/b", b("v0"));
            check(p.equals(root + "/a/b"), p);
            Stat created = new Stat();
            c.create().storingStatIn(created).forPath(root + "/a/c", b("x"));
            check(created.getVersion() == 0 && created.getCzxid() == created.getMzxid(), "create2 stat");
            Stat s = c.setData().withVersion(0).forPath(root + "/a/b", b("v1"));
            check(s.getVersion() == 1, "setData version");
            try {
                c.setData().withVersion(0).forPath(root + "/a/b", b("v2"));
                check(false, "stale version accepted");
            } catch (KeeperException.BadVersionException expected) {
            }
            check(new String(c.getData().forPath(root + "/a/b"), StandardCharsets.UTF_8).equals("v1"), "getData");
            List<String> kids = new ArrayList<>(c.getChildren().forPath(root + "/a"));
            Collections.sort(kids);
            check(kids.equals(List.of("b", "c")), "children " + kids);
            // Protected ephemeral-sequential: Curator finds its node by the
            // GUID in the name after the create.
            String prot = c.create().withProtection().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
                .forPath(root + "/a/p-", b(""));
            check(prot.startsWith(root + "/a/_c_") && prot.matches(".*p-\\d{10}$"), prot);
            check(c.checkExists().forPath(prot).getEphemeralOwner()
                == c.getZookeeperClient().getZooKeeper().getSessionId(), "ephemeral owner");
            c.delete().deletingChildrenIfNeeded().forPath(root + "/a");
            check(c.checkExists().forPath(root + "/a") == null, "deleted");
            // A container: clients see no owner (`DataNode.copyStat` hides
            // the marker ZooKeeper keeps for it), and it takes children.
            c.create().withMode(CreateMode.CONTAINER).forPath(root + "/box");
            c.create().forPath(root + "/box/item", b(""));
            long owner = c.checkExists().forPath(root + "/box").getEphemeralOwner();
            check(owner == 0, "container owner " + owner);
        }
    }

    static void transactions() throws Exception {
        try (CuratorFramework c = client()) {
            c.create().creatingParentsIfNeeded().forPath(root + "/base", b(""));
            CuratorOp create = c.transactionOp().create().forPath(root + "/t1", b("a"));
            CuratorOp check = c.transactionOp().check().withVersion(0).forPath(root + "/base");
            CuratorOp set = c.transactionOp().setData().forPath(root + "/t1", b("b"));
            List<CuratorTransactionResult> results = c.transaction().forOperations(create, check, set);
            check(results.size() == 3, "three results");
            check(results.get(0).getForPath().equals(root + "/t1"), "create result");
            check(results.get(2).getResultStat().getVersion() == 1, "set result");
            CuratorOp dup = c.transactionOp().create().forPath(root + "/t1", b("dup"));
            CuratorOp del = c.transactionOp().delete().forPath(root + "/base");
            try {
                c.transaction().forOperations(del, dup);
                check(false, "a failing transaction committed");
            } catch (KeeperException.NodeExistsException expected) {
            }
            check(c.checkExists().forPath(root + "/base") != null, "rolled back");
        }
    }

    static void watches() throws Exception {
        try (CuratorFramework c = client(); CuratorFramework w = client()) {
            c.create().creatingParentsIfNeeded().forPath(root + "/n", b(""));
            // CuratorCache: a persistent recursive watch (addWatch) and
            // the events it maps from it.
            List<String> events = new CopyOnWriteArrayList<>();
            CountDownLatch primed = new CountDownLatch(1);
            try (CuratorCache cache = CuratorCache.build(c, root)) {
                cache.listenable().addListener(CuratorCacheListener.builder()
                    .forCreates(n -> events.add("create " + n.getPath()))
                    .forChanges((o, n) -> events.add("change " + n.getPath() + " " + new String(n.getData(), StandardCharsets.UTF_8)))
                    .forDeletes(n -> events.add("delete " + n.getPath()))
                    .forInitialized(primed::countDown)
                    .build());
                cache.start();
                check(primed.await(20, TimeUnit.SECONDS), "cache initialized");
                events.clear();
                w.create().forPath(root + "/n/kid", b("k"));
                // The cache reads a created node before it reports it: a
                // node deleted before that read is never reported at all,
                // created or deleted (Curator's behaviour, not the
                // server's), so the delete waits for the create's report.
                waitFor(() -> events.contains("create " + root + "/n/kid"), () -> "create event " + events);
                w.setData().forPath(root + "/n", b("changed"));
                w.delete().forPath(root + "/n/kid");
                waitFor(() -> events.contains("change " + root + "/n changed")
                    && events.contains("delete " + root + "/n/kid"), () -> "cache events " + events);
                check(cache.get(root + "/n").isPresent(), "cached node");
            }
            // A plain persistent watch through the framework.
            List<String> seen = new CopyOnWriteArrayList<>();
            Watcher watcher = (WatchedEvent e) -> seen.add(e.getType() + " " + e.getPath());
            c.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(watcher).forPath(root + "/n");
            w.setData().forPath(root + "/n", b("1"));
            w.setData().forPath(root + "/n", b("2"));
            waitFor(() -> seen.size() >= 2, () -> "two persistent watch events " + seen);
            check(seen.get(0).equals("NodeDataChanged " + root + "/n"), seen.toString());
        }
    }

    static void recipes() throws Exception {
        try (CuratorFramework a = client(); CuratorFramework b = client()) {
            // InterProcessMutex: b cannot take what a holds.
            InterProcessMutex ma = new InterProcessMutex(a, root + "/lock");
            InterProcessMutex mb = new InterProcessMutex(b, root + "/lock");
            check(ma.acquire(20, TimeUnit.SECONDS), "a locks");
            check(!mb.acquire(200, TimeUnit.MILLISECONDS), "b waits");
            ma.release();
            check(mb.acquire(20, TimeUnit.SECONDS), "b locks after a");
            mb.release();

            // LeaderLatch: one leader; when it leaves, the other leads.
            LeaderLatch la = new LeaderLatch(a, root + "/latch", "a");
            LeaderLatch lb = new LeaderLatch(b, root + "/latch", "b");
            la.start();
            check(la.await(20, TimeUnit.SECONDS), "a leads");
            lb.start();
            waitFor(() -> {
                try {
                    return lb.getParticipants().size() == 2;
                } catch (Exception e) {
                    return false;
                }
            }, "b to join the latch");
            check(!lb.hasLeadership() && lb.getLeader().getId().equals("a"), "a is the leader");
            la.close();
            check(lb.await(20, TimeUnit.SECONDS), "b leads after a leaves");
            lb.close();

            // DistributedAtomicLong and SharedCount: versioned updates.
            DistributedAtomicLong xa = new DistributedAtomicLong(a, root + "/long", new RetryNTimes(10, 10));
            DistributedAtomicLong xb = new DistributedAtomicLong(b, root + "/long", new RetryNTimes(10, 10));
            for (int i = 0; i < 5; i++) {
                check(xa.increment().succeeded(), "increment a");
                check(xb.add(2L).succeeded(), "add b");
            }
            AtomicValue<Long> v = xa.get();
            check(v.succeeded() && v.postValue() == 15L, "long " + v.postValue());
            try (SharedCount ca = new SharedCount(a, root + "/count", 0);
                 SharedCount cb = new SharedCount(b, root + "/count", 0)) {
                ca.start();
                cb.start();
                VersionedValue<Integer> before = ca.getVersionedValue();
                check(ca.trySetCount(before, 7), "set count");
                waitFor(() -> cb.getCount() == 7, "b to see the count");
                check(!ca.trySetCount(before, 9), "stale count refused");
            }

            // DistributedBarrier: b waits until a removes it.
            DistributedBarrier ba = new DistributedBarrier(a, root + "/barrier");
            ba.setBarrier();
            DistributedBarrier bb = new DistributedBarrier(b, root + "/barrier");
            check(!bb.waitOnBarrier(200, TimeUnit.MILLISECONDS), "barrier holds");
            ba.removeBarrier();
            check(bb.waitOnBarrier(20, TimeUnit.SECONDS), "barrier lifted");
        }
    }

    public static void main(String[] args) throws Exception {
        hosts = args[0];
        String scenario = args[1];
        root = "/curator-" + scenario;
        switch (scenario) {
            case "crud": crud(); break;
            case "transactions": transactions(); break;
            case "watches": watches(); break;
            case "recipes": recipes(); break;
            default: throw new IllegalArgumentException(scenario);
        }
        System.out.println("ok " + scenario);
        System.exit(0);
    }
}
