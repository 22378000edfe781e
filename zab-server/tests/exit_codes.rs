//! A server that cannot start exits with ZooKeeper's own codes
//! (`org.apache.zookeeper.server.ExitCode`), so that supervisors and
//! alerts written for ZooKeeper read zab's alike. `ZAB_TEST_TARGET=zookeeper`
//! runs the same tests against Debian's ZooKeeper 3.8, which answers them
//! the same way.
//!
//! A standalone server's admin server is in `admin.rs`; a zoo.cfg that
//! cannot be used (2) in `command_line.rs`.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, server_command, target, Target};

/// Runs the target on `cfg_text` until it exits, which it must within
/// 60 s; its output for the assertions and failure messages.
fn exit_of(dir: &Path, cfg_text: &str) -> Output {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, cfg_text).expect("zoo.cfg");
    let mut server = server_command(target(), dir, &cfg)
        .env("ZAB_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.try_wait().expect("poll the server").is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!(
                "{:?} still running after 60 s: {:?}",
                target(),
                server.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_with_output().expect("the server's output")
}

/// A data directory that cannot be created exits with 3,
/// UNABLE_TO_ACCESS_DATADIR, with ZooKeeper's words on stderr. (A path
/// through a regular file: a mode bit would not stop root.)
#[test]
fn a_data_directory_that_cannot_be_created_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("a regular file");
    let out = exit_of(
        dir.path(),
        &format!(
            "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n",
            file.join("data").display(),
            free_port()
        ),
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to access datadir, exiting abnormally"),
        "{err}"
    );
    if target() == Target::Zab {
        assert!(
            err.contains(&file.join("data").display().to_string()),
            "{err}"
        );
    }
}

/// A quorum member whose election port is held by someone else tries
/// three times, a second apart, then exits with 14,
/// UNABLE_TO_BIND_QUORUM_PORT: it could never take part in an election.
#[test]
fn an_election_port_that_cannot_be_bound_exits_14() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("dataDir");
    std::fs::write(data.join("myid"), "1\n").expect("myid");
    let out = exit_of(
        dir.path(),
        &format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             server.1=127.0.0.1:{}:{}\nserver.2=127.0.0.1:{}:{}\nserver.3=127.0.0.1:{}:{}\n",
            data.display(),
            free_port(),
            free_port(),
            taken.local_addr().expect("its address").port(),
            free_port(),
            free_port(),
            free_port(),
            free_port()
        ),
    );
    assert_eq!(out.status.code(), Some(14), "{out:?}");
    if target() == Target::Zab {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.matches("cannot bind the election port").count(),
            3,
            "{err}"
        );
    }
}
