//! A peer's address as its `server.N` line names it, resolved at every
//! dial.
//!
//! ZooKeeper resolves a peer's host name again before each connection
//! attempt (`QuorumCnxManager.connectOne`, `recreateSocketAddresses`;
//! `Learner.findLeader`), and a name that does not resolve only fails that
//! attempt. Where servers come and go under names (a Kubernetes
//! StatefulSet, whose pods' names resolve only once each pod exists, and
//! point elsewhere after a pod moves), resolving once at start-up would
//! stop a server for a peer not yet there, or keep it dialling an old
//! address for ever.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A host (a name or an IP literal) and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub host: String,
    pub port: u16,
}

impl PeerAddr {
    pub fn new(host: impl Into<String>, port: u16) -> PeerAddr {
        PeerAddr {
            host: host.into(),
            port,
        }
    }

    /// The address the host resolves to now: its first, as ZooKeeper's
    /// `InetSocketAddress` takes.
    pub async fn resolve(&self) -> io::Result<SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{self} resolves to nothing"),
                )
            })
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        PeerAddr::new(addr.ip().to_string(), addr.port())
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_resolve_to_themselves_and_unknown_names_fail() {
        let v4: SocketAddr = "127.0.0.1:2888".parse().unwrap();
        let v6: SocketAddr = "[::1]:3888".parse().unwrap();
        for addr in [v4, v6] {
            let peer = PeerAddr::from(addr);
            assert_eq!(peer.to_string(), addr.to_string());
            assert_eq!(peer.resolve().await.unwrap(), addr);
        }
        // `.invalid` never resolves (RFC 2606).
        assert!(PeerAddr::new("zk-1.invalid", 2888).resolve().await.is_err());
    }
}
