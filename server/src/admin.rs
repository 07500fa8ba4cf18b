//! User and device administration, shared by the `intake-server` command line and the
//! admin API so both do exactly the same thing.

use chrono::{DateTime, Duration, Utc};

use crate::auth;
use crate::storage::{Audit, Role, Storage, StorageError, User};

/// A user with a fresh one-time enrolment code. `Debug` never shows the code.
#[derive(serde::Serialize)]
pub struct Enrolment {
    pub user: User,
    /// Shown once; only its hash is stored.
    pub enrolment_code: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("user", &self.user)
            .field("enrolment_code", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for SignInCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInCode")
            .field("user", &self.user)
            .field("code", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("user names are 1–64 letters, digits, '.', '_' or '-'")]
    BadName,
    #[error("a {0} needs a team (--team)")]
    NeedsTeam(&'static str),
    #[error("no user {0}")]
    NoUser(String),
    #[error("paralegals do not sign in to the dashboard")]
    NoDashboard,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    NoRandom(#[from] auth::NoRandom),
}

/// Creates a user and an enrolment code for their first device.
pub fn add_user(
    storage: &dyn Storage,
    name: &str,
    role: Role,
    team: Option<&str>,
    minutes: i64,
) -> Result<Enrolment, AdminError> {
    add_user_audited(storage, name, role, team, minutes, None)
}

/// [`add_user`], its audit entry stored with the user (the code is a second write: a
/// server stopped between the two leaves an audited user without a code, for whom an
/// admin issues a new one).
pub fn add_user_audited(
    storage: &dyn Storage,
    name: &str,
    role: Role,
    team: Option<&str>,
    minutes: i64,
    audit: Option<&Audit>,
) -> Result<Enrolment, AdminError> {
    if !valid_name(name) {
        return Err(AdminError::BadName);
    }
    if role == Role::Supervisor && team.is_none() {
        return Err(AdminError::NeedsTeam("supervisor"));
    }
    let user = storage.create_user_audited(name, role, team, audit)?;
    issue_code(storage, user, minutes, None)
}

/// A new enrolment code for an existing user (a new or replaced phone).
pub fn new_code(storage: &dyn Storage, name: &str, minutes: i64) -> Result<Enrolment, AdminError> {
    new_code_audited(storage, name, minutes, None)
}

/// [`new_code`], its audit entry stored with the code.
pub fn new_code_audited(
    storage: &dyn Storage,
    name: &str,
    minutes: i64,
    audit: Option<&Audit>,
) -> Result<Enrolment, AdminError> {
    let user = storage
        .user(name)?
        .ok_or_else(|| AdminError::NoUser(name.into()))?;
    issue_code(storage, user, minutes, audit)
}

fn issue_code(
    storage: &dyn Storage,
    user: User,
    minutes: i64,
    audit: Option<&Audit>,
) -> Result<Enrolment, AdminError> {
    let (code, hash) = auth::new_enrolment_code()?;
    let expires_at = Utc::now() + Duration::minutes(minutes);
    storage.add_enrolment_code_audited(&user.name, hash, expires_at, audit)?;
    Ok(Enrolment {
        user,
        enrolment_code: code,
        expires_at,
    })
}

/// Revokes device `id` (its next request is refused), ordering it, when `wipe`, to
/// destroy its store at its next contact. The one way the CLI, the admin API, the
/// dashboard and a restore revoke. False when there is no such device.
pub fn revoke_device(
    storage: &dyn Storage,
    id: i64,
    wipe: bool,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    revoke_device_audited(storage, id, wipe, now, None)
}

/// [`revoke_device`], its audit entry stored with the revocation (none when there is
/// no such device).
pub fn revoke_device_audited(
    storage: &dyn Storage,
    id: i64,
    wipe: bool,
    now: DateTime<Utc>,
    audit: Option<&Audit>,
) -> Result<bool, StorageError> {
    if wipe {
        storage.order_wipe_audited(id, now, audit)
    } else {
        storage.revoke_device_audited(id, audit)
    }
}

/// A one-time code with which a supervisor or admin sets her dashboard password.
/// `Debug` never shows the code.
#[derive(serde::Serialize)]
pub struct SignInCode {
    pub user: String,
    /// Shown once; only its hash is stored.
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Removes `name`'s dashboard password, ends her browser sessions and issues a
/// one-time code to set a new one (also how a new supervisor gets her first).
/// Paralegals have no dashboard.
pub fn sign_in_code(
    storage: &dyn Storage,
    name: &str,
    minutes: i64,
) -> Result<SignInCode, AdminError> {
    sign_in_code_audited(storage, name, minutes, None)
}

/// [`sign_in_code`], its audit entry stored with the code.
pub fn sign_in_code_audited(
    storage: &dyn Storage,
    name: &str,
    minutes: i64,
    audit: Option<&Audit>,
) -> Result<SignInCode, AdminError> {
    let user = storage
        .user(name)?
        .ok_or_else(|| AdminError::NoUser(name.into()))?;
    if user.role == Role::Paralegal {
        return Err(AdminError::NoDashboard);
    }
    let (code, hash) = auth::new_enrolment_code()?;
    let expires_at = Utc::now() + Duration::minutes(minutes);
    if !storage.reset_password_audited(&user.name, hash, expires_at, audit)? {
        return Err(AdminError::NoUser(name.into()));
    }
    Ok(SignInCode {
        user: user.name,
        code,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_codes_never_reach_debug_output() {
        let user = User {
            id: 1,
            name: "merita".into(),
            role: Role::Supervisor,
            team: Some("prizren".into()),
            disabled: false,
        };
        let e = Enrolment {
            user,
            enrolment_code: "ABCD-EFGH-JKMN".into(),
            expires_at: Utc::now(),
        };
        let c = SignInCode {
            user: "merita".into(),
            code: "PQRS-TVWX-YZ01".into(),
            expires_at: Utc::now(),
        };
        let shown = format!("{e:?} {c:?}");
        assert!(shown.contains("merita"), "{shown}");
        assert!(
            !shown.contains("ABCD") && !shown.contains("PQRS"),
            "{shown}"
        );
    }
}
