//! Attempt counters shared by every server on the database (issue 14): the enrolment
//! and password-code limiter and the dashboard sign-in limiter count here instead of in
//! one process's memory, so an attacker who spreads guesses over N servers behind the
//! load balancer gets the same number of attempts as against one.
//!
//! A counter is a row per key (the SHA-256 of what is counted) with the end of its
//! fixed window. Taking an attempt locks the rows of all its keys (in key order, so two
//! attempts never wait on each other in a cycle), starts a new window on a row whose
//! window ended, refuses when any is at its limit and counts on all of them otherwise:
//! check and count in one transaction, as the in-memory limiters do under their lock.

use ::postgres::Client;

use super::super::{Counted, Result, SharedAttempts};
use super::Pool;

pub(super) struct PgAttempts {
    pub(super) pool: Pool,
}

impl SharedAttempts for PgAttempts {
    fn take(
        &self,
        keys: &[([u8; 32], u32)],
        window_secs: i64,
        now: i64,
    ) -> Result<std::result::Result<Counted, u64>> {
        let mut conn = self.pool.get().map_err(super::pool_error)?;
        take(&mut conn, keys, window_secs, now)
    }

    fn give_back(&self, counted: &[([u8; 32], i64)]) -> Result<()> {
        let mut conn = self.pool.get().map_err(super::pool_error)?;
        let mut tx = conn.transaction()?;
        for (key, window_end) in counted {
            // Only in the window it was counted in: a later window starts from zero.
            tx.execute(
                "UPDATE attempt_counts SET count = GREATEST(count - 1, 0)
                 WHERE key = $1 AND window_end = $2",
                &[&key.as_slice(), window_end],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn take(
    client: &mut Client,
    keys: &[([u8; 32], u32)],
    window_secs: i64,
    now: i64,
) -> Result<std::result::Result<Counted, u64>> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let mut tx = client.transaction()?;
    // Counters whose window ended are worth nothing: drop them (any key's).
    tx.execute("DELETE FROM attempt_counts WHERE window_end <= $1", &[&now])?;
    let fresh_end = now + window_secs;
    let mut counted = Vec::with_capacity(sorted.len());
    for (key, limit) in &sorted {
        // Made, or locked as it is: the upsert takes the row's lock until commit, so
        // a concurrent attempt on the same key waits and then sees this one's count.
        let row = tx.query_one(
            "INSERT INTO attempt_counts (key, window_end, count) VALUES ($1, $2, 0)
             ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
             RETURNING window_end, count",
            &[&key.as_slice(), &fresh_end],
        )?;
        let (end, count): (i64, i32) = (row.get(0), row.get(1));
        if count as i64 >= *limit as i64 {
            // Nothing counted: the transaction ends without a write that matters.
            tx.commit()?;
            return Ok(Err((end - now).max(1) as u64));
        }
        counted.push((*key, end));
    }
    for (key, _) in &counted {
        tx.execute(
            "UPDATE attempt_counts SET count = count + 1 WHERE key = $1",
            &[&key.as_slice()],
        )?;
    }
    tx.commit()?;
    Ok(Ok(counted))
}
