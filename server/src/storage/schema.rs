//! The server database's tables and forward-only migrations (`PRAGMA user_version`,
//! one transaction per step; a shipped step is never edited).

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: users, enrolment, devices, records and the append-only change log.
    "CREATE TABLE users (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL,
        team       TEXT,
        disabled   INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE enrolment_codes (
        code_hash  BLOB PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    );
    CREATE TABLE devices (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        token_hash  BLOB NOT NULL UNIQUE,
        actor       BLOB NOT NULL,
        label       TEXT NOT NULL,
        enrolled_at INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE UNIQUE INDEX devices_live_actor ON devices(actor) WHERE revoked_at IS NULL;
    CREATE TABLE records (
        id          BLOB PRIMARY KEY,
        owner       TEXT NOT NULL,
        team        TEXT,
        assigned_to TEXT,
        status      TEXT NOT NULL,
        doc         BLOB NOT NULL,
        heads       BLOB NOT NULL,
        last_seq    INTEGER NOT NULL
    );
    CREATE INDEX records_owner ON records(owner);
    CREATE INDEX records_assigned ON records(assigned_to);
    CREATE INDEX records_team ON records(team, last_seq);
    CREATE INDEX records_last_seq ON records(last_seq);
    CREATE TABLE log (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id BLOB NOT NULL,
        hash      BLOB NOT NULL UNIQUE,
        device_id INTEGER NOT NULL,
        bytes     BLOB NOT NULL
    );
    CREATE TABLE access_revoked (
        seq       INTEGER NOT NULL,
        user      TEXT NOT NULL,
        record_id BLOB NOT NULL
    );
    CREATE INDEX access_revoked_user ON access_revoked(user, seq);",
    // 2: the device all of a record's changes came from, if one did: a fresh device's
    // first pull need not send a device its own records back.
    "ALTER TABLE records ADD COLUMN sole_device INTEGER;",
    // 3: late delivery and uploads in pieces.
    //
    // `late_grants`: a device whose user was reassigned away from a record may still
    // deliver the edits it made before it knew. The server decides until when from its
    // own record: a grant per live device of that user, `announced` when a page told
    // the device (the page's cursor), `closed` once the device has sent a cursor at or
    // past that page — it has committed the page, so it knows. A device enrolled later
    // has no grant. Revocations from before this step become grants announced at their
    // log position (the rule they had).
    //
    // `uploads`: one upload in pieces per device (a record too large for one request),
    // its pieces kept until the next upload replaces them, so the answer to a last piece
    // that was lost can be given again.
    "CREATE TABLE late_grants (
        device_id   INTEGER NOT NULL,
        record_id   BLOB NOT NULL,
        revoked_seq INTEGER NOT NULL,
        announced   INTEGER,
        closed      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, record_id)
    );
    INSERT OR IGNORE INTO late_grants (device_id, record_id, revoked_seq, announced)
        SELECT d.id, a.record_id, a.seq, a.seq FROM access_revoked a
        JOIN users u ON u.name = a.user JOIN devices d ON d.user_id = u.id
        WHERE d.revoked_at IS NULL;
    CREATE TABLE uploads (
        device_id INTEGER PRIMARY KEY,
        record_id BLOB NOT NULL,
        digest    BLOB NOT NULL,
        total     INTEGER NOT NULL,
        have      INTEGER NOT NULL
    );
    CREATE TABLE upload_pieces (
        device_id INTEGER NOT NULL,
        offset    INTEGER NOT NULL,
        bytes     BLOB NOT NULL,
        PRIMARY KEY (device_id, offset)
    );",
];

pub const CURRENT: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
