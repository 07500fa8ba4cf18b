//! The relay skeleton every loopback proxy of the tests and the benchmark runs on
//! (`intake_tests::relay`): bytes cross whole both ways and each is shown once to the
//! handler (the benchmark's byte counts rest on it), a half-close passes on, a
//! connection the upstream refuses is closed and not left counted, and dropping a relay
//! closes a connection that is still open and joins its thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use intake_tests::kill_mid_sync::free_address;
use intake_tests::relay::{Conn, Handler, Relay, both_ways};

/// Counts the bytes it carries each way, as the benchmark's proxy does.
#[derive(Default)]
struct Counting {
    up: AtomicU64,
    down: AtomicU64,
}

impl Handler for Counting {
    fn serve(&self, conn: Conn) {
        both_ways(
            &conn,
            |b| {
                self.up.fetch_add(b.len() as u64, Ordering::SeqCst);
            },
            |b| {
                self.down.fetch_add(b.len() as u64, Ordering::SeqCst);
            },
        );
    }
}

/// An echo server for one connection: sends back what it reads, and closes when its
/// peer has closed its sending side.
fn echo_once() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut back = s.try_clone().unwrap();
        io::copy(&mut s, &mut back).unwrap();
        back.shutdown(Shutdown::Write).unwrap();
    });
    (addr, echo)
}

/// Whether a read says the peer closed (an end of stream or a reset), not that the
/// read timed out.
fn closed(read: &io::Result<usize>) -> bool {
    match read {
        Ok(n) => *n == 0,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    }
}

/// Waits (at most 5 s) for `done`: the relay's threads end on events of their own.
fn until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn bytes_cross_whole_both_ways_and_the_handler_sees_each_once() {
    let (upstream, echo) = echo_once();
    let relay = Relay::start("relay-test", upstream, Counting::default()).unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sent: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let writer = {
        let mut to = client.try_clone().unwrap();
        let sent = sent.clone();
        // Written while the echo comes back, so neither side's buffers fill up.
        std::thread::spawn(move || {
            to.write_all(&sent).unwrap();
            // The half-close must reach the echo server through the relay, or it
            // never closes and the read below times out.
            to.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    client
        .read_to_end(&mut back)
        .expect("the echo ends with the relay passing both half-closes on");
    writer.join().unwrap();
    echo.join().unwrap();
    assert!(
        back == sent,
        "{} bytes back of {} sent",
        back.len(),
        sent.len()
    );
    let c = relay.handler();
    assert_eq!(
        (c.up.load(Ordering::SeqCst), c.down.load(Ordering::SeqCst)),
        (300_000, 300_000),
        "the handler saw each byte once each way"
    );
    assert_eq!(relay.accepted(), 1);
    assert!(
        until(|| relay.open() == 0 && relay.threads_alive() == 0),
        "a finished connection is closed and its thread ended: open={} threads={}",
        relay.open(),
        relay.threads_alive()
    );
}

#[test]
fn a_connection_the_upstream_refuses_is_closed_and_not_left_counted() {
    // Nothing listens there.
    let relay = Relay::start("relay-test", free_address(), Counting::default()).unwrap();
    let mut client = TcpStream::connect(relay.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let read = client.read(&mut [0u8; 1]);
    assert!(
        closed(&read),
        "the client is closed, not left waiting: {read:?}"
    );
    assert_eq!(relay.accepted(), 1);
    assert!(
        until(|| relay.open() == 0 && relay.threads_alive() == 0),
        "open={} threads={}",
        relay.open(),
        relay.threads_alive()
    );
}

#[test]
fn dropping_a_relay_closes_an_open_connection_and_joins_its_thread() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = Relay::start(
        "relay-test",
        upstream.local_addr().unwrap(),
        Counting::default(),
    )
    .unwrap();
    let mut idle = TcpStream::connect(relay.addr()).unwrap();
    // The upstream accepts and never says anything: the relay's reads block.
    let (_server_side, _) = upstream.accept().unwrap();
    assert_eq!(relay.open(), 1);
    assert_eq!(relay.threads_alive(), 1);

    // Dropped on a thread of its own, so that a drop that never returns fails the test
    // instead of hanging it.
    let (done, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(relay);
        let _ = done.send(());
    });
    dropped
        .recv_timeout(Duration::from_secs(5))
        .expect("the drop returns: the blocked connection thread was woken and joined");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read = idle.read(&mut [0u8; 1]);
    assert!(
        closed(&read),
        "the idle client is closed by the drop: {read:?}"
    );
}
