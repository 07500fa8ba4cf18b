//! The sync plan: what a device sends next, what an answer means, when to retry and
//! when to stop — as a state machine with no I/O. `client::sync` drives it: it reads
//! what the store holds ([`Holdings`]), asks [`Plan::next`] for the shape of the next
//! round trip, does the store and HTTP work, and reports the answer
//! ([`Plan::answered`]) or the failure ([`Plan::failed`]). Everything that decides is
//! here, so it is tested as tables of transitions (`shared/tests/plan.rs`).
//!
//! The rules (`docs/PROTOCOL.md` § The plan):
//!
//! - **Push first, with a small page.** While records wait, each request pushes up to
//!   the push budget and asks for at most [`PUSH_PAGE`] bytes of page, so a push's
//!   answer is small on a link that keeps cutting. Then pages of the page budget.
//! - **A held page.** When a page removed records that still hold unsynced edits, the
//!   store keeps that page's cursor back; the next requests push those records (again,
//!   even if pushed earlier in this sync) and ask for no page until they are resolved.
//! - **Large items in pieces.** A record too large for the push budget is uploaded in
//!   pieces of the push budget; an item too large for a page comes down in pieces and
//!   is resumed from what the store holds.
//! - **Each record once a sync.** A record pushed in this sync is not pushed again in it,
//!   except once, whole, after `MissingDependencies`, and when a held page needs it.
//! - **Budgets adapt.** A cut or a timeout halves both budgets (not below [`FLOOR`]);
//!   each answered round trip grows them by half again, up to the maximum; the store
//!   keeps them, so the next sync on the same bad link starts small. A 413 halves the
//!   push budget and the records per request.
//! - **Stopping.** Done when nothing waits to be pushed or uploaded, no page is held,
//!   the server said no page is left, nothing wanted is outstanding and no piece is
//!   half-received. A round trip that moves nothing [`STALL_LIMIT`] times in a row ends
//!   the sync too, so a server that keeps answering without progress cannot make the
//!   device loop. A failure is retried at once with smaller budgets up to
//!   [`RETRY_LIMIT`] times in a row, then the sync gives up (retryable: the host's loop
//!   backs off).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::protocol::{Outcome, Rejection, Resume, WireId};

/// Budgets never shrink below this (bytes before compression): about 3–16 KB on the
/// wire, which a link that cuts after 30 KB still carries with a round trip to spare.
pub const FLOOR: u32 = 16 * 1024;
/// The most page a request that pushes asks for: its answer stays small.
pub const PUSH_PAGE: u32 = 16 * 1024;
/// Failed round trips in a row before a sync gives up.
pub const RETRY_LIMIT: u32 = 8;
/// Answered round trips in a row that moved nothing before a sync stops.
pub const STALL_LIMIT: u32 = 3;
/// The most records a request carries unless the server said otherwise: its default
/// limit. (A lower cap would also cost time: a push of fewer records is a smaller body,
/// compressed at a slower zstd level; 1,000 made W1 take 65 % longer.) A server with
/// a lower limit says so at enrolment, or answers 413, and the plan halves.
pub const DEFAULT_MAX_RECORDS: u32 = 10_000;

/// How much one request may carry: bytes of changes pushed, bytes of page asked for
/// (both before compression), and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    pub push: u32,
    pub page: u32,
    pub records: u32,
}

impl Budgets {
    /// After a retryable failure: half of each byte budget, not below [`FLOOR`].
    pub fn shrink(self) -> Budgets {
        // Not below the floor, nor raised to it when the app asked for less.
        Budgets {
            push: (self.push / 2).max(FLOOR.min(self.push)),
            page: (self.page / 2).max(FLOOR.min(self.page)),
            records: self.records,
        }
    }

    /// After an answered round trip: half as much again, up to `max`.
    pub fn grow(self, max: Budgets) -> Budgets {
        let up = |v: u32, m: u32| v.saturating_add(v / 2).min(m).max(v.min(m));
        Budgets {
            push: up(self.push, max.push),
            page: up(self.page, max.page),
            records: up(self.records, max.records),
        }
    }

    /// Each budget at most `max` and at least [`FLOOR`] (records at least 1).
    pub fn within(self, max: Budgets) -> Budgets {
        Budgets {
            push: self.push.min(max.push).max(FLOOR.min(max.push)),
            page: self.page.min(max.page).max(FLOOR.min(max.page)),
            records: self.records.min(max.records).max(1),
        }
    }
}

