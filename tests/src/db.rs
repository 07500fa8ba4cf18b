//! [`Db`]: a connection to a test server's database on either backend, for the tests
//! that look at its tables (what was stored, that the audit trail refuses changes) or
//! damage a row on purpose. SQL is written once, in the dialect both backends share:
//! parameters as `?1`, `?2` (turned into PostgreSQL's `$1`, `$2`), identifiers that
//! are keywords in double quotes (`"user"`). Values come back as [`Cell`]s, so that a
//! dump of the same rows compares equal whichever backend held them.

/// A connection to one server's database.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(::postgres::Client),
}

/// One value of a row or a parameter: the types the two schemas use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    /// The integer in this cell (SQLite stores booleans as integers too).
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            Cell::Bool(b) => i64::from(*b),
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The bytes in this cell.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Cell::Bytes(b) => b,
            other => panic!("not bytes: {other:?}"),
        }
    }
}

impl Db {
    /// A new connection to the PostgreSQL database at `url` (a test cluster's, with
    /// no password and no TLS, on loopback).
    pub fn postgres(url: &str) -> Db {
        Db::Postgres(
            ::postgres::Client::connect(url, ::postgres::NoTls)
                .expect("connect to the server's PostgreSQL database"),
        )
    }

    /// Every row `sql` returns.
    pub fn rows(&mut self, sql: &str, params: &[Cell]) -> Vec<Vec<Cell>> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let columns = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let mut out = Vec::new();
                while let Some(row) = rows.next().unwrap() {
                    out.push(
                        (0..columns)
                            .map(|i| from_sqlite(row.get_ref(i).unwrap()))
                            .collect(),
                    );
                }
                out
            }
            Db::Postgres(client) => {
                let values = pg_values(params);
                client
                    .query(&pg_sql(sql), &pg_refs(&values))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|row| (0..row.len()).map(|i| from_pg(row, i)).collect())
                    .collect()
            }
        }
    }

    /// The one integer `sql` returns (a `count(*)`, say).
    pub fn count(&mut self, sql: &str, params: &[Cell]) -> i64 {
        let rows = self.rows(sql, params);
        assert_eq!(rows.len(), 1, "{sql}: one row expected");
        rows[0][0].int()
    }

    /// Runs a statement: the number of rows it changed, or the database's refusal.
    pub fn execute(&mut self, sql: &str, params: &[Cell]) -> Result<u64, String> {
        match self {
            Db::Sqlite(conn) => conn
                .execute(
                    sql,
                    rusqlite::params_from_iter(params.iter().map(sqlite_value)),
                )
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Db::Postgres(client) => {
                let values = pg_values(params);
                client
                    .execute(&pg_sql(sql), &pg_refs(&values))
                    .map_err(|e| match e.as_db_error() {
                        Some(db) => db.message().to_string(),
                        None => e.to_string(),
                    })
            }
        }
    }
}

fn sqlite_value(cell: &Cell) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(n) => Value::Integer(*n),
        Cell::Bool(b) => Value::Integer(i64::from(*b)),
        Cell::Text(t) => Value::Text(t.clone()),
        Cell::Bytes(b) => Value::Blob(b.clone()),
    }
}

fn from_sqlite(value: rusqlite::types::ValueRef<'_>) -> Cell {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        ValueRef::Real(r) => panic!("a REAL column ({r}): neither schema has one"),
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The parameters as values PostgreSQL binds (a NULL as an absent integer).
fn pg_values(params: &[Cell]) -> Vec<Box<dyn ::postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ::postgres::types::ToSql + Sync> {
            match p {
                Cell::Null => Box::new(None::<i64>),
                Cell::Int(n) => Box::new(*n),
                Cell::Bool(b) => Box::new(*b),
                Cell::Text(t) => Box::new(t.clone()),
                Cell::Bytes(b) => Box::new(b.clone()),
            }
        })
        .collect()
}

fn pg_refs(
    values: &[Box<dyn ::postgres::types::ToSql + Sync>],
) -> Vec<&(dyn ::postgres::types::ToSql + Sync)> {
    values.iter().map(|v| v.as_ref()).collect()
}

fn from_pg(row: &::postgres::Row, i: usize) -> Cell {
    use ::postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    let cell = if ty == Type::INT8 {
        row.get::<_, Option<i64>>(i).map(Cell::Int)
    } else if ty == Type::INT4 {
        row.get::<_, Option<i32>>(i).map(|n| Cell::Int(n.into()))
    } else if ty == Type::INT2 {
        row.get::<_, Option<i16>>(i).map(|n| Cell::Int(n.into()))
    } else if ty == Type::BOOL {
        row.get::<_, Option<bool>>(i).map(Cell::Bool)
    } else if ty == Type::TEXT || ty == Type::VARCHAR || ty == Type::NAME {
        row.get::<_, Option<String>>(i).map(Cell::Text)
    } else if ty == Type::BYTEA {
        row.get::<_, Option<Vec<u8>>>(i).map(Cell::Bytes)
    } else {
        panic!(
            "column {} of type {ty}: not one the schema uses",
            row.columns()[i].name()
        )
    };
    cell.unwrap_or(Cell::Null)
}
