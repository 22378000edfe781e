//! Java's `HashSet<String>`, kept as `java.util.HashMap` keeps its keys —
//! table size, resizes, bucket lists — so that iterating it gives Java's
//! order. ZooKeeper exposes that order where it lists a session's
//! ephemerals: the paths of a closeSession txn, and so the order their
//! NodeDeleted and NodeChildrenChanged events fire in; `getEphemerals`;
//! `dump`. Checked against OpenJDK 17's `HashSet` (the unit tests hold
//! orders it printed).
//!
//! Not modelled: a bucket of 8 or more keys in a table of 64 or more
//! becomes a tree in Java, which orders later keys of that bucket
//! differently.

/// Java's `String.hashCode`, over UTF-16 code units.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    let step = |h: i32, u: i32| h.wrapping_mul(31).wrapping_add(u);
    if s.is_ascii() {
        // One UTF-16 unit per byte.
        return s.bytes().fold(0, |h, b| step(h, i32::from(b)));
    }
    s.encode_utf16().fold(0, |h, u| step(h, i32::from(u)))
}

/// `HashMap.hash`: the high half folded into the low one.
fn spread(s: &str) -> u32 {
    let h = java_string_hash(s) as u32;
    h ^ (h >> 16)
}

/// The table `new HashSet<String>(8)` starts with: ZooKeeper's
/// `DataNode.addChild` creates a node's children set so.
pub(crate) const CHILDREN_INITIAL_CAPACITY: usize = 8;

/// How large the table of a `HashSet<String>(initial)` is once the set has
/// held `peak` keys at once: Java grows it at 3/4 full and never shrinks it.
/// (A table below 64 also grows when one bucket gets a ninth key; the
/// callers that know the keys check for that.)
pub(crate) fn table_capacity(initial: usize, peak: usize) -> usize {
    let mut cap = initial.next_power_of_two();
    while peak > (cap as f32 * LOAD_FACTOR) as usize {
        cap *= 2;
    }
    cap
}

/// `keys` in the order Java iterates a `HashSet<String>(initial)`
/// holding them, given the most keys it ever held at once (`peak`) and
/// each key's insertion `rank`: bucket by bucket, each bucket's keys in
/// the order they were inserted (a resize splits a bucket in order, and a
/// removal keeps the others' order). That is the order of ZooKeeper's
/// `DataNode.getChildren`, and so of getChildren's reply, where a child's
/// rank is its czxid.
///
/// Not modelled, beside tree bins: a table below 64 that Java grew for a
/// ninth key in one bucket that has since gone (this replays the inserts
/// of the keys given alone), and the order of keys inserted by one txn
/// (equal ranks: they are put in name order).
pub(crate) fn in_java_order<T>(
    initial: usize,
    peak: usize,
    keys: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (&str, i64),
) -> Vec<T> {
    let mut hashed: Vec<(u32, i64, T)> = keys
        .into_iter()
        .map(|k| {
            let (name, rank) = key(&k);
            (spread(name), rank, k)
        })
        .collect();
    // Keys one txn inserted share a rank: then by name.
    let by_name = |a: &T, b: &T| key(a).0.cmp(key(b).0);
    let largest = peak.max(hashed.len());
    let mut cap = table_capacity(initial, largest);
    // While a table is below 64, Java also grows it when a key joins a
    // bucket of 8 (`treeifyBin`): replay the inserts to see whether, and
    // how often, that happened. Where the 3/4 rule alone makes it 64 or
    // more (past 24 keys), nothing else can have grown it further.
    if cap < MIN_TREEIFY_CAPACITY {
        hashed.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| by_name(&a.2, &b.2)));
        cap = initial.next_power_of_two();
        let mut counts = vec![0usize; cap];
        for i in 0..hashed.len() {
            let bucket = hashed[i].0 as usize & (cap - 1);
            let treeify = counts[bucket] >= TREEIFY_THRESHOLD && cap < MIN_TREEIFY_CAPACITY;
            counts[bucket] += 1;
            let mut grown = cap;
            if treeify {
                grown *= 2;
            }
            if i + 1 > (grown as f32 * LOAD_FACTOR) as usize {
                grown *= 2;
            }
            if grown != cap {
                cap = grown;
                counts = vec![0usize; cap];
                for (h, _, _) in &hashed[..=i] {
                    counts[*h as usize & (cap - 1)] += 1;
                }
            }
        }
        // A table grown for more keys than are left stays as large.
        cap = cap.max(table_capacity(initial, largest));
    }
    let mask = cap as u32 - 1;
    hashed.sort_unstable_by(|a, b| {
        (a.0 & mask, a.1)
            .cmp(&(b.0 & mask, b.1))
            .then_with(|| by_name(&a.2, &b.2))
    });
    hashed.into_iter().map(|(_, _, k)| k).collect()
}