/// An upload under way: which record, the digest of its bytes, and how many of them
/// the server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub record: WireId,
    pub digest: [u8; 32],
    pub have: u32,
}

/// What the device's store holds, read before each round trip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Records with changes to push that this sync has not pushed (those in
    /// [`Plan::tried`] left out) and the server has not refused at their current heads.
    pub to_push: usize,
    /// A page's cursor is held back: records it removed still hold unsynced edits.
    pub held: bool,
    /// Records to fetch whole.
    pub wanted: usize,
    /// A large item partly received.
    pub download: Option<Resume>,
}

/// The shape of the next round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Send(Shape),
    /// Nothing is left to do (or the server stopped making progress).
    Done,
}

/// What one request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Push up to this many bytes of changes (0: push nothing). If the first record
    /// waiting is larger on its own, [`Plan::upload`] decides how it goes.
    pub push_bytes: u32,
    /// Push only the records whose removal holds the page back.
    pub held_only: bool,
    /// Push at most this many records (wanted ones count too).
    pub records: u32,
    /// The page to ask for; 0 asks for none.
    pub page_bytes: u32,
    /// Ask for up to this many wanted records.
    pub want: u32,
    /// Continue this partly received item.
    pub resume: Option<Resume>,
}

/// What became of one pushed record, for the store to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The server has every change pushed.
    Stored,
    /// The server lacks history the device thought it had: push the whole record, now
    /// (first time in this sync) or at the next sync.
    ResendWhole { now: bool, message: String },
    /// Final for these changes: keep them, show why, do not push them again unchanged.
    Refused { reason: Rejection, message: String },
}

/// What an answered round trip brought, as far as the plan needs to know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Whether the request asked for a page (`page_bytes` > 0).
    pub asked_page: bool,
    /// The server has more pages after this one (meaningful when a page was asked for).
    pub more: bool,
    /// Something moved: a record stored or refused, a page's content, a removal, piece
    /// bytes either way, a cursor change.
    pub progress: bool,
}

/// A failed round trip, classified by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made (no network, server down).
    Offline,
    /// Cut, timed out, 5xx, 429: worth trying again.
    Retryable,
    /// 413: the request was too large for the server.
    TooLarge,
    /// 503 with `Retry-After`: the server is busy; the same request will do later.
    Busy,
    /// Needs a person (revoked, update the app) or is a bug (400, 422).
    Permanent,
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Send again at once (with the plan's new budgets).
    Now,
    /// End this sync with the error; try again later.
    GiveUp,
}

/// One sync's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    budgets: Budgets,
    max: Budgets,
    tried: BTreeSet<WireId>,
    resent: BTreeSet<WireId>,
    /// The server said no page is left after the cursor (since the last push).
    pulled: bool,
    failures: u32,
    offline: u32,
    stalls: u32,
    stalled: bool,
}

impl Plan {
    /// A plan starting from the budgets the store kept (`None` on a first sync) within
    /// the maximum the app allows.
    pub fn new(kept: Option<Budgets>, max: Budgets) -> Plan {
        Plan {
            budgets: kept.unwrap_or(max).within(max),
            max,
            tried: BTreeSet::new(),
            resent: BTreeSet::new(),
            pulled: false,
            failures: 0,
            offline: 0,
            stalls: 0,
            stalled: false,
        }
    }

    /// The budgets now: the store keeps them for the next sync.
    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// Records pushed in this sync, which the store leaves out of [`Holdings::to_push`].
    pub fn tried(&self) -> &BTreeSet<WireId> {
        &self.tried
    }

