//! A server reaching its PostgreSQL database over TLS (issue 14): a throwaway cluster
//! that refuses plain TCP, with a certificate for 127.0.0.1 signed by a test CA
//! (`intake_tests::postgres::tls_database`, `intake_tests::tls::Certs`). The rules for
//! a database on another machine are unit-tested in `storage/postgres/tls.rs`, since
//! the tests only talk to loopback.

use intake_server::storage::Role;
use intake_server::storage::postgres::PgStorage;
use intake_shared::Value;
use intake_tests::TestDevice;
use intake_tests::pg_server::PgServer;
use intake_tests::tls::Certs;

#[test]
fn a_server_reaches_its_database_over_tls_checked_against_database_ca() {
    let certs = Certs::make().expect("certificates");
    let Some(db) = intake_tests::postgres::tls_database(
        "postgres_tls::a_server_reaches_its_database_over_tls_checked_against_database_ca",
        &certs.chain,
        &certs.key,
    ) else {
        return;
    };
    let tls_url = format!("{}?sslmode=require", db.url);

    // The cluster refuses plain connections (loopback is plain unless asked).
    let e = PgStorage::connect(&db.url).expect_err("a plain connection");
    assert!(e.to_string().contains("no encryption"), "{e}");

    // A certificate the server cannot check is refused: the system's CAs do not know the
    // test CA, and another CA did not sign it.
    let e = PgStorage::connect(&tls_url).expect_err("an unknown issuer");
    let e = e.to_string();
    assert!(
        e.contains("certificate") || e.contains("database_ca"),
        "{e}"
    );
    let other = Certs::make().expect("another CA");
    let e = PgStorage::connect_with_ca(&tls_url, Some(&other.ca)).expect_err("another CA");
    assert!(e.to_string().contains("certificate"), "{e}");

    // With the CA that signed it, the server runs there and a device syncs through it.
    let settings = intake_server::Settings {
        workers: 2,
        database_ca: Some(certs.ca.clone()),
        ..intake_server::Settings::default()
    };
    let server = PgServer::start_with(&tls_url, settings);
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let mut drita = TestDevice::enroll_at(&server.url, "drita", &code);
    drita.create(&[("full_name", Value::Text("Arta Krasniqi".into()))]);
    let summary = drita.sync().expect("sync over a TLS database");
    assert_eq!(summary.sent, 1);

    // Every connection of this database is encrypted, as PostgreSQL itself reports.
    let mut client = PgStorage::client(&tls_url, Some(&certs.ca)).expect("a TLS client");
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = current_database()",
            &[],
        )
        .unwrap();
    let (encrypted, all): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 2, "the server's pool and this client: {all}");
    assert_eq!(encrypted, all, "a plain connection to the database");
}
