//! Jute encode/decode of the requests and responses on the hot path.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use zab_wire::jute::{
    op, Acl, CreateRequest, GetDataResponse, Jute, PathWatchRequest, Reader, ReplyHeader, Request,
    RequestHeader, Response, SetDataRequest, Stat,
};

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0001,
        mzxid: 0x1_0000_0002,
        ctime: 1_763_900_000_000,
        mtime: 1_763_900_000_500,
        version: 3,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0001,
    }
}

fn requests() -> Vec<(&'static str, Request)> {
    let value = Bytes::from(vec![b'x'; 100]);
    vec![
        (
            "create",
            Request::Create {
                op: op::CREATE,
                req: CreateRequest {
                    path: "/bench/node-0000012345".into(),
                    data: Some(value.clone()),
                    acl: Some(Acl::open_unsafe()),
                    flags: 0,
                },
            },
        ),
        (
            "setData",
            Request::SetData(SetDataRequest {
                path: "/bench/node-0000012345".into(),
                data: Some(value),
                version: -1,
            }),
        ),
        (
            "getData",
            Request::GetData(PathWatchRequest {
                path: "/bench/node-0000012345".into(),
                watch: false,
            }),
        ),
    ]
}

fn bench_requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    for (name, req) in requests() {
        let frame = req.encode_with_header(7);
        g.bench_with_input(BenchmarkId::new("decode", name), &frame, |b, frame| {
            b.iter(|| {
                let mut r = Reader::new(frame.clone());
                let h = RequestHeader::read(&mut r).expect("header");
                black_box(Request::decode(h.op, r.rest()).expect("body"))
            })
        });
        g.bench_with_input(BenchmarkId::new("encode", name), &req, |b, req| {
            b.iter(|| black_box(req.encode_with_header(7)))
        });
    }
    g.finish();
}

fn bench_responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Elements(1));
    let get = Response::GetData(GetDataResponse {
        data: Some(Bytes::from(vec![b'x'; 100])),
        stat: stat(),
    });
    let header = ReplyHeader {
        xid: 7,
        zxid: 0x1_0000_0002,
        err: 0,
    };
    g.bench_function("encode/getData", |b| {
        b.iter(|| black_box(get.encode_reply(header.clone())))
    });
    let encoded = get.encode_reply(header);
    g.bench_function("decode/getData", |b| {
        b.iter(|| {
            let mut r = Reader::new(encoded.clone());
            let h = ReplyHeader::read(&mut r).expect("header");
            black_box((h, Response::decode(op::GET_DATA, r.rest()).expect("body")))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_requests, bench_responses);
criterion_main!(benches);