    /// Whether the last steps ended because the server stopped making progress.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The next round trip, given what the store holds now.
    pub fn next(&self, h: &Holdings) -> Step {
        if self.stalled {
            return Step::Done;
        }
        let b = self.budgets;
        if h.held {
            // Nothing else until the held page's records are resolved: pushing them is
            // what lets the cursor move on, and another page would only repeat it.
            return Step::Send(Shape {
                push_bytes: b.push,
                held_only: true,
                records: b.records,
                page_bytes: 0,
                want: 0,
                resume: None,
            });
        }
        if h.to_push > 0 {
            return Step::Send(Shape {
                push_bytes: b.push,
                held_only: false,
                records: b.records,
                page_bytes: b.page.min(PUSH_PAGE),
                want: 0,
                resume: h.download,
            });
        }
        if !self.pulled || h.wanted > 0 || h.download.is_some() {
            return Step::Send(Shape {
                push_bytes: 0,
                held_only: false,
                records: b.records,
                page_bytes: b.page,
                want: b.records.min(u32::try_from(h.wanted).unwrap_or(u32::MAX)),
                resume: h.download,
            });
        }
        Step::Done
    }

    /// The page just committed must be asked for again (a large item it ended did not
    /// match its digest), whatever the server said of what follows it.
    pub fn pull_again(&mut self) {
        self.pulled = false;
    }

    /// Whether a record of `size` bytes, first in line, goes in pieces: it alone is
    /// larger than the push budget.
    pub fn upload(&self, size: usize) -> bool {
        size > self.budgets.push as usize
    }

    /// How many bytes the next upload piece carries.
    pub fn piece_bytes(&self) -> u32 {
        self.budgets.push
    }

    /// Records a round trip's answer. `outcomes` are the pushed records' (the upload's
    /// too, once whole) in order; returns what the store should record for each.
    pub fn answered(&mut self, answer: &Answer, outcomes: &[(WireId, Outcome)]) -> Vec<Fate> {
        self.failures = 0;
        self.offline = 0;
        self.budgets = self.budgets.grow(self.max);
        if answer.progress || !outcomes.is_empty() {
            self.stalls = 0;
        } else {
            self.stalls += 1;
            self.stalled = self.stalls >= STALL_LIMIT;
        }
        if answer.asked_page {
            self.pulled = !answer.more;
        }
        outcomes
            .iter()
            .map(|(record, outcome)| {
                self.tried.insert(*record);
                match outcome {
                    Outcome::Stored => Fate::Stored,
                    Outcome::Rejected {
                        reason: Rejection::MissingDependencies,
                        message,
                    } => {
                        let now = self.resent.insert(*record);
                        if now {
                            // Pushed again, whole, in this sync.
                            self.tried.remove(record);
                        }
                        Fate::ResendWhole {
                            now,
                            message: format!("MissingDependencies: {message}"),
                        }
                    }
                    Outcome::Rejected { reason, message } => Fate::Refused {
                        reason: *reason,
                        message: message.clone(),
                    },
                }
            })
            .collect()
    }

    /// Records a failed round trip; says whether to send again now.
    pub fn failed(&mut self, failure: Failure) -> Retry {
        match failure {
            Failure::Permanent => Retry::GiveUp,
            Failure::Offline => {
                // Being offline is a state: one more try covers a link that was just
                // re-established, then the host's loop waits. It says nothing of what
                // the link carries once up, so the sizes stay: days without signal must
                // not leave the next sync creeping up from the floor.
                self.offline += 1;
                if self.offline >= 2 {
                    Retry::GiveUp
                } else {
                    Retry::Now
                }
            }
            Failure::Retryable => {
                self.failures += 1;
                self.budgets = self.budgets.shrink();
                if self.failures >= RETRY_LIMIT {
                    Retry::GiveUp
                } else {
                    Retry::Now
                }
            }
            Failure::Busy => {
                // Not the link's fault: the sizes stay; the driver waits as told.
                self.failures += 1;
                if self.failures >= RETRY_LIMIT {
                    Retry::GiveUp
                } else {
                    Retry::Now
                }
            }
            Failure::TooLarge => {
                self.failures += 1;
                let b = self.budgets;
                self.budgets = Budgets {
                    push: (b.push / 2).max(FLOOR.min(b.push)),
                    page: b.page,
                    records: (b.records / 2).max(1),
                };
                // The server's limit is below ours: growing back past it would only
                // meet the same answer, so the maximum comes down too.
                self.max.push = self.max.push.min(self.budgets.push);
                self.max.records = self.max.records.min(self.budgets.records);
                // Shrinking further cannot help once both are at their least.
                let stuck = b == self.budgets;
                if stuck || self.failures >= RETRY_LIMIT {
                    Retry::GiveUp
                } else {
                    Retry::Now
                }
            }
        }
    }
}
