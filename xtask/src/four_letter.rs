//! The one four-letter word xtask asks its servers: `srvr`, whose `Mode:`
//! line says whether a server serves and in which role. ZooKeeper 3.5+
//! allows `srvr` by default (`4lw.commands.whitelist`), and so does zab, so
//! the same question works on both systems.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// The whole answer to `srvr` from the server on 127.0.0.1:`port`.
pub(crate) fn srvr(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"srvr")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The value of a `Key: value` line of an answer, e.g. `field(a, "Mode")`.
pub(crate) fn field<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The server's mode (`leader`, `follower`, `observer`, `standalone`), if
/// it answers `srvr` with one. A server still electing is not serving: it
/// answers "This ZooKeeper instance is not currently serving requests".
pub(crate) fn mode(port: u16) -> Option<String> {
    let answer = srvr(port).ok()?;
    field(&answer, "Mode").map(str::to_string)
}

/// The leader's id among `(id, mode)` pairs, once every server names a
/// serving mode and one of them leads (or serves alone).
pub(crate) fn serving(modes: &[(usize, Option<String>)]) -> Option<usize> {
    let all_serve = modes.iter().all(|(_, m)| {
        matches!(
            m.as_deref(),
            Some("leader" | "follower" | "observer" | "standalone")
        )
    });
    let leader = modes
        .iter()
        .find(|(_, m)| matches!(m.as_deref(), Some("leader" | "standalone")))
        .map(|(id, _)| *id);
    leader.filter(|_| all_serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_their_key() {
        let answer = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\n\
                      Zxid: 0x100000002\nMode: follower\nNode count: 5\n";
        assert_eq!(field(answer, "Mode"), Some("follower"));
        assert_eq!(field(answer, "Zxid"), Some("0x100000002"));
        assert_eq!(field(answer, "Node count"), Some("5"));
        // A key is a whole key: "Mode" does not match "Modes:".
        assert_eq!(field("Modes: x\n", "Mode"), None);
        assert_eq!(
            field(
                "This ZooKeeper instance is not currently serving requests\n",
                "Mode"
            ),
            None
        );
    }

    #[test]
    fn an_ensemble_serves_once_every_node_names_its_mode_and_one_leads() {
        let modes = |m: &[Option<&str>]| -> Vec<(usize, Option<String>)> {
            m.iter()
                .enumerate()
                .map(|(i, m)| (i + 1, m.map(str::to_string)))
                .collect()
        };
        // Still electing: node 2 answers "not currently serving requests".
        assert_eq!(
            serving(&modes(&[Some("follower"), None, Some("leader")])),
            None
        );
        // Followers that have not heard of a leader yet do not make one.
        assert_eq!(serving(&modes(&[Some("follower"), Some("follower")])), None);
        assert_eq!(
            serving(&modes(&[
                Some("follower"),
                Some("follower"),
                Some("leader")
            ])),
            Some(3)
        );
        assert_eq!(
            serving(&modes(&[
                Some("leader"),
                Some("follower"),
                Some("follower"),
                Some("observer")
            ])),
            Some(1)
        );
        assert_eq!(serving(&modes(&[Some("standalone")])), Some(1));
        assert_eq!(serving(&modes(&[Some("leader"), Some("read-only")])), None);
    }
}
