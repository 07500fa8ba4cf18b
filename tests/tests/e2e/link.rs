//! The bad 2G link (`intake_tests::link`) behaves as it models: what it delivers is an
//! exact prefix of what was sent, each way; a connection is cut after exactly its budget,
//! the same seed replays the same cuts, and request/response traffic meets cuts both
//! mid-request and mid-response; without cuts a megabyte crosses whole, no faster than the
//! link's rate; dropping it does not wait for traffic in flight. And a real device syncs
//! its records through it to the real server.
//!
//! The tiny servers behind the link are plain `std::net` loops on loopback, one
//! connection at a time, so connection numbers (and budgets) follow the test's order.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use intake_server::storage::Role;
use intake_shared::Value;
use intake_tests::link::{Link, LinkConfig};
use intake_tests::{TestDevice, TestServer};

const SEED: u64 = 0x2a6e_11c4_0b5e_55ed;
/// Gives the first connection a budget of 36,476 bytes (the next ones 96,488, 136,646
/// and 31,339), so the devices' kept-alive connection is cut early in the sync test.
const SYNC_SEED: u64 = 0x2a6e_11c4_0b5e_55f7;

/// Deterministic bytes that do not repeat, so a chunk delivered twice, out of order or
/// from the wrong place breaks the prefix comparison.
fn pattern(len: usize, salt: u64) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads until end of stream or an error (a cut may end either way): what arrived.
fn read_all(mut s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Reads up to `n` bytes: fewer when the stream ends or breaks first.
fn read_up_to(mut s: &TcpStream, n: usize, into: &mut Vec<u8>) -> usize {
    let mut got = 0;
    let mut buf = [0u8; 8192];
    while got < n {
        match s.read(&mut buf[..(n - got).min(8192)]) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                into.extend_from_slice(&buf[..k]);
                got += k;
            }
        }
    }
    got
}

/// A server on loopback that handles `connections` connections one after another with
/// `handle`; joining it gives each one's result, in order.
fn serve<T: Send + 'static>(
    connections: usize,
    handle: impl Fn(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<T>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        (0..connections)
            .map(|_| handle(listener.accept().unwrap().0))
            .collect()
    });
    (addr, thread)
}

/// The 2G link's cuts at a speed where a cut connection takes milliseconds.
fn quick(seed: u64) -> LinkConfig {
    LinkConfig::two_g_fast(seed, 200)
}

/// Uploads more than any budget on `connections` connections in turn, to a server that
/// only reads; returns how many bytes the server got on each.
fn upload_cut_points(config: LinkConfig, connections: usize) -> Vec<u64> {
    let data = pattern(400_000, 1);
    let (addr, sink) = serve(connections, |s| read_all(&s));
    let link = Link::start(addr, config);
    for _ in 0..connections {
        let c = TcpStream::connect(link.addr()).unwrap();
        let _ = (&c).write_all(&data);
        // Waits for the link to close this connection, so the next one gets the next
        // number (and the server accepts them in the same order).
        read_all(&c);
    }
    let received = sink.join().unwrap();
    let stats = link.stats();
    for (n, got) in received.iter().enumerate() {
        let budget = config.budget(n as u64).unwrap();
        assert!((config.cut_min..=config.cut_max).contains(&budget));
        assert_eq!(
            got.len() as u64,
            budget,
            "connection {n}: cut at its budget"
        );
        assert!(data.starts_with(got), "connection {n}: not a prefix");
    }
    let total: u64 = received.iter().map(|r| r.len() as u64).sum();
    assert_eq!(
        (
            stats.connections,
            stats.cuts,
            stats.cuts_up,
            stats.cuts_down
        ),
        (
            connections as u64,
            connections as u64,
            connections as u64,
            0
        ),
        "{stats}"
    );
    assert_eq!((stats.bytes_up, stats.bytes_down), (total, 0), "{stats}");
    received.iter().map(|r| r.len() as u64).collect()
}

#[test]
fn an_upload_is_cut_after_exactly_its_budget_and_the_seed_replays_the_cuts() {
    let first = upload_cut_points(quick(SEED), 6);
    let again = upload_cut_points(quick(SEED), 6);
    assert_eq!(first, again, "the same seed cuts at the same points");
    let other = upload_cut_points(quick(SEED + 1), 6);
    assert_ne!(first, other, "another seed cuts elsewhere");
}

