//! Support for `tests/tests/e2e/kill_mid_sync.rs` and `server_kill.rs`: the real server
//! as a child process (`intake-test-server`) on a fixed loopback address over a data
//! directory, which a test SIGKILLs at any moment and starts again on the same address
//! and data. Killed and reaped when dropped, so a failing test leaves no server behind.

use std::io::{BufRead, BufReader, Lines};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The server as a child process.
pub struct ServerProcess {
    dir: PathBuf,
    pub addr: SocketAddr,
    /// Shared with a killer thread.
    pub child: Arc<Mutex<Option<Child>>>,
    /// Kept open: the server must never meet a closed stdout.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    /// The path of `intake-test-server` (`env!("CARGO_BIN_EXE_…")` exists only in the
    /// test that calls this).
    bin: PathBuf,
}

impl ServerProcess {
    /// Starts `bin` (the `intake-test-server` binary) over `dir` on `addr`.
    pub fn start(bin: &Path, dir: &Path, addr: SocketAddr) -> ServerProcess {
        let mut server = ServerProcess {
            dir: dir.to_path_buf(),
            addr,
            child: Arc::new(Mutex::new(None)),
            stdout: None,
            bin: bin.to_path_buf(),
        };
        server.spawn();
        server
    }

    /// Starts the process and waits until it says it is listening.
    fn spawn(&mut self) {
        let mut child = Command::new(&self.bin)
            .arg(&self.dir)
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start intake-test-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening") => {}
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the server did not start on {}: {other:?}, {status:?}",
                    self.addr
                );
            }
        }
        self.stdout = Some(lines);
        *self.child.lock().unwrap() = Some(child);
    }

    /// SIGKILLs the process now (if it still runs); true if it was running.
    pub fn kill(child: &Mutex<Option<Child>>) -> bool {
        let mut child = child.lock().unwrap();
        match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)) && c.kill().is_ok(),
            None => false,
        }
    }

    /// Reaps the killed process and starts a new one on the same address and data.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            c.wait().unwrap();
        }
        self.spawn();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = guard.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback address: bound once to find a port, then released for the server.
pub fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// What the end-of-run checks of a kill test found.
#[derive(Debug, Default)]
pub struct Findings {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub diverged: Vec<String>,
}

/// Checks one replica's copy of a record (`who` holds it) against the server's heads and
/// the comments written to it: the same heads (converged), every comment once (none
/// lost, none twice), no comment nobody wrote.
pub fn check_copy(
    who: &str,
    r: &mut intake_shared::Record,
    heads: &[[u8; 32]],
    comments: &[String],
    f: &mut Findings,
) {
    let id = r.id();
    if r.heads() != heads {
        f.diverged.push(format!("{who}: record {id}"));
    }
    let texts: Vec<String> = r.comments().into_iter().map(|c| c.text).collect();
    if texts.len() > comments.len() {
        f.duplicated.push(format!(
            "{who}: record {id} has {} comments, {} were written",
            texts.len(),
            comments.len()
        ));
    }
    for c in comments {
        match texts.iter().filter(|t| *t == c).count() {
            0 => f.lost.push(format!("{who}: record {id} lacks {c:?}")),
            1 => {}
            n => f
                .duplicated
                .push(format!("{who}: record {id} has {c:?} {n} times")),
        }
    }
}

/// The server database's own checks after a kill run: `PRAGMA integrity_check`'s
/// answer, and the log holding each change once (a change stored twice is noted in
/// `f.duplicated`). Returns the integrity answer and the log's entry count.
pub fn check_database(db: &mut crate::Db, f: &mut Findings) -> (String, i64) {
    let integrity = match db {
        crate::Db::Sqlite(conn) => conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap(),
        // PostgreSQL's nearest check: amcheck verifies every B-tree index of the
        // database against its table's rows, and raises an error at the first fault.
        crate::Db::Postgres(_) => {
            db.execute("CREATE EXTENSION IF NOT EXISTS amcheck", &[])
                .expect("amcheck (in PostgreSQL's own contrib)");
            let checked = db.count(
                "SELECT count(bt_index_check(c.oid, true)) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_am am ON am.oid = c.relam \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE am.amname = 'btree' AND n.nspname = 'public'",
                &[],
            );
            assert!(checked > 0, "no index checked");
            "ok".to_string()
        }
    };
    let row = &db.rows("SELECT count(*), count(DISTINCT hash) FROM log", &[])[0];
    let (entries, distinct) = (row[0].int(), row[1].int());
    if entries != distinct {
        f.duplicated.push(format!(
            "the log holds {entries} entries, {distinct} hashes"
        ));
    }
    (integrity, entries)
}

/// The log holds exactly the changes of the server's document of record `id`: more is
/// a duplicate, fewer a loss.
pub fn check_log(
    db: &mut crate::Db,
    id: intake_shared::RecordId,
    doc: &mut intake_shared::Record,
    f: &mut Findings,
) {
    let logged = db.count(
        "SELECT count(*) FROM log WHERE record_id = ?1",
        &[crate::Cell::Bytes(id.as_uuid().as_bytes().to_vec())],
    );
    let changes = doc.change_count() as i64;
    let line = format!("record {id}: {logged} log entries, {changes} changes in its document");
    if logged > changes {
        f.duplicated.push(line);
    } else if logged < changes {
        f.lost.push(line);
    }
}
