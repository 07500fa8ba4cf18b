//! The store's tables and their migrations. Migrations only grow: a shipped step is
//! never edited; each runs in one transaction and bumps `PRAGMA user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Each entry upgrades the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: records as Automerge changes plus a queryable projection.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        form          TEXT NOT NULL,
        form_version  INTEGER NOT NULL,
        status        TEXT NOT NULL,
        review_note   TEXT,
        assigned_to   TEXT,
        municipality  TEXT,
        issue_type    TEXT,
        urgency       TEXT,
        summary       TEXT,
        created_at    TEXT,
        updated_at    TEXT NOT NULL,
        has_conflicts INTEGER NOT NULL,
        heads         BLOB NOT NULL,   -- concatenated 32-byte change hashes
        snapshot      BLOB,            -- compacted document, NULL until first compaction
        change_rows   INTEGER NOT NULL -- rows in `changes` since the snapshot
    );
    CREATE INDEX records_status ON records(status, updated_at);
    CREATE TABLE changes (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        bytes     BLOB NOT NULL
    );
    CREATE INDEX changes_record ON changes(record_id, seq);",
    // 2: sync state: what the server is known to have, and what it refused.
    "ALTER TABLE records ADD COLUMN synced_heads BLOB;      -- heads the server has
    ALTER TABLE records ADD COLUMN dirty INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE records ADD COLUMN rejected_heads BLOB;    -- heads last refused
    ALTER TABLE records ADD COLUMN sync_error TEXT;        -- the server's reason
    CREATE INDEX records_dirty ON records(dirty) WHERE dirty = 1;",
    // 3: push saved change rows as they are, without loading the record. A row holds
    // the changes one save added; `unpushed` marks rows of local edits the server has
    // not acknowledged (since step 6, only rows past the record's `pushed_seq`).
    // `push_all` says those rows are not the whole story (a compaction folded unpushed
    // changes into the snapshot, or the server lost some): the next push derives its
    // changes from the document instead. Records already waiting are pushed that way
    // once.
    "ALTER TABLE changes ADD COLUMN unpushed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE records ADD COLUMN push_all INTEGER NOT NULL DEFAULT 0;
    UPDATE records SET push_all = 1 WHERE dirty = 1;",
    // 4: sync over a link that keeps cutting.
    // `wanted`: records to fetch whole (changes arrived whose history the device
    // lacks), kept with the cursor that passed them until the server sends them.
    // `records.removal`: the record was reassigned away while it held unsynced edits:
    // pushed, then purged; the page that said so keeps its cursor in `meta.held_cursor`
    // until then. `download`/`download_pieces`: the one large item being received in
    // pieces, kept across cuts and restarts.
    "CREATE TABLE wanted (record_id TEXT PRIMARY KEY);
    ALTER TABLE records ADD COLUMN removal INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE download (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        record_id BLOB NOT NULL,
        kind      INTEGER NOT NULL,
        digest    BLOB NOT NULL,
        total     INTEGER NOT NULL
    );
    CREATE TABLE download_pieces (
        offset INTEGER PRIMARY KEY,
        bytes  BLOB NOT NULL
    );",
    // 5: clock skew (issue 13): when the server stored each change pulled from it
    // (seconds since the epoch, the server's clock), so times other devices' clocks
    // gave can be marked when they were clearly wrong. Shown only, never decides.
    "CREATE TABLE receipts (
        record_id   TEXT NOT NULL,
        hash        BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (record_id, hash)
    ) WITHOUT ROWID;",
    // 6: a push acknowledged is one number on its record (issue 16): change rows up to
    // `pushed_seq` are on the server, whatever their `unpushed` says. Clearing the flag
    // row by row rewrote every pushed change's pages (a change row holds its bytes),
    // which was most of the cost of committing a large push.
    "ALTER TABLE records ADD COLUMN pushed_seq INTEGER NOT NULL DEFAULT 0;",
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Every step as shipped, in order (step `i + 1` is `steps()[i]`): the migration tests
/// pin each by its SHA-256 and build stores of earlier versions with them.
pub fn steps() -> &'static [&'static str] {
    MIGRATIONS
}

/// Brings the database up to [`CURRENT`]. A database from a newer app is refused
/// rather than written to.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT {
        return Err(StoreError::TooNew {
            version,
            supported: CURRENT,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
