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
    let metrics = port();
    std::fs::write(dir.path().join("myid"), "1\n").expect("myid");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={client}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics}\n\
             server.1=127.0.0.1:{}:{}\n\
             server.2=zk-2.invalid:2888:3888\nserver.3=zk-3.invalid:2888:3888\n",
            dir.path().display(),
            port(),
            port()
        ),
    )
    .expect("zoo.cfg");
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_zab-server"))
            .arg(&cfg)
            .env("ZAB_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start zab-server"),
    );
    let ask = |port: u16, request: &[u8]| -> Option<String> {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        sock.write_all(request).ok()?;
        let mut answer = String::new();
        sock.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let srvr = || ask(client, b"srvr");
    // `looking_count` as `/metrics` serves it.
    let looking = || -> Option<f64> {
        let page = ask(
            metrics,
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )?;
        page.lines()
            .find_map(|l| l.strip_prefix("looking_count "))
            .and_then(|v| v.trim().parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(status) = server.0.try_wait().expect("poll the server") {
            panic!("zab-server exited: {status}");
        }
        if let Some(answer) = srvr() {
            break answer;
        }
        assert!(Instant::now() < deadline, "no answer to srvr within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    // ZooKeeper's counters are served while it elects, and `srst` from a
    // server that does not serve resets nothing.
    let counted = looking().expect("looking_count on /metrics while electing");
    assert!(counted >= 1.0, "looking_count {counted}");
    let srst = ask(client, b"srst").expect("srst");
    assert!(srst.contains("not currently serving requests"), "{srst}");
    assert!(looking().expect("looking_count after srst") >= counted);
    // Past a few election rounds it is still there.
    std::thread::sleep(Duration::from_millis(600));
    let still = server.0.try_wait().expect("poll the server");
    assert!(still.is_none(), "zab-server exited: {still:?}");
    assert!(
        answer.contains("not currently serving requests"),
        "{answer}"
    );
}

/// A child process killed however the test that started it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
