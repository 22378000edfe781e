//! The floor under a lone replicated write on this machine: what any
//! ensemble of three servers on one disk and loopback must wait for when
//! it syncs before it acknowledges, with no server software in the way.
//! Issue 4's set 1×1 target (p50 ≤ ½ of ZooKeeper's) is out of reach
//! wherever this floor's p50 is above that half.
//!
//! The program runs as four processes: the client (the one you start) and
//! three servers it starts from its own binary. Each server is one thread
//! in blocking socket calls with `TCP_NODELAY`, writing fixed-size frames,
//! and has its own log: a zero-filled file overwritten in place and synced
//! with `fdatasync`, the cheapest layout `fsync_contention` measured. No
//! queues, no thread hand-offs, no codec. A round is one request of B bytes
//! and its 8-byte reply, one at a time. The entry server decides the path:
//!
//! - `standalone`: a single server writes and syncs the record and replies;
//! - `leader`: the client talks to the leader. The leader sends the
//!   proposal to both followers, then writes and syncs its own copy, and
//!   replies once either follower has acknowledged: its log and one
//!   follower's are a quorum of three;
//! - `follower`: the client talks to follower 1, which forwards the request
//!   to the leader. The leader proposes to both followers, syncs, and tells
//!   follower 1 that it is durable. Follower 1 replies once its own sync is
//!   done and that word has come: zab's early commit, a hop shorter than
//!   ZooKeeper's COMMIT after the quorum's ACKs. The followers send no ACK
//!   here (a real one must, off this path);
//! - `late-leader`: the same path, but the leader keeps its own sync off
//!   it, so that only the followers' two syncs share the disk while the
//!   write waits. Both followers sync and ACK; on the second ACK (the
//!   followers are a quorum without the leader) the leader sends follower 1
//!   a COMMIT and only then syncs its own copy. Follower 1 replies on the
//!   COMMIT, its own sync being done before its ACK.
//!
//! The floor holds for servers that sleep in the kernel while they wait,
//! as ZooKeeper's and zab's do: on this VM an idle vCPU halts at once, and
//! each hop pays its wake-up. Servers that spin instead pay less per hop
//! and burn a CPU each (BENCHMARKS.md, "servers that spin before they
//! sleep"). With `--spin` the servers never sleep in a socket call:
//! their sockets are non-blocking, and each waits by calling
//! `sched_yield` until its data comes, as a busy-polling server would.
//! That is the floor for any server here; the client still sleeps, as
//! the load generator's do.
//!
//! One shortcut could make a real server slower than this floor, never
//! faster. In `leader` and `follower` the leader syncs on its only thread
//! right after it sends the proposals, so it cannot commit on both
//! followers' ACKs while its own sync is still running. A follower's ACK
//! needs a hop, its sync and a hop back, all begun after the leader's sync
//! began, so that path is seldom the shorter one; `late-leader` measures
//! it with the leader's sync out of the way.
//!
//! ```sh
//! cargo run --release -p zab-benches --example quorum_floor -- \
//!     [--dir DIR] [--rounds N] [--warmup N] [--record-bytes B] \
//!     [--entry all|standalone|leader|follower|late-leader] [--spin]
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Each server's log file, zero-filled before the first round; records
/// wrap around inside it.
const LOG_BYTES: u64 = 16 << 20;

/// The first byte on every connection to the leader says what it is.
const HELLO_CLIENT: u8 = b'c';
const HELLO_FORWARD: u8 = b'f';

/// Frames the leader sends a follower: a tag, the zxid, and for a
/// proposal the record.
const TAG_PROPOSAL: u8 = b'p';
const TAG_DURABLE: u8 = b'd';
const TAG_COMMIT: u8 = b'k';

#[derive(Clone, Copy, PartialEq, Debug)]
enum Entry {
    Standalone,
    Leader,
    Follower,
    LateLeader,
}

