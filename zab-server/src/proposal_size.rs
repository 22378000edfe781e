//! The size ZooKeeper reports for a proposal (`Proposal sizes` in
//! `srvr`/`stat`, `zk_*_proposal_size` in `mntr`): the txn as its leader
//! serializes it for the log and the wire (`Leader.propose`,
//! `Util.marshallTxnEntry`) — the jute `TxnHeader`, the txn record and the
//! `TxnDigest` that 3.8 adds by default. zab's proposals travel as
//! protobuf; this computes the figure ZooKeeper would give the same txn,
//! so an operator reads the same numbers (and compares them with
//! `jute.maxbuffer`) on either server.

use zab_wire::jute::op;
use zab_wire::proto::{txn_body::Op as TxnOp, Acl, Txn, TxnBody};

/// `TxnHeader`: clientId, cxid, zxid, time, type.
const HEADER: usize = 8 + 4 + 8 + 8 + 4;
/// `TxnDigest`: version and tree digest.
const DIGEST: usize = 4 + 8;

/// The jute size of `txn` with its header and digest.
pub fn proposal_size(txn: &Txn) -> usize {
    HEADER + txn.body.as_ref().map_or(0, record) + DIGEST
}

fn string(s: &str) -> usize {
    4 + s.len()
}

fn buffer(b: Option<&[u8]>) -> usize {
    4 + b.map_or(0, <[u8]>::len)
}

fn acl(acl: &[Acl]) -> usize {
    4 + acl
        .iter()
        .map(|a| {
            let (scheme, id) = a.id.as_ref().map_or(("", ""), |i| (&*i.scheme, &*i.id));
            4 + string(scheme) + string(id)
        })
        .sum::<usize>()
}

/// The txn record alone (what a `MultiTxn` carries per op).
fn record(body: &TxnBody) -> usize {
    match &body.op {
        Some(TxnOp::CreateSession(_)) => 4,
        Some(TxnOp::CloseSession(c)) => {
            4 + c.paths_to_delete.iter().map(|p| string(p)).sum::<usize>()
        }
        Some(TxnOp::Create(c)) => {
            let common = string(&c.path) + buffer(c.data.as_deref()) + acl(&c.acl);
            match c.op {
                // CreateContainerTxn: no ephemeral flag.
                op::CREATE_CONTAINER => common + 4,
                // CreateTTLTxn: parentCVersion and ttl.
                op::CREATE_TTL => common + 4 + 8,
                // CreateTxn: ephemeral flag and parentCVersion.
                _ => common + 1 + 4,
            }
        }
        Some(TxnOp::Delete(d)) => string(&d.path),
        Some(TxnOp::SetData(s)) => string(&s.path) + buffer(s.data.as_deref()) + 4,
        Some(TxnOp::SetAcl(s)) => string(&s.path) + acl(&s.acl) + 4,
        Some(TxnOp::Check(c)) => string(&c.path) + 4,
        Some(TxnOp::Error(_)) => 4,
        // A vector of `Txn { int type; buffer data }`.
        Some(TxnOp::Multi(m)) => 4 + m.ops.iter().map(|o| 4 + 4 + record(o)).sum::<usize>(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use zab_wire::proto::{self, CreateSessionTxn, CreateTxn, DeleteTxn, Id};

    fn txn(op: TxnOp) -> Txn {
        Txn {
            body: Some(TxnBody { op: Some(op) }),
            ..Default::default()
        }
    }

    /// The figures ZooKeeper 3.8.0's leader reported for these txns
    /// (`Proposal sizes last/min/max: 51/48/387`).
    #[test]
    fn sizes_are_zookeepers() {
        let session = txn(TxnOp::CreateSession(CreateSessionTxn { timeout: 30_000 }));
        assert_eq!(proposal_size(&session), 48);
        let delete = txn(TxnOp::Delete(DeleteTxn {
            path: "/p2".into(),
            op: op::DELETE,
        }));
        assert_eq!(proposal_size(&delete), 51);
        let create = txn(TxnOp::Create(CreateTxn {
            path: "/p2".into(),
            data: Some(Bytes::from(vec![b'x'; 300])),
            acl: vec![proto::Acl {
                perms: 31,
                id: Some(Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                }),
            }],
            op: op::CREATE,
            ..Default::default()
        }));
        assert_eq!(proposal_size(&create), 387);
    }
}
