//! Free ports for test servers, outside the kernel's ephemeral range.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};

/// `n` distinct ports on 127.0.0.1 that are free now and outside the
/// kernel's ephemeral range. All listeners are held until every port is
/// chosen, so no two coincide.
///
/// Why not bind port 0: that hands out ports from the ephemeral range, and
/// a quorum port is only bound while its server leads. In between, the
/// kernel may give the same number to any outgoing connection as its
/// source port (the election links between the servers are long-lived),
/// and the server elected leader then fails to listen with "Address
/// already in use" for as long as that connection lives.
pub fn free_ports(n: usize) -> Vec<u16> {
    free_ports_on(&[Ipv4Addr::LOCALHOST], n)
}

/// As [`free_ports`], each port free on every one of `hosts` at once: a
/// port that every node of a `ClusterSpec::with_distinct_hosts` ensemble
/// binds on its own address (pass `ClusterSpec::hosts`).
///
/// One process never gets the same port twice (the record of ports handed
/// out is cleared once it holds half the range): a test picks a port for
/// its `extra_cfg` (say `observerMasterPort`) before `TestCluster::start`
/// picks the nodes' ports, and nobody listens on it in between.
pub fn free_ports_on(hosts: &[Ipv4Addr], n: usize) -> Vec<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    assert!(!hosts.is_empty(), "free ports on no address");
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low: u16 = 10_000;
    let high = ephemeral_low.max(low + 1_000);
    let span = u64::from(high - low);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    if handed_out.len() as u64 + n as u64 > span / 2 {
        handed_out.clear();
    }
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    // One group of listeners (one per host) per chosen port.
    let mut listeners: Vec<Vec<TcpListener>> = Vec::with_capacity(n);
    let mut attempts = 0;
    while listeners.len() < n {
        attempts += 1;
        assert!(attempts < 100_000, "no free ports below {high}");
        // xorshift64: a different sequence per process and run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = low + (seed % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        let bound: Vec<TcpListener> = hosts
            .iter()
            .map_while(|&h| TcpListener::bind((h, port)).ok())
            .collect();
        if bound.len() == hosts.len() {
            listeners.push(bound);
        }
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|group| group[0].local_addr().expect("local addr").port())
        .collect();
    handed_out.extend(&ports);
    ports
}