impl Entry {
    fn parse(s: &str) -> Result<Vec<Entry>, String> {
        Ok(match s {
            "all" => vec![
                Entry::Standalone,
                Entry::Leader,
                Entry::Follower,
                Entry::LateLeader,
            ],
            "standalone" => vec![Entry::Standalone],
            "leader" => vec![Entry::Leader],
            "follower" => vec![Entry::Follower],
            "late-leader" => vec![Entry::LateLeader],
            other => return Err(format!("--entry: unknown `{other}`")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Entry::Standalone => "standalone",
            Entry::Leader => "leader",
            Entry::Follower => "follower",
            Entry::LateLeader => "late-leader",
        }
    }

    /// Whether the client talks to follower 1.
    fn on_follower(self) -> bool {
        matches!(self, Entry::Follower | Entry::LateLeader)
    }
}

struct Args {
    dir: PathBuf,
    rounds: usize,
    warmup: usize,
    record: usize,
    entries: Vec<Entry>,
    spin: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir(),
        rounds: 5000,
        warmup: 500,
        record: 200,
        entries: Entry::parse("all")?,
        spin: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value()?),
            "--rounds" => args.rounds = number(value()?)?,
            "--warmup" => args.warmup = number(value()?)?,
            "--record-bytes" => args.record = number(value()?)?,
            "--entry" => args.entries = Entry::parse(&value()?)?,
            "--spin" => args.spin = true,
            "-h" | "--help" => {
                return Err(
                    "usage: quorum_floor [--dir DIR] [--rounds N (default 5000)] \
                     [--warmup N (default 500)] [--record-bytes B (default 200)] \
                     [--entry all|standalone|leader|follower|late-leader] [--spin]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.record == 0 || args.record as u64 > LOG_BYTES || args.rounds == 0 {
        return Err("--record-bytes and --rounds must be at least 1".into());
    }
    Ok(args)
}

/// A server's log: records overwrite a zero-filled file in place, each
/// synced before the server goes on.
struct Log {
    file: File,
    at: u64,
}

impl Log {
    fn create(path: &Path) -> std::io::Result<Log> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..LOG_BYTES / zeros.len() as u64 {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        Ok(Log { file, at: 0 })
    }

    fn append(&mut self, record: &[u8]) -> std::io::Result<()> {
        if self.at + record.len() as u64 > LOG_BYTES {
            self.at = 0;
        }
        self.file.write_all_at(record, self.at)?;
        self.at += record.len() as u64;
        self.file.sync_data()
    }
}

/// A server's end of a connection. Spinning, it waits for its socket in
/// `sched_yield` instead of in the kernel's socket wait.
struct Conn {
    s: TcpStream,
    spin: bool,
}

impl Conn {
    fn new(s: TcpStream, spin: bool) -> std::io::Result<Conn> {
        s.set_nonblocking(spin)?;
        Ok(Conn { s, spin })
    }

    fn retry<T>(
        &mut self,
        mut op: impl FnMut(&mut TcpStream) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        loop {
            match op(&mut self.s) {
                Err(e) if self.spin && e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::yield_now()
                }
                r => return r,
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.retry(|s| s.read(buf))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.retry(|s| s.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    let (s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Tells the client which port this server listens on.
fn announce(listener: &TcpListener) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "port {}", listener.local_addr()?.port())?;
    out.flush()
}

/// Whether an error only says that the other side has gone: a server
/// that closes with ACKs still unread resets the connection.
fn gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe)
}

/// `Ok(false)` once the other side has gone.
fn read_or_end(s: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match s.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn read_u64(s: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut b = [0u8; 8];
    Ok(read_or_end(s, &mut b)?.then(|| u64::from_be_bytes(b)))
}

/// The leader: `followers` links, then one connection that brings the
/// requests (the client's, or follower 1's forwards). Ends when that one
/// does.
fn leader(
    dir: &Path,
    record: usize,
    followers: usize,
    entry: Entry,
    spin: bool,
) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(&listener)?;
    let mut links: Vec<Option<TcpStream>> = (0..followers).map(|_| None).collect();
    let mut requests = None;
    while requests.is_none() || links.iter().any(Option::is_none) {
        let mut s = accept(&listener)?;
        let mut hello = [0u8];
        s.read_exact(&mut hello)?;
        match hello[0] {
            HELLO_CLIENT | HELLO_FORWARD => requests = Some(s),
            id @ b'1'..=b'9' if ((id - b'1') as usize) < followers => {
                links[(id - b'1') as usize] = Some(s)
            }
            other => return Err(std::io::Error::other(format!("bad hello {other}"))),
        }
    }
    let mut links = links
        .into_iter()
        .flatten()
        .map(|l| Conn::new(l, spin))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut requests = Conn::new(requests.expect("accepted above"), spin)?;
    let mut log = Log::create(&dir.join("log-leader"))?;
    let mut acked = vec![0u64; links.len()];
    let mut req = vec![0u8; record];
    let mut proposal = vec![0u8; 1 + 8 + record];
    for zxid in 1u64.. {
        if !read_or_end(&mut requests, &mut req)? {
            return Ok(());
        }
        proposal[0] = TAG_PROPOSAL;
        proposal[1..9].copy_from_slice(&zxid.to_be_bytes());
        proposal[9..].copy_from_slice(&req);
        for l in links.iter_mut() {
            l.write_all(&proposal)?;
        }
        if entry == Entry::LateLeader {
            wait_for_acks(&mut links, &mut acked, zxid, 2)?;
            links[0].write_all(&tagged(TAG_COMMIT, zxid))?;
            log.append(&req)?;
            continue;
        }
        log.append(&req)?;
        match entry {
            Entry::Standalone => requests.write_all(&zxid.to_be_bytes())?,
            Entry::Leader => {
                wait_for_acks(&mut links, &mut acked, zxid, 1)?;
                requests.write_all(&zxid.to_be_bytes())?;
            }
            Entry::Follower => links[0].write_all(&tagged(TAG_DURABLE, zxid))?,
            Entry::LateLeader => unreachable!("handled above"),
        }
    }
    Ok(())
}

/// A frame of `tag` and `zxid`.
fn tagged(tag: u8, zxid: u64) -> [u8; 9] {
    let mut frame = [0u8; 9];
    frame[0] = tag;
    frame[1..].copy_from_slice(&zxid.to_be_bytes());
    frame
}

/// Waits in `poll` on the links until `needed` followers have acknowledged
/// `zxid` (spinning, polls without waiting and yields between polls); ACKs
/// of earlier rounds that come meanwhile are taken as read.
fn wait_for_acks(
    links: &mut [Conn],
    acked: &mut [u64],
    zxid: u64,
    needed: usize,
) -> std::io::Result<()> {
    while acked.iter().filter(|&&a| a >= zxid).count() < needed {
        let mut fds: Vec<libc::pollfd> = links
            .iter()
            .map(|l| libc::pollfd {
                fd: l.s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll(2) on descriptors owned by `links`, which outlive
        // the call; `fds` is a valid array of `fds.len()` entries.
        let wait = if links.iter().any(|l| l.spin) { 0 } else { -1 };
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            std::thread::yield_now();
        }
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents != 0 {
                match read_u64(&mut links[i])? {
                    Some(z) => acked[i] = acked[i].max(z),
                    None => return Err(std::io::Error::other("a follower left")),
                }
            }
        }
    }
    Ok(())
}

/// Follower `id` (1 or 2). With the client on follower 1, it also takes
/// the client's requests, forwards them, and replies once its own log and
/// the leader's hold the record.
fn follower(
    dir: &Path,
    record: usize,
    id: u8,
    leader_port: u16,
    entry: Entry,
    spin: bool,
) -> std::io::Result<()> {
    let mut link = connect(leader_port)?;
    link.write_all(&[b'0' + id])?;
    let mut link = Conn::new(link, spin)?;
    let mut client = None;
    if entry.on_follower() && id == 1 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        announce(&listener)?;
        let mut forward = connect(leader_port)?;
        forward.write_all(&[HELLO_FORWARD])?;
        client = Some((
            Conn::new(accept(&listener)?, spin)?,
            Conn::new(forward, spin)?,
        ));
    }
    let mut log = Log::create(&dir.join(format!("log-follower{id}")))?;
    let mut frame = vec![0u8; 1 + 8 + record];
    loop {
        if let Some((client, forward)) = client.as_mut() {
            let req = &mut frame[9..];
            if !read_or_end(client, req)? {
                return Ok(());
            }
            forward.write_all(req)?;
        }
        if !read_or_end(&mut link, &mut frame)? {
            return Ok(());
        }
        if frame[0] != TAG_PROPOSAL {
            return Err(std::io::Error::other("expected a proposal"));
        }
        let zxid: [u8; 8] = frame[1..9].try_into().expect("8 bytes");
        log.append(&frame[9..])?;
        if entry != Entry::Follower {
            link.write_all(&zxid)?;
        }
        if let Some((client, _)) = client.as_mut() {
            let mut word = [0u8; 9];
            if !read_or_end(&mut link, &mut word)? {
                return Ok(());
            }
            let expected = match entry {
                Entry::LateLeader => TAG_COMMIT,
                _ => TAG_DURABLE,
            };
            if word[0] != expected || word[1..] != zxid {
                return Err(std::io::Error::other(
                    "expected the leader's word on this zxid",
                ));
            }
            client.write_all(&zxid)?;
        }
    }
}

/// The servers of one run; killed if the run ends early.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Servers {
    fn spawn(&mut self, args: &Args, dir: &Path, role: &[&str]) -> std::io::Result<()> {
        let child = Command::new(std::env::current_exe()?)
            .arg("--as")
            .args(role)
            .args(["--dir".as_ref(), dir.as_os_str()])
            .args(["--record-bytes", &args.record.to_string()])
            .args(["--spin", if args.spin { "yes" } else { "no" }])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.0.push(child);
        Ok(())
    }

    /// The port the last server started announced.
    fn port_of_last(&mut self) -> std::io::Result<u16> {
        let out = self.0.last_mut().and_then(|c| c.stdout.take());
        let mut line = String::new();
        BufReader::new(out.ok_or(std::io::Error::other("no server"))?).read_line(&mut line)?;
        line.trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("server said `{}`", line.trim())))
    }

    /// Every server ends once the client has gone: the entry server reads
    /// the end of its requests, the others the end of their links.
    fn wait(mut self, within: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + within;
        for c in &mut self.0 {
            loop {
                if let Some(status) = c.try_wait()? {
                    if !status.success() {
                        return Err(std::io::Error::other(format!("a server failed: {status}")));
                    }
                    break;
                }
                if Instant::now() > deadline {
                    return Err(std::io::Error::other("a server did not stop"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.0.clear();
        Ok(())
    }
}

/// One run: start the servers, time the rounds, stop them.
fn measure(args: &Args, entry: Entry) -> std::io::Result<Vec<Duration>> {
    let dir = tempfile::tempdir_in(&args.dir)?;
    let mut servers = Servers(Vec::new());
    let followers = if entry == Entry::Standalone { 0 } else { 2 };
    servers.spawn(
        args,
        dir.path(),
        &[
            "leader",
            "--followers",
            &followers.to_string(),
            "--entry",
            entry.name(),
        ],
    )?;
    let leader_port = servers.port_of_last()?;
    let mut entry_port = None;
    for id in 1..=followers {
        servers.spawn(
            args,
            dir.path(),
            &[
                "follower",
                "--id",
                &id.to_string(),
                "--leader-port",
                &leader_port.to_string(),
                "--entry",
                entry.name(),
            ],
        )?;
        if entry.on_follower() && id == 1 {
            entry_port = Some(servers.port_of_last()?);
        }
    }
    let mut client = match entry_port {
        Some(port) => connect(port)?,
        None => {
            let mut s = connect(leader_port)?;
            s.write_all(&[HELLO_CLIENT])?;
            s
        }
    };
    let request = vec![b'x'; args.record];
    let mut reply = [0u8; 8];
    let mut took = Vec::with_capacity(args.rounds);
    for round in 0..args.warmup + args.rounds {
        let start = Instant::now();
        client.write_all(&request)?;
        client.read_exact(&mut reply)?;
        if round >= args.warmup {
            took.push(start.elapsed());
        }
    }
    drop(client);
    servers.wait(Duration::from_secs(10))?;
    took.sort();
    Ok(took)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// `--as leader|follower ...`: this process is one of a run's servers.
fn serve(mut it: impl Iterator<Item = String>) -> Result<(), String> {
    let role = it.next().ok_or("--as needs a role")?;
    let (mut dir, mut record, mut followers, mut id, mut port, mut entry, mut spin) =
        (None, 0, 0, 0u8, 0u16, Entry::Standalone, false);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: String| format!("{flag}: {e}");
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(v)),
            "--record-bytes" => record = v.parse().map_err(|e| bad(format!("{e}")))?,
            "--followers" => followers = v.parse().map_err(|e| bad(format!("{e}")))?,
            "--id" => id = v.parse().map_err(|e| bad(format!("{e}")))?,
            "--leader-port" => port = v.parse().map_err(|e| bad(format!("{e}")))?,
            "--entry" => entry = Entry::parse(&v)?[0],
            "--spin" => spin = v == "yes",
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let dir = dir.ok_or("--dir is needed")?;
    let run = match role.as_str() {
        "leader" => leader(&dir, record, followers, entry, spin),
        "follower" => follower(&dir, record, id, port, entry, spin),
        other => return Err(format!("unknown role {other}")),
    };
    match run {
        // The run is over once the client has gone; the servers learn it
        // from each other's sockets in no set order.
        Err(e) if gone(&e) => Ok(()),
        r => r.map_err(|e| format!("{role}: {e}")),
    }
}

fn main() {
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(String::as_str) == Some("--as") {
        it.next();
        if let Err(e) = serve(it) {
            eprintln!("quorum_floor server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = match parse_args(it) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} timed rounds (after {} to warm up) of one {}-byte request, one at a time, logs in {}",
        args.rounds,
        args.warmup,
        args.record,
        args.dir.display()
    );
    println!(
        "servers {}",
        if args.spin {
            "spin (non-blocking sockets, sched_yield)"
        } else {
            "sleep in socket calls"
        }
    );
    println!(
        "{:<11} | {:>8} {:>8} {:>8} {:>9}",
        "entry", "p50 µs", "p90 µs", "p99 µs", "mean µs"
    );
    for &entry in &args.entries {
        match measure(&args, entry) {
            Ok(took) => {
                let mean = took.iter().sum::<Duration>().as_secs_f64() * 1e6 / took.len() as f64;
                println!(
                    "{:<11} | {:>8.0} {:>8.0} {:>8.0} {:>9.0}",
                    entry.name(),
                    percentile(&took, 0.5),
                    percentile(&took, 0.9),
                    percentile(&took, 0.99),
                    mean
                );
            }
            Err(e) => {
                eprintln!("{}: {e}", entry.name());
                std::process::exit(1);
            }
        }
    }
}
