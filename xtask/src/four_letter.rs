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
}
