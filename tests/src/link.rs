//! A loopback TCP proxy that behaves like the weak 2G link of the field, for the
//! end-to-end tests and the benchmark program.
//!
//! The DESIGN names the link every sync must finish on: "about 40 KB/s each way, 300 ms
//! latency, every connection cut after 30–150 KB", some cuts mid-request and some
//! mid-response. [`Link`] reproduces it below HTTP, on bytes, so whatever a device sends
//! meets it the way it would in a village; nothing here knows about requests.
//!
//! The model, each direction on its own (client→server is *up*, server→client *down*,
//! as 2G uplink and downlink are separate channels):
//! - **Serialisation**: bytes leave one after another at [`LinkConfig::bytes_per_sec`]. A
//!   chunk read at time `t` has left at `max(t, when the previous chunk had left) +
//!   len / bytes_per_sec`, so a large body costs its size whatever its neighbours do.
//! - **Propagation**: it is delivered half of [`LinkConfig::rtt`] after it left, so every
//!   request and its answer pay one round trip, however small they are.
//! - **Cuts**: each connection gets a budget drawn uniformly from
//!   [`LinkConfig::cut_min`]`..=`[`LinkConfig::cut_max`] by a generator seeded from
//!   [`LinkConfig::seed`] and the connection's number (in accept order), so a run can be
//!   replayed. Bytes in both directions count against it. The byte that uses it up is the
//!   last one delivered, then both sockets are shut: the peers see an end of stream or a
//!   reset in the middle of whatever they were sending or receiving. Who was sending when
//!   the budget ran out decides whether it was a cut mid-request ([`LinkStats::cuts_up`])
//!   or mid-response ([`LinkStats::cuts_down`]). `cut_max == 0` turns cuts off, for a
//!   clean slow link to compare with.
//!
//! Per direction, a reader thread stamps each chunk (at most 4 KiB) with its delivery time
//! into a short queue and a writer thread sleeps until each chunk is due, so the delay
//! pipelines instead of stalling reads. The queue is the link's buffer: when it is full the
//! sender waits, as its TCP window would make it. Time is real wall-clock time, because
//! the link models one and the benchmark measures what it costs. It is a
//! [`crate::relay::Handler`], like [`crate::proxy`]: dropping the link stops the
//! listener, wakes the writers waiting for a chunk to fall due, shuts every connection
//! and joins every thread.

mod relay;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use relay::{Counters, Shared};

use crate::relay::{Relay, SplitMix};

/// What the link does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Each direction's rate; 0 means no limit.
    pub bytes_per_sec: u64,
    /// The round-trip time: each direction delays by half of it.
    pub rtt: Duration,
    /// The fewest bytes (both directions together) a connection carries before it is cut
    /// (at least 1).
    pub cut_min: u64,
    /// The most bytes a connection carries before it is cut; 0 turns cuts off.
    pub cut_max: u64,
    /// Seeds the budgets: the same seed gives every connection number the same budget.
    pub seed: u64,
}

impl LinkConfig {
    /// The link of the DESIGN: 40,000 B/s each way, 300 ms round trip, every connection
    /// cut after 30,000 to 150,000 bytes.
    pub fn two_g(seed: u64) -> LinkConfig {
        LinkConfig {
            bytes_per_sec: 40_000,
            rtt: Duration::from_millis(300),
            cut_min: 30_000,
            cut_max: 150_000,
            seed,
        }
    }

    /// The same link `factor` times faster (bandwidth times `factor`, delay divided by
    /// it) with the same cut sizes, so a test meets the same cuts in a fraction of the
    /// time. A factor of 0 counts as 1.
    pub fn two_g_fast(seed: u64, factor: u32) -> LinkConfig {
        let factor = factor.max(1);
        let slow = LinkConfig::two_g(seed);
        LinkConfig {
            bytes_per_sec: slow.bytes_per_sec.saturating_mul(u64::from(factor)),
            rtt: slow.rtt / factor,
            ..slow
        }
    }

    /// The same rate and delay, never cut.
    pub fn without_cuts(self) -> LinkConfig {
        LinkConfig {
            cut_min: 0,
            cut_max: 0,
            ..self
        }
    }

    /// How many bytes connection number `connection` (0 for the first accepted) carries
    /// before it is cut; `None` when cuts are off.
    pub fn budget(&self, connection: u64) -> Option<u64> {
        if self.cut_max == 0 {
            return None;
        }
        // A budget of 0 would leave a connection open but dead until someone writes.
        let low = self.cut_min.clamp(1, self.cut_max);
        let span = u128::from(self.cut_max - low) + 1;
        let mut rng = SplitMix(self.seed ^ connection.wrapping_mul(0xa076_1d64_78bd_642f));
        // Multiply-shift maps 64 random bits onto the span without modulo bias.
        let offset = (u128::from(rng.next()) * span) >> 64;
        Some(low + offset as u64)
    }

    /// How long `bytes` take to leave at the link's rate.
    fn serialisation(&self, bytes: u64) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_sec);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// A snapshot of the link's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes delivered to the server.
    pub bytes_up: u64,
    /// Bytes delivered to clients.
    pub bytes_down: u64,
    /// Client connections accepted.
    pub connections: u64,
    /// Connections ended by their budget.
    pub cuts: u64,
    /// Cuts while forwarding client→server: mid-request.
    pub cuts_up: u64,
    /// Cuts while forwarding server→client: mid-response.
    pub cuts_down: u64,
}

impl fmt::Display for LinkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "up={} B down={} B connections={} cuts={} (mid-request={} mid-response={})",
            self.bytes_up,
            self.bytes_down,
            self.connections,
            self.cuts,
            self.cuts_up,
            self.cuts_down
        )
    }
}

/// The running link; stopped (listener, connections, threads) when dropped.
pub struct Link {
    relay: Relay<Shared>,
}

impl Link {
    /// Starts a link on `127.0.0.1:0` in front of `upstream`.
    pub fn start(upstream: SocketAddr, config: LinkConfig) -> Link {
        let shared = Shared {
            config,
            counters: Counters::default(),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        };
        let relay = Relay::start("link", upstream, shared).expect("start the link on loopback");
        Link { relay }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.relay.addr()
    }

    /// The base URL to point a device at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// What the link does, e.g. to know a connection's budget.
    pub fn config(&self) -> LinkConfig {
        self.relay.handler().config
    }

    /// The counters as they are now.
    pub fn stats(&self) -> LinkStats {
        let c = &self.relay.handler().counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        // Each read once, so that `cuts` is the sum of the two shown with it.
        let (cuts_up, cuts_down) = (get(&c.cuts_up), get(&c.cuts_down));
        LinkStats {
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
            connections: get(&c.connections),
            cuts: cuts_up + cuts_down,
            cuts_up,
            cuts_down,
        }
    }

    /// Zeroes the counters, e.g. between the phases of a benchmark. Connections keep
    /// their numbers (and so their budgets): the run stays replayable.
    pub fn reset(&self) {
        let c = &self.relay.handler().counters;
        for a in [
            &c.bytes_up,
            &c.bytes_down,
            &c.connections,
            &c.cuts_up,
            &c.cuts_down,
        ] {
            a.store(0, Ordering::SeqCst);
        }
    }
}