#[test]
fn a_download_is_cut_after_exactly_its_budget() {
    const CONNECTIONS: usize = 4;
    let data = pattern(400_000, 2);
    let for_server = data.clone();
    let (addr, source) = serve(CONNECTIONS, move |mut s| {
        // Fails once the link stops reading and closes: the rest is what a cut refused.
        let _ = s.write_all(&for_server);
    });
    let config = quick(SEED);
    let link = Link::start(addr, config);
    let mut total = 0;
    for n in 0..CONNECTIONS {
        let got = read_all(&TcpStream::connect(link.addr()).unwrap());
        assert_eq!(got.len() as u64, config.budget(n as u64).unwrap());
        assert!(data.starts_with(&got), "connection {n}: not a prefix");
        total += got.len() as u64;
    }
    source.join().unwrap();
    let stats = link.stats();
    assert_eq!((stats.cuts, stats.cuts_down), (4, 4), "{stats}");
    assert_eq!((stats.bytes_up, stats.bytes_down), (0, total), "{stats}");
}

#[test]
fn requests_and_responses_are_cut_both_mid_request_and_mid_response() {
    const CONNECTIONS: usize = 16;
    const REQUEST: usize = 20_000;
    const RESPONSE: usize = 40_000;
    // More exchanges than the largest budget allows (150 KB / 60 KB).
    const EXCHANGES: usize = 4;
    let requests = pattern(REQUEST * EXCHANGES, 3);
    let responses = pattern(RESPONSE * EXCHANGES, 4);
    let for_server = responses.clone();
    let (addr, server) = serve(CONNECTIONS, move |s| {
        let mut got = Vec::new();
        for answer in for_server.chunks(RESPONSE) {
            if read_up_to(&s, REQUEST, &mut got) < REQUEST || (&s).write_all(answer).is_err() {
                break;
            }
        }
        got
    });
    let config = quick(SEED);
    let link = Link::start(addr, config);
    let mut answers = Vec::new();
    for _ in 0..CONNECTIONS {
        let c = TcpStream::connect(link.addr()).unwrap();
        let mut got = Vec::new();
        for request in requests.chunks(REQUEST) {
            if (&c).write_all(request).is_err() || read_up_to(&c, RESPONSE, &mut got) < RESPONSE {
                break;
            }
        }
        read_all(&c);
        answers.push(got);
    }
    let asked = server.join().unwrap();

    let mut mid_request = 0;
    for n in 0..CONNECTIONS {
        let budget = config.budget(n as u64).unwrap();
        assert!(requests.starts_with(&asked[n]), "connection {n}: requests");
        assert!(
            responses.starts_with(&answers[n]),
            "connection {n}: answers"
        );
        assert_eq!((asked[n].len() + answers[n].len()) as u64, budget, "{n}");
        // Where the budget ends within an exchange says which message it cut.
        let into_exchange = budget % (REQUEST + RESPONSE) as u64;
        if (1..=REQUEST as u64).contains(&into_exchange) {
            mid_request += 1;
        }
    }
    let stats = link.stats();
    assert_eq!(stats.cuts, CONNECTIONS as u64, "{stats}");
    assert_eq!(stats.cuts_up, mid_request, "{stats}");
    assert_eq!(stats.cuts_up + stats.cuts_down, stats.cuts, "{stats}");
    assert!(stats.cuts_up > 0 && stats.cuts_down > 0, "{stats}");
}

#[test]
fn without_cuts_a_megabyte_crosses_whole_both_ways_at_the_link_rate() {
    let data = pattern(1 << 20, 5);
    let (addr, echo) = serve(1, |s| {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match (&s).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    got.extend_from_slice(&buf[..k]);
                    if (&s).write_all(&buf[..k]).is_err() {
                        break;
                    }
                }
            }
        }
        got
    });
    let config = LinkConfig::two_g_fast(SEED, 50).without_cuts();
    assert_eq!(config.budget(0), None);
    let link = Link::start(addr, config);
    let started = Instant::now();
    let c = TcpStream::connect(link.addr()).unwrap();
    let sender = {
        let (c, data) = (c.try_clone().unwrap(), data.clone());
        std::thread::spawn(move || {
            (&c).write_all(&data).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        })
    };
    let back = read_all(&c);
    let elapsed = started.elapsed();
    sender.join().unwrap();
    let at_server = echo.join().unwrap().remove(0);
    assert!(
        at_server == data,
        "the server got {} bytes",
        at_server.len()
    );
    assert!(back == data, "the client got {} bytes back", back.len());
    let stats = link.stats();
    assert_eq!((stats.bytes_up, stats.bytes_down), (1 << 20, 1 << 20));
    assert_eq!(stats.cuts, 0);
    // A lower bound cannot be flaky: a megabyte cannot cross faster than the rate.
    let floor = Duration::from_secs_f64((1 << 20) as f64 / config.bytes_per_sec as f64);
    assert!(elapsed >= floor, "{elapsed:?} < {floor:?}: not shaped");
}

