//! The rest of [`Storage`] on PostgreSQL (wipe orders, the record index and lists,
//! links, passwords and sessions, the audit trail, erasure and retention), each method
//! handing a pooled connection to its module: [`super::accounts`], [`super::listing`],
//! [`super::erasure`].

use chrono::{DateTime, Utc};
use intake_shared::RecordId;

use super::*;

impl Storage for PgStorage {
    fn order_wipe_audited(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::order_wipe(&mut *self.conn()?, id, now, audit)
    }

    fn wipe_order(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<bool> {
        accounts::wipe_order(&mut *self.conn()?, token_hash, now)
    }

    fn confirm_wipe(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<i64>> {
        accounts::confirm_wipe(&mut *self.conn()?, token_hash, now)
    }

    fn list_records(
        &self,
        scope: &Scope,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Listed>, usize)> {
        listing::list(&mut *self.conn()?, scope, filter, offset, limit)
    }

    fn listed_all(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<Listed>> {
        listing::listed_all(&mut *self.conn()?, scope, filter)
    }

    fn records_matching(&self, scope: &Scope, filter: &ListFilter) -> Result<Vec<StoredRecord>> {
        listing::records_matching(&mut *self.conn()?, scope, filter)
    }

    fn duplicate_groups(&self, scope: &Scope) -> Result<Vec<Vec<Listed>>> {
        listing::duplicate_groups(&mut *self.conn()?, scope)
    }

    fn link_records_audited(
        &self,
        a: RecordId,
        b: RecordId,
        by: &str,
        at: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<()> {
        listing::link(&mut *self.conn()?, a, b, by, at, audit)
    }

    fn linked(&self, id: RecordId) -> Result<Vec<RecordId>> {
        listing::linked(&mut *self.conn()?, id)
    }

    fn unindexed(&self, limit: usize) -> Result<Vec<StoredRecord>> {
        listing::unindexed(&mut *self.conn()?, limit)
    }

    fn set_summaries(&self, summaries: &[(RecordId, RecordSummary)]) -> Result<()> {
        listing::set_summaries(&mut *self.conn()?, summaries)
    }

    fn reset_password_audited(
        &self,
        user: &str,
        code_hash: [u8; 32],
        expires: DateTime<Utc>,
        audit: Option<&Audit>,
    ) -> Result<bool> {
        accounts::reset_password(&mut *self.conn()?, user, code_hash, expires, audit)
    }

    fn redeem_password_code(
        &self,
        code_hash: [u8; 32],
        now: DateTime<Utc>,
        phc: &str,
    ) -> Result<Option<User>> {
        accounts::redeem_password_code(&mut *self.conn()?, code_hash, now, phc)
    }

    fn password(&self, user: &str) -> Result<Option<(User, String)>> {
        accounts::password(&mut *self.conn()?, user)
    }

    fn create_session(
        &self,
        token_hash: [u8; 32],
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Option<WebSession>> {
        accounts::create_session(&mut *self.conn()?, token_hash, user, csrf, now, expires)
    }

    fn session(&self, token_hash: [u8; 32], now: DateTime<Utc>) -> Result<Option<WebSession>> {
        accounts::session(&mut *self.conn()?, token_hash, now)
    }

    fn extend_session(&self, id: i64, expires: DateTime<Utc>) -> Result<()> {
        accounts::extend_session(&mut *self.conn()?, id, expires)
    }

    fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
        accounts::end_session(&mut *self.conn()?, token_hash)
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        audit::append_audit(&mut *self.conn()?, entry)
    }

    fn used_form(&self, user: &str, token: &str) -> Result<Option<String>> {
        audit::used_form(&mut *self.conn()?, user, token)
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<(i64, AuditEntry)>, usize)> {
        audit::audit_entries(&mut *self.conn()?, filter, offset, limit)
    }

    fn device_users(&self) -> Result<HashMap<String, (i64, String, String)>> {
        // An actor re-enrolled after a revocation belongs to two rows; the newer wins.
        Ok(self
            .conn()?
            .query(
                "SELECT d.actor, d.id, u.name, d.label FROM devices d JOIN users u ON u.id = d.user_id
                 ORDER BY d.id",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    hex::encode(r.get::<_, &[u8]>(0)),
                    (r.get(1), r.get(2), r.get(3)),
                )
            })
            .collect())
    }

    fn erase(&self, erasures: &[(RecordId, AuditEntry)]) -> Result<Vec<Option<u64>>> {
        erasure::erase(&mut *self.conn()?, erasures)
    }

    fn erased(&self, id: RecordId) -> Result<bool> {
        erasure::erased(&mut *self.conn()?, id)
    }

    fn erased_ids(&self) -> Result<Vec<RecordId>> {
        erasure::erased_ids(&mut *self.conn()?)
    }

    fn closed_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(RecordId, DateTime<Utc>)>> {
        erasure::closed_before(&mut *self.conn()?, cutoff)
    }

    fn traces(&self, id: RecordId) -> Result<Vec<&'static str>> {
        erasure::traces(&mut *self.conn()?, id)
    }
}
