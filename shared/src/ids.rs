//! Identifiers. A record id is a UUIDv7 minted where the record is created — usually
//! offline — so ids sort by creation time and never need a server round trip.

use std::fmt;
use std::str::FromStr;

/// The id of one record (one case). Always a UUID; new ids are version 7.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct RecordId(uuid::Uuid);

impl RecordId {
    /// A new time-ordered id. `unix_ms` is the creation time (passed in: no clocks here).
    pub fn new_v7(unix_ms: u64, random: [u8; 10]) -> RecordId {
        RecordId(uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid())
    }

    /// Wraps an existing UUID (imported records keep the id they were given).
    pub fn from_uuid(u: uuid::Uuid) -> RecordId {
        RecordId(u)
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    /// The id from its 16 bytes on the wire (the UUID's, in order).
    pub fn from_wire(bytes: &[u8; 16]) -> RecordId {
        RecordId(uuid::Uuid::from_bytes(*bytes))
    }

    /// The id's 16 bytes on the wire.
    pub fn wire(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Text that is not a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a record id (expected a UUID such as 0193…-…): {0:?}")]
pub struct BadRecordId(pub String);

impl FromStr for RecordId {
    type Err = BadRecordId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s.trim())
            .map(RecordId)
            .map_err(|_| BadRecordId(s.to_string()))
    }
}
