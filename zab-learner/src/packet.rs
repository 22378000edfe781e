//! Building and reading the quorum packets a learner exchanges with its
//! leader, in the shapes of the shared leader ⇄ learner protocol
//! (`QuorumPacket { type, zxid, data, authinfo }`, payloads prost-encoded).

use bytes::Bytes;
use prost::Message;
use zab_wire::proto::{PacketType, QuorumPacket, Txn};
use zab_wire::Zxid;

use crate::proposals::HeldTxn;
use crate::LearnerError;

/// ZooKeeper's Zab 1.0 protocol version, carried in LearnerInfo.
pub(crate) const PROTOCOL_VERSION: i32 = 0x10000;

/// The zxid of packets that carry none (REQUEST, REVALIDATE, UPTODATE).
pub(crate) const NO_ZXID: Zxid = Zxid(-1);

pub(crate) fn packet(ty: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        r#type: ty as i32,
        zxid: zxid.0,
        data,
        authinfo: Vec::new(),
    }
}

pub(crate) fn encoded(msg: &impl Message) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

/// A name for logs and errors; unknown numbers map to "UNKNOWN".
pub(crate) fn type_name(ty: i32) -> &'static str {
    PacketType::try_from(ty).map_or("UNKNOWN", |t| t.as_str_name())
}

/// Decodes a packet's payload, or says which packet was malformed.
pub(crate) fn decode<M: Message + Default>(p: &QuorumPacket) -> Result<M, LearnerError> {
    M::decode(p.data.clone()).map_err(|e| LearnerError::Malformed {
        packet: type_name(p.r#type),
        zxid: Zxid(p.zxid),
        detail: e.to_string(),
    })
}

/// Decodes the txn of a PROPOSAL or INFORM. The txn's own zxid must be the
/// packet's: ZooKeeper trusts the txn header, zab's leader sets both, and a
/// disagreement means the payload is not what the leader meant to send.
pub(crate) fn decode_txn(p: &QuorumPacket) -> Result<HeldTxn, LearnerError> {
    let txn: Txn = decode(p)?;
    if txn.zxid != p.zxid {
        return Err(LearnerError::Malformed {
            packet: type_name(p.r#type),
            zxid: Zxid(p.zxid),
            detail: format!("txn carries zxid {}", Zxid(txn.zxid)),
        });
    }
    Ok(HeldTxn {
        zxid: Zxid(p.zxid),
        raw: p.data.clone(),
        txn,
    })
}
