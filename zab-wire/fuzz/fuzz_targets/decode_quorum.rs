//! zab's protobuf peer messages as a server reads them off a peer link:
//! `QuorumPacket`, `QuorumBatch`, `Txn` (the payload of PROPOSAL and
//! INFORM), `LearnerInfo` and election `Notification`s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use zab_wire::proto;

fuzz_target!(|data: &[u8]| {
    let _ = proto::QuorumPacket::decode(data);
    let _ = proto::QuorumBatch::decode(data);
    let _ = proto::Txn::decode(data);
    let _ = proto::LearnerInfo::decode(data);
    let _ = proto::Notification::decode(data);
    let _ = proto::SnapshotHeader::decode(data);
    let _ = proto::Znode::decode(data);
});
