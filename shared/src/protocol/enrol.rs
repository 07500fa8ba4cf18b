//! Enrolment (`POST /v1/enroll`, JSON): the request a device sends with its one-time
//! code, and the answer it keeps. Both sides use these types, so neither guesses at
//! untyped JSON. Specified in `docs/PROTOCOL.md` § Enrolment.

use serde::{Deserialize, Serialize};

/// A device asks to be enrolled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time code as an admin gave it (case, dashes and spaces do not matter).
    pub code: String,
    /// The device's 16-byte actor prefix, in hex (32 characters).
    pub actor: String,
    /// A name for admins' device lists, at most 100 characters.
    #[serde(default)]
    pub label: String,
}

impl std::fmt::Display for EnrolRequest {
    /// Never shows the code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "enrolment of actor {} ({})", self.actor, self.label)
    }
}

/// The header of every sync answer that repeats the server's lock after N days
/// (decimal; 0: never), so devices enrolled before a change learn it (issue 12).
pub const LOCK_HEADER: &str = "intake-lock-after-days";

/// The server's answer: the token (shown once) and who the device now belongs to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolAnswer {
    /// The device token: 64 hex digits, sent only in the `Authorization` header.
    pub token: String,
    pub device_id: i64,
    pub user: String,
    /// `paralegal`, `supervisor` or `admin`.
    pub role: String,
    pub team: Option<String>,
    /// The newest sync protocol version the server speaks.
    pub protocol: u16,
    /// The server's limits a device must stay within (absent from older servers).
    #[serde(default)]
    pub limits: Option<DeviceLimits>,
    /// The server's store id (see `STORE_HEADER`), absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Lost phones (issue 12): the device locks its records after this many days
    /// without a successful sync (absent or `None`: never; sync answers repeat it in
    /// the `Intake-Lock-After-Days` header).
    #[serde(default)]
    pub lock_after_days: Option<u32>,
}

impl std::fmt::Debug for EnrolAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolAnswer")
            .field("token", &"[redacted]")
            .field("device_id", &self.device_id)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("team", &self.team)
            .field("protocol", &self.protocol)
            .field("limits", &self.limits)
            .field("lock_after_days", &self.lock_after_days)
            .field("store", &self.store)
            .finish()
    }
}

/// The answer to `POST /v1/token`: the device's new token. The one it used to ask stays
/// valid until the new one is first used (or for [`TOKEN_GRACE_DAYS`]), so an answer
/// lost on the way does not lock the device out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    /// 64 hex digits, sent only in the `Authorization` header.
    pub token: String,
    pub device_id: i64,
}

/// How long a token rotated away from stays valid if the new one is never used.
pub const TOKEN_GRACE_DAYS: i64 = 30;

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("token", &"[redacted]")
            .field("device_id", &self.device_id)
            .finish()
    }
}

/// The limits of the server's that shape a device's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLimits {
    /// Most records (pushed and wanted whole) in one sync request.
    pub max_records_per_request: u32,
    /// Largest request body as sent (compressed), in bytes.
    pub max_body_bytes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_older_servers_still_parse_and_tokens_never_print() {
        let old = r#"{"token":"ab","device_id":7,"user":"drita","role":"paralegal","team":"prizren","protocol":2}"#;
        let a: EnrolAnswer = serde_json::from_str(old).unwrap();
        assert_eq!(a.limits, None);
        assert_eq!(a.store, None);
        assert_eq!(a.lock_after_days, None);
        assert!(!format!("{a:?}").contains("ab\""));
        let bad = r#"{"code":"x","actor":"00","label":"","extra":1}"#;
        assert!(serde_json::from_str::<EnrolRequest>(bad).is_err());
    }
}
