//! Txns for the tree's integration tests.

use bytes::Bytes;
use zab_wire::proto::{self, txn_body::Op as TxnOp, Txn, TxnBody};

/// A txn of session 1 at `zxid` (time 0) carrying `op`.
pub fn txn(zxid: i64, op: TxnOp) -> Txn {
    Txn {
        origin: 0,
        session_id: 1,
        cxid: 0,
        zxid,
        time: 0,
        body: Some(TxnBody { op: Some(op) }),
    }
}

/// A persistent, world-readable create of `path` holding `data`.
pub fn create(path: String, data: Bytes) -> TxnOp {
    TxnOp::Create(proto::CreateTxn {
        path,
        data: Some(data),
        acl: vec![proto::Acl {
            perms: 31,
            id: Some(proto::Id {
                scheme: "world".into(),
                id: "anyone".into(),
            }),
        }],
        op: 1,
        ephemeral_owner: 0,
        parent_cversion: -1,
    })
}
