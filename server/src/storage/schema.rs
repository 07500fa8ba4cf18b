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
    // 4: the supervisors' dashboard.
    //
    // `record_index`: a summary of each record beside it, written in the same
    // transaction as the record, so lists and counts never load documents. It repeats
    // what scope, filters and order need of `records` (owner, team, assignee, status,
    // last_seq): `records` rows carry documents, so a list that read them would touch
    // a page or more per record. `created_at` is the record's own time as fixed-width
    // UTC RFC 3339 text (sorts and compares as text, keeps full precision);
    // `updated_at` the server's time of the last write in milliseconds. Records stored
    // before this step are indexed by `index::backfill` when the server starts.
    // Its indexes serve the scopes in list order; filters and duplicate hints run
    // within a scope's rows, which are small (10,000 of them are read in milliseconds),
    // so an index per filter would cost every sync write and save a list little.
    //
    // `passwords` and `password_codes`: PHC strings (Argon2id, hashed by the server) and
    // one-time codes to set one, like enrolment codes.
    //
    // `web_sessions`: browser sessions, by the hash of their cookie's token. Each user
    // signs in through one server-side device (`devices.dashboard`), whose actor makes
    // every change the dashboard makes for her.
    //
    // `audit` and `audit_records` (the records an entry names, in order): the audit
    // trail, `at` in milliseconds; triggers refuse to change or remove an entry,
    // whoever asks.
    //
    // `record_links`: records a supervisor says describe the same person, each pair
    // once (`a < b`).
    "CREATE TABLE record_index (
        record_id     BLOB PRIMARY KEY REFERENCES records(id),
        owner         TEXT NOT NULL,
        team          TEXT,
        assigned_to   TEXT,
        status        TEXT NOT NULL,
        last_seq      INTEGER NOT NULL,
        form          TEXT NOT NULL,
        created_at    TEXT,
        updated_at    INTEGER NOT NULL,
        name_key      TEXT NOT NULL,
        birth_year    INTEGER,
        municipality  TEXT,
        community     TEXT,
        gender        TEXT,
        issue_type    TEXT,
        urgency       TEXT,
        has_conflicts INTEGER NOT NULL,
        name          TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX record_index_team ON record_index(team, last_seq);
    CREATE INDEX record_index_owner ON record_index(owner, last_seq);
    CREATE INDEX record_index_assigned ON record_index(assigned_to, last_seq);

    CREATE TABLE passwords (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        phc     TEXT NOT NULL,
        set_at  INTEGER NOT NULL
    );
    CREATE TABLE password_codes (
        code_hash  BLOB PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    );
    CREATE INDEX password_codes_user ON password_codes(user_id);

    ALTER TABLE devices ADD COLUMN dashboard INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX devices_live_dashboard ON devices(user_id)
        WHERE dashboard AND revoked_at IS NULL;
    CREATE TABLE web_sessions (
        id         INTEGER PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        user_id    INTEGER NOT NULL REFERENCES users(id),
        device_id  INTEGER NOT NULL REFERENCES devices(id),
        csrf       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        ended_at   INTEGER
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_id) WHERE ended_at IS NULL;

    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        user       TEXT,
        device_id  INTEGER,
        session_id INTEGER,
        action     TEXT NOT NULL,
        scope      TEXT NOT NULL,
        peer       TEXT
    );
    CREATE INDEX audit_user ON audit(user, seq);
    CREATE INDEX audit_action ON audit(action, seq);
    CREATE INDEX audit_at ON audit(at);
    CREATE TABLE audit_records (
        seq       INTEGER NOT NULL,
        pos       INTEGER NOT NULL,
        record_id BLOB NOT NULL,
        PRIMARY KEY (seq, pos)
    ) WITHOUT ROWID;
    CREATE INDEX audit_records_record ON audit_records(record_id, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

    CREATE TABLE record_links (
        a         BLOB NOT NULL REFERENCES records(id),
        b         BLOB NOT NULL REFERENCES records(id),
        linked_by TEXT NOT NULL,
        linked_at INTEGER NOT NULL,
        PRIMARY KEY (a, b),
        CHECK (a < b)
    );
    CREATE INDEX record_links_b ON record_links(b);",
    // 5: token rotation: the token a device rotated away from stays valid until the
    // device first uses the new one or `prev_token_until` passes, so a rotation whose
    // answer was lost does not lock the device out.
    "ALTER TABLE devices ADD COLUMN prev_token_hash BLOB;
    ALTER TABLE devices ADD COLUMN prev_token_until INTEGER;
    CREATE INDEX devices_prev_token ON devices(prev_token_hash) WHERE prev_token_hash IS NOT NULL;",
    // 6: the store id: random, made with the database, replaced by `intake-server
    // restore`. Every sync answer carries it, so a device notices a server rolled back
    // to a backup and pushes again what the backup lacks.
    "CREATE TABLE store_identity (
        only     INTEGER PRIMARY KEY CHECK (only = 1),
        store_id TEXT NOT NULL
    );
    INSERT INTO store_identity (only, store_id) VALUES (1, lower(hex(randomblob(16))));",
    // 7: lost phones (issue 12): a revoke can order a wipe. `wipe_ordered_at` when the
    // admin ordered it, `wipe_sent_at` when the server first answered the device's
    // token with the order, `wiped_at` when the device confirmed (`POST /v1/wiped`).
    "ALTER TABLE devices ADD COLUMN wipe_ordered_at INTEGER;
    ALTER TABLE devices ADD COLUMN wipe_sent_at INTEGER;
    ALTER TABLE devices ADD COLUMN wiped_at INTEGER;",
    // 8: erasure and retention.
    //
    // `erasures`: a record an admin erased for good (or retention did). Nothing of its
    // content is kept: its id, the log position the erasure took (`seq`, from the log's
    // own AUTOINCREMENT sequence, so the log head never goes back when a record's last
    // entries go and devices are told in log order), who it belonged to (owner, team,
    // assignee: only devices whose user could see it are told) and when. Who erased it
    // and why is in the audit trail. `erasure_users`: users reassigned away from it
    // whose devices may still hold it (their `access_revoked` rows go with the record).
    // A push to an erased record is refused: the server never recreates it.
    //
    // `record_index.closed_at` (milliseconds, the server's clock): when the record's
    // status last became `closed`; cleared when it reopens. The triggers keep it on
    // every write of the index. Records already closed get the time of this migration:
    // when they closed is not known, and retention must not erase them at once.
    "CREATE TABLE erasures (
        seq         INTEGER PRIMARY KEY,
        record_id   BLOB NOT NULL UNIQUE,
        owner       TEXT NOT NULL,
        team        TEXT,
        assigned_to TEXT,
        erased_at   INTEGER NOT NULL
    );
    CREATE INDEX erasures_owner ON erasures(owner, seq);
    CREATE INDEX erasures_team ON erasures(team, seq);
    CREATE INDEX erasures_assigned ON erasures(assigned_to, seq);
    CREATE TABLE erasure_users (
        seq  INTEGER NOT NULL,
        user TEXT NOT NULL,
        PRIMARY KEY (user, seq)
    ) WITHOUT ROWID;

    ALTER TABLE record_index ADD COLUMN closed_at INTEGER;
    UPDATE record_index SET closed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
        WHERE status = 'closed';
    CREATE INDEX record_index_closed ON record_index(closed_at) WHERE closed_at IS NOT NULL;
    CREATE TRIGGER record_index_closed_insert AFTER INSERT ON record_index
        WHEN NEW.status = 'closed'
        BEGIN
            UPDATE record_index SET closed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
                WHERE record_id = NEW.record_id;
        END;
    CREATE TRIGGER record_index_closed_update AFTER UPDATE OF status ON record_index
        WHEN (NEW.status = 'closed') IS NOT (OLD.status = 'closed')
        BEGIN
            UPDATE record_index SET closed_at = CASE WHEN NEW.status = 'closed'
                THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000 END
                WHERE record_id = NEW.record_id;
        END;",
    // 9: clock skew (issue 13). `log.received_at` (milliseconds, the server's clock):
    // when the server stored the change. A change's own time is the device's clock,
    // which can be a year off; pages show the receipt beside it and say when the
    // device's clock was clearly wrong (`intake_shared::skew`). Entries stored before
    // this step have none (NULL): their receipt is not known.
    "ALTER TABLE log ADD COLUMN received_at INTEGER;",
    // 10: dashboard forms posted once. `used_forms`: the one-time token of each stored
    // dashboard form (a random nonce rendered into it), whose user posted it, and the
    // answer it got, written in the same transaction as the form's change and its audit
    // entry. A supervisor whose answer was lost posts the form again: its token is
    // found, the first answer is given again, nothing is written twice.
    "CREATE TABLE used_forms (
        token TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        answer TEXT NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 11: the log by record. A record's receipts are read for its dashboard page and
    // sent with each document a device pulls (protocol v6); without this index each
    // read scanned the whole log (55 ms at 300,000 entries, measured without
    // encryption). It costs every stored change one more index entry.
    "CREATE INDEX log_record ON log(record_id);",
];

pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Every step as shipped, in order (step `i + 1` is `steps()[i]`): the migration tests
/// pin each by its SHA-256, so an edited shipped step fails them.
pub fn steps() -> &'static [&'static str] {
    MIGRATIONS
}

/// The refusal of a database written by a newer server: an older server must not
/// write to a schema it does not know.
pub fn too_new(version: i64) -> String {
    format!(
        "this database was written by a newer intake-server (schema {version}; this one knows {CURRENT}): upgrade the server"
    )
}

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, CURRENT)
}

/// Runs the steps up to `target` only: tests build the database an earlier server
/// left (the steps are never edited, so steps 1 to `target` are what it ran).
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let steps = MIGRATIONS.iter().take(target.clamp(0, CURRENT) as usize);
    for (i, step) in steps.enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
