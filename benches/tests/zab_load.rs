//! End-to-end: the `zab-load` binary against an in-process server that
//! speaks just enough of the client protocol (connect, create, setData,
//! getData, ping, closeSession) over 127.0.0.1, keeping the nodes in a map so
//! that a generator sending the wrong paths shows up as NoNode errors.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zab_wire::jute::{
    encode_frame, op, ConnectRequest, ConnectResponse, CreateResponse, ErrorCode, FrameDecoder,
    GetDataResponse, Jute, Reader, ReplyHeader, Request, RequestHeader, Response, Stat,
    StatResponse,
};

type Tree = Arc<Mutex<HashMap<String, Bytes>>>;

/// Counts what the server saw, by opcode.
type Seen = Arc<Mutex<HashMap<i32, u64>>>;

async fn serve(
    mut conn: TcpStream,
    tree: Tree,
    seen: Seen,
    session: i64,
    refuse_k0: bool,
) -> Option<()> {
    let frames = FrameDecoder::default();
    let mut input = BytesMut::new();
    let mut out = BytesMut::new();
    let mut connected = false;
    let mut zxid = 0i64;
    loop {
        while let Some(frame) = frames.decode(&mut input).ok()? {
            if !connected {
                let req = ConnectRequest::decode(frame).ok()?;
                let resp = ConnectResponse {
                    protocol_version: 0,
                    time_out: req.time_out,
                    session_id: session,
                    passwd: Bytes::from_static(&[0; 16]),
                    read_only: req.read_only.map(|_| false),
                };
                encode_frame(&resp.encode(), &mut out);
                connected = true;
                continue;
            }
            let mut r = Reader::new(frame);
            let h = RequestHeader::read(&mut r).ok()?;
            *seen.lock().unwrap().entry(h.op).or_default() += 1;
            let req = Request::decode(h.op, r.rest()).ok()?;
            let (err, body) = {
                let mut t = tree.lock().unwrap();
                match &req {
                    Request::Create { req, .. } => {
                        zxid += 1;
                        if t.contains_key(&req.path) {
                            (ErrorCode::NodeExists.code(), None)
                        } else {
                            t.insert(req.path.clone(), req.data.clone().unwrap_or_default());
                            let path = req.path.clone();
                            (0, Some(Response::Create(CreateResponse { path })))
                        }
                    }
                    Request::SetData(req) => match t.get_mut(&req.path) {
                        Some(v) => {
                            zxid += 1;
                            *v = req.data.clone().unwrap_or_default();
                            (0, Some(Response::Stat(StatResponse::default())))
                        }
                        None => (ErrorCode::NoNode.code(), None),
                    },
                    // Reads of /bench/k0 are refused, to see errors counted.
                    Request::GetData(req) if req.path == "/bench/k0" && refuse_k0 => {
                        (ErrorCode::NoAuth.code(), None)
                    }
                    Request::GetData(req) => match t.get(&req.path) {
                        Some(v) => (
                            0,
                            Some(Response::GetData(GetDataResponse {
                                data: Some(v.clone()),
                                stat: Stat::default(),
                            })),
                        ),
                        None => (ErrorCode::NoNode.code(), None),
                    },
                    Request::Ping | Request::CloseSession => (0, Some(Response::Empty)),
                    _ => (ErrorCode::Unimplemented.code(), None),
                }
            };
            let header = ReplyHeader {
                xid: h.xid,
                zxid,
                err,
            };
            let reply = match body {
                Some(b) => b.encode_reply(header),
                None => header.encode(),
            };
            encode_frame(&reply, &mut out);
            if h.op == op::CLOSE_SESSION {
                conn.write_all(&out).await.ok()?;
                return Some(());
            }
        }
        if !out.is_empty() {
            conn.write_all(&out).await.ok()?;
            out.clear();
        }
        if conn.read_buf(&mut input).await.ok()? == 0 {
            return Some(());
        }
    }
}

/// Starts the fake server on a free port of 127.0.0.1.
fn start_server(refuse_k0: bool) -> (String, Tree, Seen, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tree = Tree::default();
    let seen = Seen::default();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (t, s) = (tree.clone(), seen.clone());
    rt.spawn(async move {
        let mut session = 0x100;
        while let Ok((conn, _)) = listener.accept().await {
            session += 1;
            tokio::spawn(serve(conn, t.clone(), s.clone(), session, refuse_k0));
        }
    });
    (addr, tree, seen, rt)
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn mixed_load_creates_the_keys_then_reads_and_writes_them() {
    let (addr, tree, seen, _rt) = start_server(false);
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("mixed.json");
    let out = run_bounded(&[
        "--hosts",
        &addr,
        "--clients",
        "3",
        "--inflight",
        "4",
        "--op",
        "mixed",
        "--read-ratio",
        "0.5",
        "--keys",
        "50",
        "--value-size",
        "7",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--quiet",
        "--json",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out_path);
    assert_eq!(v["errors"], serde_json::json!({}), "{v}");
    let gets = v["by_op"]["get"]["ops"].as_u64().unwrap();
    let sets = v["by_op"]["set"]["ops"].as_u64().unwrap();
    assert!(gets > 0 && sets > 0, "{v}");
    assert_eq!(v["total"]["ops"].as_u64().unwrap(), gets + sets);
    // The keys exist, with values of --value-size bytes.
    let t = tree.lock().unwrap();
    assert_eq!(t.len(), 51, "/bench and 50 keys");
    assert!((0..50).all(|i| t.get(&format!("/bench/k{i}")).map(Bytes::len) == Some(7)));
    drop(t);
    let seen = seen.lock().unwrap();
    // At least what was counted reached the server, and every session
    // closed itself.
    assert!(seen[&op::GET_DATA] >= gets && seen[&op::SET_DATA] >= sets);
    assert_eq!(seen[&op::CLOSE_SESSION], 3);
    assert!(String::from_utf8_lossy(&out.stdout).contains("p99 ms"));
}

#[test]
fn refused_requests_are_counted_as_errors_not_successes() {
    let (addr, _tree, seen, _rt) = start_server(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("get.json");
    let out = run_bounded(&[
        "--hosts",
        &addr,
        "--clients",
        "2",
        "--inflight",
        "2",
        "--keys",
        "2",
        "--op",
        "get",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--quiet",
        "--json",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&path);
    let refused = v["errors"]["NoAuth(-102)"].as_u64().unwrap_or(0);
    let ok = v["total"]["ops"].as_u64().unwrap();
    // Keys are picked uniformly from two: about half of each.
    assert!(refused > 0 && ok > 0, "{v}");
    let share = refused as f64 / (refused + ok) as f64;
    assert!((0.4..0.6).contains(&share), "{share} of reads refused: {v}");
    assert!(seen.lock().unwrap()[&op::GET_DATA] >= refused + ok);
}

/// Runs zab-load, killing it if it outlives a generous deadline.
fn run_bounded(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zab-load"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("zab-load ran past 60 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