#[test]
fn dropping_the_link_does_not_wait_for_traffic_in_flight() {
    const SENT: usize = 200_000;
    let (first_byte, arrived) = std::sync::mpsc::channel();
    let (addr, sink) = serve(1, move |s| {
        let mut got = Vec::new();
        read_up_to(&s, 1, &mut got);
        first_byte.send(()).unwrap();
        got.len() + read_all(&s).len()
    });
    // At the real 2G rate, 200 KB need five seconds.
    let link = Link::start(addr, LinkConfig::two_g(SEED).without_cuts());
    let c = TcpStream::connect(link.addr()).unwrap();
    let sender = std::thread::spawn(move || {
        let _ = (&c).write_all(&pattern(SENT, 6));
    });
    arrived.recv().unwrap();
    let started = Instant::now();
    drop(link);
    let took = started.elapsed();
    sender.join().unwrap();
    let got = sink.join().unwrap().remove(0);
    assert!(
        got < SENT,
        "the link delivered all {got} bytes before stopping"
    );
    assert!(
        took < Duration::from_secs(2),
        "dropping the link took {took:?}"
    );
}

/// Syncs until it succeeds; every failure on the way must be one worth retrying.
fn sync_through(device: &mut TestDevice) -> (intake_client::SyncSummary, usize) {
    for attempt in 1..=50 {
        match device.sync() {
            Ok(summary) => return (summary, attempt),
            Err(e) => assert!(e.is_retryable(), "{}: {e}", device.name),
        }
    }
    panic!("{}: no sync completed in 50 attempts", device.name);
}

#[test]
fn a_device_syncs_twenty_records_over_a_cut_2g_link() {
    const ROUNDS: usize = 4;
    const PER_ROUND: usize = 5;
    const NARRATIVE: usize = 4000;
    let server = TestServer::start();
    let upstream: SocketAddr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    let config = LinkConfig::two_g_fast(SYNC_SEED, 20);
    assert_eq!(
        config.budget(0),
        Some(36_476),
        "the generator changed: pick a new seed"
    );
    let link = Link::start(upstream, config);
    let mut drita = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let mut merita = TestDevice::enroll(&server, "merita", Role::Supervisor, Some("prizren"));
    drita.point_at(&link.url());
    merita.point_at(&link.url());

    // Narratives that compress little, so that the rounds together move more than a
    // connection's budget (the devices share one kept-alive connection, which the link
    // then cuts), while each request and answer stays far below the smallest budget.
    let letters = pattern(ROUNDS * PER_ROUND * NARRATIVE, 7);
    let mut ids = Vec::new();
    let mut attempts = Vec::new();
    for round in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            let i = ids.len();
            let narrative: String = letters[i * NARRATIVE..(i + 1) * NARRATIVE]
                .iter()
                .map(|b| char::from(b'a' + b % 26))
                .collect();
            ids.push(drita.create(&[
                ("full_name", Value::Text(format!("Case {i}"))),
                ("village", Value::Text("Prizren".into())),
                ("narrative", Value::Text(narrative)),
            ]));
        }
        let (pushed, tries) = sync_through(&mut drita);
        assert_eq!(
            (pushed.unsynced, pushed.refused),
            (0, 0),
            "round {round}: {pushed:?}"
        );
        attempts.push(tries);
        let (_, tries) = sync_through(&mut merita);
        attempts.push(tries);
    }

    for (i, id) in ids.iter().enumerate() {
        assert!(
            server.storage.record(*id).unwrap().is_some(),
            "record {i} on the server"
        );
        assert!(merita.has(*id), "the supervisor lacks record {i}");
        let name = merita.record(*id).get("full_name");
        assert_eq!(name, Some(Value::Text(format!("Case {i}"))));
    }
    let stats = link.stats();
    // Not a timing: the rounds move some 100 KB through a connection cut after 36 KB.
    assert!(
        stats.cuts > 0,
        "the link never cut a connection, so nothing here resumed after a cut: {stats}"
    );
    eprintln!("sync attempts (push, pull per round): {attempts:?}; link: {stats}");
}
