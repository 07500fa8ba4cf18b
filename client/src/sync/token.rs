//! Rotating the device token (`POST /v1/token`): the device asks for a new token and
//! keeps it in its store. The server keeps the old one valid until the new one is first
//! used, so a cut answer costs nothing: the device still holds the old token and can ask
//! again. The host app decides when to rotate (e.g. monthly from its background task);
//! the CLI has `intake rotate-token`.

use std::time::Duration;

use intake_shared::protocol::TokenAnswer;

use super::error::SyncError;
use super::http;
use crate::store::Store;

/// Replaces this device's token with a new one from the server. On an error the store
/// keeps the token it had, which the server still accepts.
pub fn rotate_token(store: &mut Store) -> Result<(), SyncError> {
    let mut enrolment = store.enrolment()?.ok_or(SyncError::NotEnrolled)?;
    let client = http::client(enrolment.ca_file.as_deref(), Duration::from_secs(60))?;
    let resp = client
        .post(format!("{}/v1/token", enrolment.server))
        .bearer_auth(&enrolment.token)
        .send()
        .map_err(http::classify)?;
    let status = resp.status();
    let body = resp.bytes().map_err(http::classify)?;
    if !status.is_success() {
        return Err(http::status_error(status, &body));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|e| SyncError::Retryable(format!("garbled token answer: {e}")))?;
    if answer.device_id != enrolment.device_id || answer.token.len() != 64 {
        return Err(SyncError::Retryable(
            "the server's token answer is not for this device".into(),
        ));
    }
    enrolment.token = answer.token;
    store.set_enrolment(&enrolment)?;
    Ok(())
}
