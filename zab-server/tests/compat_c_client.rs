//! End-to-end compatibility with Apache ZooKeeper's C client
//! (`libzookeeper_mt`, Debian's libzookeeper-mt-dev): `tests/c/client.c` is
//! compiled at test time, run against the server, and its transcript is
//! compared line by line with what ZooKeeper 3.8 produces.
//!
//! Runs against zab by default, or against Apache ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper` (see `tests/support/mod.rs`).

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::TestServer;

const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// Compiles `tests/c/<name>.c` into `dir` and returns the executable's path.
fn compile(name: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let output = Command::new("cc")
        .arg("-Wall")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .arg("-I/usr/include/zookeeper")
        .arg("-lzookeeper_mt")
        .arg("-lpthread")
        .output()
        .expect("run cc");
    assert!(
        output.status.success(),
        "compiling {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Runs `exe` with `args` under a deadline; returns (stdout, stderr).
fn run(exe: &Path, args: &[&str], dir: &Path) -> (String, String) {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn C client");
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for C client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "C client did not finish within {RUN_DEADLINE:?}; output so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let stdout = std::fs::read_to_string(&out_path).expect("read stdout");
    let stderr = std::fs::read_to_string(&err_path).expect("read stderr");
    assert!(
        status.success(),
        "C client exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// The transcript `tests/c/client.c` prints against Apache ZooKeeper 3.8.0.
const EXPECTED: &str = "\
create /c rc=0 path=/c
create /c again rc=-110
get /c rc=0 data=hello buflen=5 version=0 dataLength=5
set /c v0 rc=0
set /c v0 again rc=-103
get /c rc=0 data=world buflen=5 version=1 dataLength=5
exists /c rc=0 version=1
exists /nope rc=-101
create /c/y rc=0
create /c/x rc=0
create /c/s- rc=0 path=/c/s-0000000002
ephemeral owner is session: 1
children /c rc=0 count=3 names=s-0000000002,x,y
get /c/x rc=0 data= buflen=-1 version=0 dataLength=0
delete /c rc=-111
delete /c/y v5 rc=-103
delete /c/y v0 rc=0
children /c rc=0 count=2 names=s-0000000002,x
wget /c rc=0
set /c rc=0
event data type=3 path=/c
wexists /w rc=-101
create /w rc=0
event exists type=1 path=/w
wget_children /w rc=0
create /w/k rc=0
event child type=4 path=/w
multi ok rc=0 results=0,0,0,0 p1=/m1 p2=/m2 set_version=1
get /m1 rc=0 data=uno buflen=3 version=1 dataLength=3
multi fail rc=-110 results=0,0,-110,-2
exists /m3 rc=-101
exists /m2 rc=0
get /m1 rc=0 data=uno buflen=3 version=1 dataLength=3
auth alice rc=0
create /sec rc=0
acl /sec digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E= perms=31
get /sec rc=0 data=gold buflen=4 version=0 dataLength=4
other:
get /sec rc=-102
set /sec rc=-102
create /nobody rc=-114
auth wrong rc=0
get /sec rc=-102
auth right rc=0
get /sec rc=0 data=gold buflen=4 version=0 dataLength=4
children /c rc=0 count=1 names=x
done
";

/// What the lines check, for the reader: error codes are ZNODEEXISTS -110,
/// ZBADVERSION -103, ZNONODE -101, ZNOTEMPTY -111, ZNOAUTH -102,
/// ZINVALIDACL -114, ZRUNTIMEINCONSISTENCY -2; event types CREATED 1,
/// CHANGED 3, CHILD 4.
/// - null data reads back with length -1 (behaviour 9);
/// - the sequential suffix counts all children created (behaviour 1);
/// - a failed multi reports 0 before, its own code at, and -2 after the
///   failing op, and applies nothing (behaviours 46, 47);
/// - a wrong digest password "succeeds" but grants nothing (behaviour 45);
/// - a creator ACL without an identity is InvalidACL (behaviour 44);
/// - closing a session removes its ephemerals at once (behaviour 34).
#[test]
fn c_client_sync_api_watches_multi_auth() {
    let server = TestServer::start("");
    let build = tempfile::tempdir().expect("temp dir");
    let exe = compile("client", build.path());
    let (stdout, stderr) = run(&exe, &[&server.connect_string()], build.path());
    let got: Vec<&str> = stdout.lines().collect();
    let want: Vec<&str> = EXPECTED.lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "line {} differs\nstdout:\n{stdout}\nstderr:\n{stderr}",
            i + 1
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "transcript length differs\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
