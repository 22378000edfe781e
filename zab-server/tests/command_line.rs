//! The `zab-server` binary's own command line: `--version` and `--help`
//! answer and exit 0, and anything it does not know is refused with the
//! usage and exit code 2, never read as a zoo.cfg path.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zab-server"))
        .args(args)
        .env("ZAB_LOG", "error")
        .output()
        .expect("run zab-server")
}

#[test]
fn version_and_help_answer_and_exit_0() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("zab-server, version 3.8.0-zab-") && text.contains(", built on "),
            "{flag}: {text}"
        );
    }
    for flag in ["--help", "-h"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("usage: zab-server path/to/zoo.cfg")
        );
    }
}

#[test]
fn unknown_options_and_no_arguments_get_the_usage_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &[],
        &["a", "b"],
        &["--import-zookeeper", "dir"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("usage: zab-server path/to/zoo.cfg"),
            "{args:?}: {err}"
        );
    }
}

/// A zoo.cfg zab cannot use (here, one without `dataDir`), or none at
/// all, exits with 2, ZooKeeper's INVALID_CONFIG, naming the file.
#[test]
fn an_unusable_configuration_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "clientPort=2181\n").expect("zoo.cfg");
    let missing = dir.path().join("missing.cfg");
    for path in [&cfg, &missing] {
        let out = run(&[path.to_str().expect("a UTF-8 path")]);
        assert_eq!(out.status.code(), Some(2), "{path:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

/// A server whose peers' names do not resolve yet (a Kubernetes
/// StatefulSet's next pods) keeps running and looks for them, as ZooKeeper
/// does, resolving each name again at every dial; it used to exit at
/// start-up. It answers `srvr` as a server that is not serving yet.
#[test]
fn a_server_whose_peers_do_not_resolve_yet_keeps_running() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    let port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let client = port();
    std::fs::write(dir.path().join("myid"), "1\n").expect("myid");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={client}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\n\
             server.1=127.0.0.1:{}:{}\n\
             server.2=zk-2.invalid:2888:3888\nserver.3=zk-3.invalid:2888:3888\n",
            dir.path().display(),
            port(),
            port()
        ),
    )
    .expect("zoo.cfg");
    let mut server = Command::new(env!("CARGO_BIN_EXE_zab-server"))
        .arg(&cfg)
        .env("ZAB_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start zab-server");
    let srvr = || -> Option<String> {
        let mut sock = TcpStream::connect(("127.0.0.1", client)).ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        sock.write_all(b"srvr").ok()?;
        let mut answer = String::new();
        sock.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(status) = server.try_wait().expect("poll the server") {
            panic!("zab-server exited: {status}");
        }
        if let Some(answer) = srvr() {
            break answer;
        }
        assert!(Instant::now() < deadline, "no answer to srvr within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Past a few election rounds it is still there.
    std::thread::sleep(Duration::from_millis(600));
    let still = server.try_wait().expect("poll the server");
    let _ = server.kill();
    let _ = server.wait();
    assert!(still.is_none(), "zab-server exited: {still:?}");
    assert!(
        answer.contains("not currently serving requests"),
        "{answer}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `zab-server zoo.cfg` until it exits, which it must within 30 s.
fn run_until_exit(cfg: &std::path::Path) -> Output {
    use std::time::{Duration, Instant};
    let mut server = Command::new(env!("CARGO_BIN_EXE_zab-server"))
        .arg(cfg)
        .env("ZAB_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start zab-server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.try_wait().expect("poll the server").is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!(
                "zab-server still running after 30 s: {:?}",
                server.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_with_output().expect("the server's output")
}

/// A data directory that cannot be created exits with 3, ZooKeeper's
/// UNABLE_TO_ACCESS_DATADIR, with ZooKeeper's words and the path. (A path
/// through a regular file: a mode bit would not stop root.)
#[test]
fn a_data_directory_that_cannot_be_created_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("a regular file");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
            file.join("data").display(),
            free_port()
        ),
    )
    .expect("zoo.cfg");
    let out = run_until_exit(&cfg);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to access datadir, exiting abnormally")
            && err.contains(&file.join("data").display().to_string()),
        "{err}"
    );
}

/// A standalone server whose admin server cannot bind its port exits with
/// 4, ZooKeeper's ERROR_STARTING_ADMIN_SERVER (`ZooKeeperServerMain`).
#[test]
fn a_standalone_admin_server_that_cannot_start_exits_4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             admin.serverAddress=127.0.0.1\nadmin.serverPort={}\n",
            dir.path().join("data").display(),
            free_port(),
            taken.local_addr().expect("its address").port()
        ),
    )
    .expect("zoo.cfg");
    let out = run_until_exit(&cfg);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to start AdminServer, exiting abnormally"),
        "{err}"
    );
}

/// A quorum member whose election port is held by someone else tries
/// three times, a second apart, then exits with 14, ZooKeeper's
/// UNABLE_TO_BIND_QUORUM_PORT: it could never take part in an election.
#[test]
fn an_election_port_that_cannot_be_bound_exits_14() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    std::fs::write(dir.path().join("myid"), "1\n").expect("myid");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             server.1=127.0.0.1:{}:{}\nserver.2=127.0.0.1:{}:{}\nserver.3=127.0.0.1:{}:{}\n",
            dir.path().display(),
            free_port(),
            free_port(),
            taken.local_addr().expect("its address").port(),
            free_port(),
            free_port(),
            free_port(),
            free_port()
        ),
    )
    .expect("zoo.cfg");
    let out = run_until_exit(&cfg);
    assert_eq!(out.status.code(), Some(14), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("cannot bind the election port").count(),
        3,
        "{err}"
    );
}