const DEFAULT_CAPACITY: usize = 16;
const LOAD_FACTOR: f32 = 0.75;
/// A bucket reaching this many keys makes Java grow a small table.
const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_CAPACITY: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct JavaHashSet {
    /// The buckets, each in Java's list order; empty until the first
    /// insert, as Java's table is null.
    table: Vec<Vec<(u32, Box<str>)>>,
    len: usize,
    threshold: usize,
}

impl JavaHashSet {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The keys in Java's iteration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.table.iter().flatten().map(|(_, k)| &**k)
    }

    /// `HashMap.putVal`; false if the key was there.
    pub(crate) fn insert(&mut self, key: &str) -> bool {
        if self.table.is_empty() {
            self.resize();
        }
        let h = spread(key);
        let cap = self.table.len();
        let bucket = &mut self.table[h as usize & (cap - 1)];
        if bucket.iter().any(|(kh, k)| *kh == h && &**k == key) {
            return false;
        }
        let before = bucket.len();
        bucket.push((h, key.into()));
        // `treeifyBin` grows a table below 64 instead of making a tree.
        if before >= TREEIFY_THRESHOLD && cap < MIN_TREEIFY_CAPACITY {
            self.resize();
        }
        self.len += 1;
        if self.len > self.threshold {
            self.resize();
        }
        true
    }

    /// `HashMap.removeNode`; false if the key was not there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let h = spread(key);
        let cap = self.table.len();
        if cap == 0 {
            return false;
        }
        let bucket = &mut self.table[h as usize & (cap - 1)];
        match bucket.iter().position(|(kh, k)| *kh == h && &**k == key) {
            Some(i) => {
                bucket.remove(i);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// `HashSet.clone`: a new table sized for the keys alone
    /// (`HashMap.putMapEntries`), filled in this set's order.
    pub(crate) fn java_clone(&self) -> JavaHashSet {
        let mut copy = JavaHashSet::default();
        if self.len > 0 {
            let wanted = (self.len as f32 / LOAD_FACTOR + 1.0) as usize;
            copy.threshold = wanted.next_power_of_two();
            for key in self.iter() {
                copy.insert(key);
            }
        }
        copy
    }

    /// `HashMap.resize`: the first table, or twice the size, each bucket
    /// split in order between its old index and that plus the old size.
    fn resize(&mut self) {
        let old_cap = self.table.len();
        let (new_cap, new_threshold) = if old_cap > 0 {
            let doubled = (old_cap >= DEFAULT_CAPACITY).then(|| self.threshold * 2);
            (old_cap * 2, doubled)
        } else if self.threshold > 0 {
            (self.threshold, None)
        } else {
            (DEFAULT_CAPACITY, Some(12))
        };
        self.threshold = new_threshold.unwrap_or((new_cap as f32 * LOAD_FACTOR) as usize);
        let mut table = vec![Vec::new(); new_cap];
        for (j, bucket) in std::mem::take(&mut self.table).into_iter().enumerate() {
            for (h, k) in bucket {
                let to = if h as usize & old_cap == 0 {
                    j
                } else {
                    j + old_cap
                };
                table[to].push((h, k));
            }
        }
        self.table = table;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> JavaHashSet {
        let mut s = JavaHashSet::default();
        for k in keys {
            s.insert(k);
        }
        s
    }

    fn order(s: &JavaHashSet) -> Vec<&str> {
        s.iter().collect()
    }

    /// Orders OpenJDK 17 printed for the same operations.
    #[test]
    fn iterates_in_javas_order() {
        let paths = [
            "/zookeeper/quota/c",
            "/zookeeper/quota/a/zookeeper_limits",
            "/a/b",
            "/e",
            "/t/x",
            "/c/d/e",
            "/a",
            "/a/b0000000000",
            "/zookeeper/quota/a",
        ];
        let mut s = set(&paths);
        let java = [
            "/zookeeper/quota/c",
            "/zookeeper/quota/a/zookeeper_limits",
            "/c/d/e",
            "/a",
            "/a/b",
            "/zookeeper/quota/a",
            "/e",
            "/t/x",
            "/a/b0000000000",
        ];
        assert_eq!(order(&s), java);
        assert_eq!(order(&s.java_clone()), java);
        s.remove("/a/b");
        s.remove("/e");
        let mut c = s.java_clone();
        c.insert("/new/one");
        c.insert("/x");
        assert_eq!(
            order(&c),
            [
                "/zookeeper/quota/c",
                "/zookeeper/quota/a/zookeeper_limits",
                "/c/d/e",
                "/a",
                "/zookeeper/quota/a",
                "/t/x",
                "/x",
                "/new/one",
                "/a/b0000000000",
            ]
        );
    }

    /// `keys` (ranked in the order given) in a children set that held
    /// `peak` at most.
    fn children<'a>(peak: usize, keys: &[&'a str]) -> Vec<&'a str> {
        let ranked = keys.iter().enumerate().map(|(i, k)| (*k, i as i64));
        in_java_order(CHILDREN_INITIAL_CAPACITY, peak, ranked, |(k, r)| (*k, *r))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Orders OpenJDK 17 printed for a `new HashSet<String>(8)` (a
    /// ZooKeeper node's children) after the same adds and removes.
    #[test]
    fn orders_children_as_javas_set_of_eight() {
        let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let twenty: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            children(20, &twenty).join(","),
            "c11,c10,c13,c12,c15,c14,c17,c16,c19,c18,c0,c1,c2,c3,c4,c5,c6,c7,c8,c9"
        );
        // Every third removed, then `x` and `c3` added again.
        let mut thinned: Vec<&str> = (0..20).filter(|i| i % 3 != 0).map(|i| twenty[i]).collect();
        thinned.extend(["x", "c3"]);
        assert_eq!(
            children(20, &thinned).join(","),
            "c11,c10,c13,c14,c17,c16,c19,c1,c2,c3,c4,c5,c7,c8,x"
        );
        // The table stays as large with three left (in a table of 8 `c7`
        // would come before `c1`).
        assert_eq!(children(20, &["c1", "c7", "c11"]), ["c11", "c1", "c7"]);
        assert_eq!(children(3, &["c1", "c7", "c11"]), ["c11", "c7", "c1"]);
        assert_eq!(
            children(5, &["e", "d", "c", "b", "a"]).join(","),
            "a,b,c,d,e"
        );
        // Nine keys in one bucket of 8 and of 16: Java grew the table for
        // the ninth rather than make the bucket a tree.
        let colliding = [
            "k0", "k70", "k81", "k92", "k120", "k131", "k142", "k153", "k164", "zz",
        ];
        assert_eq!(
            children(10, &colliding).join(","),
            "zz,k0,k70,k81,k92,k120,k131,k142,k153,k164"
        );
        // Past 24 keys (a table of 64 or more), with a non-ASCII name.
        let mut locks: Vec<String> = (0..40)
            .filter(|i| i % 4 != 0)
            .map(|i| format!("lock-{i:010}"))
            .collect();
        locks.extend(["ünï".to_string(), "lock-0000000000".to_string()]);
        let locks: Vec<&str> = locks.iter().map(String::as_str).collect();
        assert_eq!(
            children(40, &locks).join(","),
            "lock-0000000030,lock-0000000009,lock-0000000007,lock-0000000029,\
             lock-0000000006,lock-0000000001,lock-0000000023,lock-0000000022,\
             lock-0000000000,lock-0000000021,lock-0000000005,lock-0000000027,\
             lock-0000000026,lock-0000000003,lock-0000000025,lock-0000000002,\
             lock-0000000019,lock-0000000018,lock-0000000017,lock-0000000039,\
             lock-0000000034,lock-0000000011,lock-0000000033,lock-0000000010,\
             lock-0000000031,lock-0000000038,lock-0000000015,lock-0000000037,\
             lock-0000000014,ünï,lock-0000000013,lock-0000000035"
        );
        // Nine added and all removed: the table of 16 stays.
        assert_eq!(children(9, &["q", "r", "s"]), ["q", "r", "s"]);
        assert_eq!(table_capacity(CHILDREN_INITIAL_CAPACITY, 9), 16);
        assert_eq!(table_capacity(CHILDREN_INITIAL_CAPACITY, 6), 8);
    }

    #[test]
    fn grows_and_clones_small_as_java_does() {
        let mut big = JavaHashSet::default();
        for i in 0..40 {
            big.insert(&format!("/n{i}"));
        }
        for i in 0..30 {
            big.remove(&format!("/n{}", i * 7 % 40));
        }
        assert_eq!(
            order(&big),
            ["/n19", "/n17", "/n38", "/n12", "/n33", "/n10", "/n31", "/n26", "/n5", "/n24"]
        );
        assert_eq!(
            order(&big.java_clone()),
            ["/n19", "/n17", "/n38", "/n26", "/n5", "/n24", "/n12", "/n33", "/n10", "/n31"]
        );
        let two = set(&["/zookeeper/quota/a/zookeeper_limits", "/zookeeper/quota/c"]);
        assert_eq!(
            order(&two.java_clone()),
            ["/zookeeper/quota/a/zookeeper_limits", "/zookeeper/quota/c"]
        );
        let two = set(&["/zookeeper/quota/a/zookeeper_stats", "/zookeeper/quota/c"]);
        assert_eq!(
            order(&two.java_clone()),
            ["/zookeeper/quota/c", "/zookeeper/quota/a/zookeeper_stats"]
        );
        let mut grown = JavaHashSet::default().java_clone();
        for i in 0..5 {
            grown.insert(&format!("/p{i}"));
        }
        assert_eq!(order(&grown), ["/p1", "/p2", "/p3", "/p4", "/p0"]);
        assert!(!grown.insert("/p3") && grown.remove("/p3") && !grown.remove("/p3"));
        assert_eq!(grown.len(), 4);
    }
}
