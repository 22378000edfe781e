//! Listening sockets bound as ZooKeeper's JVM binds them.
//!
//! ZooKeeper binds a port with no address (`clientPort` alone,
//! `quorumListenOnAllIPs`, the admin server's default) to the wildcard,
//! and the JVM binds an IPv4 wildcard as the IPv6 one with `IPV6_V6ONLY`
//! off (`NET_InetAddressToSockaddr`: "we would always prefer IPv6 wildcard
//! address"): one socket that takes IPv4 and IPv6 clients alike. zab does
//! the same ([`bind`]), so an IPv6-only or dual-stack network (a
//! Kubernetes cluster, say) reaches it as it reaches ZooKeeper; on a host
//! without IPv6 it falls back to `0.0.0.0`.
//!
//! An IPv4 peer of such a socket shows as `::ffff:a.b.c.d`; Java hands it
//! over as the `Inet4Address` a.b.c.d, and so does [`canonical`], so that
//! `ip:` ACLs, `maxClientCnxns` and `cons` see the address they always saw.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// The backlog tokio's own `TcpListener::bind` asks for, and zab's
/// default (ZooKeeper's `clientPortListenBacklog=-1` leaves Java's 50).
pub const BACKLOG: i32 = 1024;

/// Binds `addr`; an unspecified address binds every interface, IPv4 and
/// IPv6 (see the module's documentation). Within a tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_with_backlog(addr, BACKLOG)
}

/// [`bind`] with a listen queue of `backlog` connections
/// (`clientPortListenBacklog`).
pub fn bind_with_backlog(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    if !addr.ip().is_unspecified() {
        return listener(addr, None, backlog);
    }
    let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), addr.port());
    match listener(any6, Some(false), backlog) {
        Ok(listener) => Ok(listener),
        Err(e) if no_ipv6(&e) => {
            tracing::debug!(error = %e, "no IPv6 here: binding the IPv4 wildcard");
            let any4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            listener(any4, None, backlog)
        }
        Err(e) => Err(e),
    }
}

/// A peer's address as Java reports it: an IPv4-mapped IPv6 address is
/// the IPv4 address it maps.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// A listening socket on `addr`; `only_v6` set for the IPv6 wildcard.
fn listener(addr: SocketAddr, only_v6: Option<bool>, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(only) = only_v6 {
        // Not left to `net.ipv6.bindv6only`: the JVM turns it off too.
        socket.set_only_v6(only)?;
    }
    // As tokio's `TcpListener::bind` does: a restarted server rebinds its
    // port while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Errors that mean this host has no IPv6 to bind, not that the port is
/// taken.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The wildcard socket still takes IPv4 clients, and hands their
    /// address over as IPv4. (Tests reach it over 127.0.0.1 only.)
    #[tokio::test]
    async fn the_wildcard_takes_ipv4_clients_and_names_them_as_ipv4() {
        let listener =
            bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)).expect("bind the wildcard");
        let local = listener.local_addr().expect("local address");
        if std::net::TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).is_ok() {
            // This host has IPv6: the one socket is IPv6's wildcard.
            assert_eq!(local.ip(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        let port = local.port();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .expect("connect over 127.0.0.1");
            s.write_all(b"ruok").await.expect("write");
            let local = s.local_addr().expect("client address");
            (s, local)
        });
        let (mut sock, remote) = listener.accept().await.expect("accept");
        let (_client, client_addr) = client.await.expect("client task");
        let mut word = [0; 4];
        sock.read_exact(&mut word).await.expect("read");
        assert_eq!(&word, b"ruok");
        assert_eq!(canonical(remote), client_addr);
        assert_eq!(canonical(remote).ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn canonical_unmaps_ipv4_mapped_addresses_only() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:2181".parse().unwrap();
        assert_eq!(canonical(mapped), "10.1.2.3:2181".parse().unwrap());
        for kept in ["[::1]:2181", "[fe80::1]:2181", "127.0.0.1:2181"] {
            let a: SocketAddr = kept.parse().unwrap();
            assert_eq!(canonical(a), a);
        }
    }

    /// The listen queue is the one asked for, as `ss` reports a
    /// listener's (its Send-Q).
    #[tokio::test]
    async fn the_backlog_is_the_one_asked_for() {
        let listener = bind_with_backlog("127.0.0.1:0".parse().unwrap(), 7).expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("ss (iproute2) runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let send_q: Vec<&str> = text.split_whitespace().skip(2).take(1).collect();
        assert_eq!(send_q, ["7"], "{text}");
    }

    #[tokio::test]
    async fn a_named_address_is_bound_as_it_is() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        assert_eq!(
            listener.local_addr().expect("local address").ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
    }
}
