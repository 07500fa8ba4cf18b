//! Syncs take turns (issue 16): at most `[limits] max_syncs_at_once` do their work at
//! once, and one that waits longer than `max_sync_wait_ms` for its turn is answered
//! `503 busy` with a `Retry-After` at once, instead of queueing until the device times
//! out. Past the server's knee that is the only error devices see (`intake-bench load`
//! measures it under load).

use intake_server::Settings;
use intake_server::config::Limits;
use intake_server::storage::Role;
use intake_shared::protocol::{CONTENT_TYPE, PROTOCOL_VERSION, VERSION_HEADER};
use intake_tests::TestServer;
use intake_tests::craft;

/// Posts `body` (an encoded request, zstd) as `token`: status and `Retry-After`.
fn post(server: &TestServer, token: &str, body: Vec<u8>) -> (u16, Option<String>) {
    let reply = server
        .http()
        .post(format!("{}/v1/sync", server.url))
        .header(VERSION_HEADER, PROTOCOL_VERSION.to_string())
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "zstd")
        .bearer_auth(token)
        .body(body)
        .send()
        .expect("a sync request");
    let retry = reply
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (reply.status().as_u16(), retry)
}

#[test]
fn a_sync_that_waits_too_long_for_its_turn_is_told_to_come_back() {
    let server = TestServer::start_with(Settings {
        limits: Limits {
            max_syncs_at_once: 1,
            max_sync_wait_ms: 200,
            ..Limits::default()
        },
        ..Settings::default()
    });
    let drita = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let besa = server.user_device("besa", Role::Paralegal, Some("prizren"));

    // Drita's first sync pushes 2,000 records: seconds of work in a debug build, holding
    // the one turn.
    let who = craft::identity(&drita, "drita", 1);
    let push = (0..2_000)
        .map(|n| craft::push_of(&mut craft::new_record(&who, n), &[]))
        .collect();
    let big = zstd::bulk::compress(&craft::request(0, push, Vec::new()).encode(), 3).unwrap();
    let noop =
        zstd::bulk::compress(&craft::request(0, Vec::new(), Vec::new()).encode(), 3).unwrap();

    std::thread::scope(|s| {
        let heavy = s.spawn(|| post(&server, &drita.token, big));
        // Besa syncs again and again while it works: those that find the turn taken for
        // longer than 200 ms are told to come back; none waits longer than that.
        let mut answers = Vec::new();
        while !heavy.is_finished() {
            let started = std::time::Instant::now();
            let (status, retry) = post(&server, &besa.token, noop.clone());
            answers.push((status, retry, started.elapsed()));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (status, _) = heavy.join().unwrap();
        assert_eq!(status, 200, "the push that held the turn");
        let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
        assert!(
            !busy.is_empty(),
            "no sync was refused while the turn was taken: {answers:?}"
        );
        for (status, retry, took) in &answers {
            assert!(
                *status == 200 || *status == 503,
                "only 200 or 503: {answers:?}"
            );
            if *status == 503 {
                assert_eq!(retry.as_deref(), Some("2"), "{answers:?}");
                assert!(
                    took.as_millis() < 2_000,
                    "a refusal took {took:?}: it waited for the turn"
                );
            }
        }
    });
    // With the turn free again, Besa syncs.
    let noop =
        zstd::bulk::compress(&craft::request(0, Vec::new(), Vec::new()).encode(), 3).unwrap();
    assert_eq!(post(&server, &besa.token, noop).0, 200);
}
