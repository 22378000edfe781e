//! A Kerberos KDC of its own for a test: MIT's `krb5kdc` (Debian's
//! `krb5-kdc`, with `kadmin.local` from `krb5-admin-server`) on a free port
//! of 127.0.0.1, its realm `ZAB.TEST` and database in a temporary
//! directory, and a `krb5.conf` that points at it. Principals get random
//! keys, written to keytabs. The KDC is killed and the directory removed
//! when the value is dropped.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const REALM: &str = "ZAB.TEST";

pub struct Kdc {
    dir: TempDir,
    child: Child,
    krb5_conf: PathBuf,
    /// Keytabs written so far: each gets a file of its own.
    keytabs: AtomicUsize,
}

impl Kdc {
    /// Creates the realm and starts the KDC; returns once it takes
    /// connections.
    pub fn start() -> Kdc {
        let dir = tempfile::Builder::new()
            .prefix("zab-kdc-")
            .tempdir()
            .expect("KDC temp dir");
        let port = super::free_port();
        let krb5_conf = dir.path().join("krb5.conf");
        fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_kdc = false\n  \
                 dns_lookup_realm = false\n  rdns = false\n  udp_preference_limit = 1\n\
                 [realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n"
            ),
        )
        .expect("write krb5.conf");
        let d = dir.path().display();
        fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n  kdc_ports = {port}\n  kdc_tcp_ports = {port}\n\
                 [realms]\n  {REALM} = {{\n    database_name = {d}/principal\n    \
                 key_stash_file = {d}/stash\n    acl_file = {d}/kadm5.acl\n    \
                 kdc_ports = {port}\n    kdc_tcp_ports = {port}\n  }}\n"
            ),
        )
        .expect("write kdc.conf");
        let mut kdc = Kdc {
            child: Command::new("true").spawn().expect("spawn true"),
            krb5_conf,
            dir,
            keytabs: AtomicUsize::new(0),
        };
        kdc.tool(
            "/usr/sbin/kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "zab-master"],
        );
        let log = fs::File::create(kdc.dir.path().join("kdc.log")).expect("KDC log");
        kdc.child = kdc
            .command("/usr/sbin/krb5kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn krb5kdc (Debian's krb5-kdc; `cargo xtask deps` installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the KDC did not listen in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        kdc
    }

    /// The `krb5.conf` that points at this KDC.
    pub fn krb5_conf(&self) -> &Path {
        &self.krb5_conf
    }

    /// Creates `principal` (without the realm) if needed, gives it a new
    /// random key and writes that key to a keytab of its own, whose path is
    /// returned. Calling it again re-keys the principal: keytabs written
    /// before are then stale.
    pub fn keytab(&self, principal: &str) -> PathBuf {
        let full = format!("{principal}@{REALM}");
        let n = self.keytabs.fetch_add(1, Ordering::Relaxed);
        let file = format!("{}-{n}.keytab", principal.replace('/', "_"));
        let path = self.dir.path().join(file);
        self.kadmin(&format!("addprinc -randkey {full}"));
        self.kadmin(&format!("ktadd -k {} {full}", path.display()));
        path
    }

    fn kadmin(&self, query: &str) {
        self.tool("/usr/sbin/kadmin.local", &["-r", REALM, "-q", query]);
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"));
        c
    }

    fn tool(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{program}: {e} (`cargo xtask deps` installs MIT Kerberos)")
            });
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
