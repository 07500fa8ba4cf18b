//! Syncing a device with the server: push the changes the server lacks, pull what the
//! device lacks page by page (each page committed with its cursor in one transaction;
//! a plain pull asks for the next page while it commits the last, `Trip::ask_ahead`),
//! report progress through a callback. [`enroll`] binds a device to a server first;
//! [`background`] runs syncs in a loop for host apps.
//!
//! The protocol is in `docs/PROTOCOL.md`; this module only carries it out.

pub mod background;
mod error;
mod http;
mod token;

pub use error::{Permanent, SyncError};
pub use http::{MAX_ANSWER_BYTES, check_server_url, ensure_crypto_provider};
pub use token::rotate_token;

use std::collections::HashSet;
use std::time::Duration;

use intake_shared::RecordId;
use intake_shared::plan::{
    self, Answer, Budgets, Failure, Fate, Holdings, Plan, Retry, Shape, Step, Upload,
};
use intake_shared::protocol::{
    EnrolAnswer, EnrolRequest, ExpandError, ItemKind, Known, Outcome, PROTOCOL_VERSION, Piece,
    RecordChanges, Rejection, SyncRequest, SyncResponse, pieces,
};

use crate::store::{Enrolment, Outgoing, PageCommit, Store};

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncSummary {
    /// Records whose changes the server stored.
    pub sent: usize,
    /// Records whose changes the server refused (reasons on the records).
    pub refused: usize,
    /// Records received (new or changed).
    pub received: usize,
    /// Records dropped because this user may no longer see them.
    pub removed: usize,
    /// Records an admin erased for good: dropped whole, unsynced edits too.
    pub erased: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub requests: usize,
    /// Round trips that failed (a cut, a timeout) and were tried again at once.
    pub retries: usize,
    /// Records still holding changes the server does not have.
    pub unsynced: usize,
}

/// Progress during a sync, after each round trip.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub summary: SyncSummary,
    /// Whether the server has more to send.
    pub more: bool,
}

/// Tuning of a sync: the most it asks for at once. On a link that cuts, the sizes used
/// adapt below these (`intake_shared::plan`) and the store keeps what they learned.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The largest response page to ask for (bytes before compression).
    pub page_bytes: u32,
    /// Roughly how many bytes of changes to push per request.
    pub push_bytes: usize,
    /// The most records in one request (the server's own limit, learned at
    /// enrolment, lowers it further).
    pub max_records: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        // Pages: a mebibyte of records compresses to about 160 KB, some 5 s on a 2G
        // link (~30 KB/s), so a cut connection costs seconds; and it holds enough
        // records (~800 new ones) for zstd to find what they share: a fresh pull of
        // 2,000 records is 1.30 x its floor in 1 MiB pages, 1.38 x in 512 KiB and
        // 1.52 x in 256 KiB (`docs/BENCHMARKS.md`). Pushes: a week of intake goes in
        // one request, a device's whole backlog in a few. Records: the server's
        // default limit (10,000); a server that has another says so at enrolment.
        SyncOptions {
            page_bytes: 1024 * 1024,
            push_bytes: 2 << 20,
            max_records: plan::DEFAULT_MAX_RECORDS,
        }
    }
}

/// The longest `Retry-After` a sync waits out itself (503 busy asks for seconds); a
/// longer one ends the sync, for the host's loop to wait.
pub const MAX_WAIT_IN_SYNC: Duration = Duration::from_secs(30);

/// The plan's view of a failure.
fn failure(e: &SyncError) -> Failure {
    match e {
        SyncError::Offline(_) => Failure::Offline,
        SyncError::Retryable(_) => Failure::Retryable,
        SyncError::TooLarge(_) => Failure::TooLarge,
        SyncError::Busy(..) | SyncError::StorageFull(..) => Failure::Busy,
        _ => Failure::Permanent,
    }
}

/// Syncs `store` with the server it is enrolled with: carries out the plan of
/// `intake_shared::plan`, round trip by round trip, committing each answer in one
/// local transaction.
pub fn sync(
    store: &mut Store,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<SyncSummary, SyncError> {
    sync_observed(store, options, progress, &mut ())
}

/// A request about to be sent, as an [`Observer`] sees it.
#[derive(Clone, Debug)]
pub struct Sending {
    /// Records whose changes it pushes (an upload in pieces counts as one).
    pub push_records: usize,
    /// The page it asks for (0: none).
    pub page_bytes: u32,
}

/// An answer received and decoded but not yet committed, as an [`Observer`] sees it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Pushed records the answer says something about.
    pub push_results: usize,
    /// Whole records and records with changes in the page.
    pub docs: usize,
    pub changes: usize,
    pub removed: usize,
    /// Whether the server has more to send.
    pub more: bool,
}

/// Watches a sync from inside, for tests that must act at an exact point of it (issue
/// 13: a process SIGKILLed between receiving a page and committing it). Only
/// [`sync_observed`] takes one; [`sync`], which apps call, passes `()`, which does
/// nothing, so these points cannot fire in production by accident.
pub trait Observer {
    /// Before a request goes out (its contents are built from the store by then).
    fn sending(&mut self, _request: &Sending) {}
    /// After an answer arrived and decoded, before anything of it is committed: the
    /// store holds what it held before the request, and at most the page before it,
    /// committed while a request asked ahead was out.
    fn received(&mut self, _answer: &Received) {}
}

/// The observer that watches nothing.
impl Observer for () {}

/// [`sync`] with an [`Observer`] told of each request and each answer before its commit.
pub fn sync_observed(
    store: &mut Store,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
    observer: &mut dyn Observer,
) -> Result<SyncSummary, SyncError> {
    let transport = {
        let enrolment = store.enrolment()?.ok_or(SyncError::NotEnrolled)?;
        // Checked at every sync, not only at enrolment: an enrolment edited to point
        // at plain HTTP elsewhere does not get the token sent there.
        http::check_server_url(&enrolment.server, enrolment.insecure_http)?;
        http::Transport::new(
            &enrolment.server,
            &enrolment.token,
            enrolment.ca_file.as_deref(),
        )?
    };
    match run(store, &transport, options, progress, observer) {
        // Lost phones (issue 12): the server answered this device's token with a wipe
        // order. Nothing more is sent or kept.
        Err(SyncError::Permanent {
            kind: Permanent::Wiped,
            ..
        }) => Err(obey_wipe(store, &transport)),
        other => other,
    }
}

/// Destroys the store the server ordered wiped, then tells the server with the token
/// still held in memory (the store that kept it is gone). The store handle is unusable
/// afterwards ([`Store::destroy`]).
fn obey_wipe(store: &mut Store, transport: &http::Transport) -> SyncError {
    let dir = store.dir().display().to_string();
    let message = match store.destroy() {
        Ok(()) => {
            let told = if transport.report_wiped() {
                "the server was told"
            } else {
                "the server could not be told; it shows the wipe as sent"
            };
            format!(
                "this device was revoked and its administrator ordered it wiped: \
                 the store in {dir} has been destroyed ({told})"
            )
        }
        // Not reported as done: the server keeps showing "wipe sent", and the next
        // contact is answered with the order again.
        Err(e) => format!(
            "this device was revoked and its administrator ordered it wiped, \
             but destroying the store in {dir} failed: {e}"
        ),
    };
    SyncError::Permanent {
        kind: Permanent::Wiped,
        message,
    }
}

/// [`sync`] once the transport is set up.
fn run(
    store: &mut Store,
    transport: &http::Transport,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
    observer: &mut dyn Observer,
) -> Result<SyncSummary, SyncError> {
    let enrolment = store.enrolment()?.ok_or(SyncError::NotEnrolled)?;
    let server_records = enrolment
        .limits
        .map_or(u32::MAX, |l| l.max_records_per_request);
    let max = Budgets {
        push: u32::try_from(options.push_bytes).unwrap_or(u32::MAX),
        page: options.page_bytes,
        records: options.max_records.min(server_records).max(1),
    };
    let kept = store.budgets()?;
    let mut plan = Plan::new(kept, max);
    // Whether this sync already started over for a restored server (once is enough:
    // the store id is then the one the server answers with).
    let mut restarted = false;
    // Written only when they change: a no-op sync writes nothing for them.
    let mut written = kept;
    let mut summary = SyncSummary::default();
    // The server's lock after N days, as its answers say (issue 12).
    let mut lock_after_days = None;
    // An earlier sync may have stopped with a page held for records since resolved.
    summary.removed += store.release_held()?;
    // A request for the next page sent while this one is committed runs on a thread of
    // this scope; one still running when the sync ends is waited for at its end.
    std::thread::scope(|scope| {
        let mut ahead: Option<Ahead<'_>> = None;
        let mut push_ahead: Option<PushAhead<'_>> = None;
        let mut busy_seen = false;
        loop {
            let holdings = store.holdings(plan.tried())?;
            let shape = match plan.next(&holdings) {
                Step::Send(shape) => shape,
                Step::Done => break,
            };
            let mut trip = Trip {
                transport,
                scope,
                ahead: &mut ahead,
                push_ahead: &mut push_ahead,
                holdings: &holdings,
                wasted: http::Moved::default(),
                push_ahead_allowed: !busy_seen,
            };
            let result = round_trip(store, &mut trip, &mut plan, &shape, observer);
            // An answer asked for ahead and not used still crossed the link.
            summary.bytes_up += trip.wasted.up;
            summary.bytes_down += trip.wasted.down;
            let round = match result {
                Ok(round) => round,
                Err(e) => {
                    // A push sent ahead of a failed one is not taken: it was built with
                    // the sizes the failure may have just cut, and one cut or one busy
                    // server counts once. Its records, unconfirmed, go again.
                    let moved = discard(push_ahead.take());
                    summary.bytes_up += moved.up;
                    summary.bytes_down += moved.down;
                    busy_seen |= matches!(e, SyncError::Busy(..));
                    let retry = plan.failed(failure(&e));
                    if written != Some(plan.budgets()) {
                        store.set_budgets(plan.budgets())?;
                        written = Some(plan.budgets());
                    }
                    if retry == Retry::GiveUp {
                        return Err(e);
                    }
                    if let Some(wait) = e.retry_after() {
                        // As the server asked. A wait longer than a sync should stand still
                        // (a full disk waits for a person) ends the sync instead: the host's
                        // loop waits at least that long before the next one
                        // (`background::next_wait`), and no request goes before then.
                        if wait > MAX_WAIT_IN_SYNC {
                            return Err(e);
                        }
                        std::thread::sleep(wait);
                    }
                    summary.retries += 1;
                    continue;
                }
            };
            summary.requests += 1;
            // Counted also for an answer a restore made void: it crossed the link.
            lock_after_days = round.moved.lock_after_days.or(lock_after_days);
            store.note_server_time(round.moved.server_date)?;
            summary.bytes_up += round.moved.up;
            summary.bytes_down += round.moved.down;
            if round.server_restored {
                // Nothing of that answer was kept: everything the restored server lacks is
                // pushed, and what the device lacks pulled, from the start (a push sent
                // ahead too).
                let moved = discard(push_ahead.take());
                summary.bytes_up += moved.up;
                summary.bytes_down += moved.down;
                if restarted {
                    return Err(SyncError::Retryable(
                        "the server's store id changed twice in one sync".into(),
                    ));
                }
                restarted = true;
                plan = Plan::new(store.budgets()?, max);
                continue;
            }
            summary.sent += round.sent;
            summary.refused += round.refused;
            summary.received += round.received;
            summary.removed += round.removed;
            summary.erased += round.erased;
            if written != Some(plan.budgets()) {
                store.set_budgets(plan.budgets())?;
                written = Some(plan.budgets());
            }
            progress(&Progress {
                summary: summary.clone(),
                more: round.more,
            });
        }
        Ok::<(), SyncError>(())
    })?;
    summary.unsynced = store.unsynced()?;
    // A successful sync unlocks a store locked for lack of one.
    store.note_sync_ok(lock_after_days)?;
    Ok(summary)
}

/// What one answered round trip did.
struct Round {
    moved: http::Moved,
    sent: usize,
    refused: usize,
    received: usize,
    removed: usize,
    erased: usize,
    more: bool,
    /// The answer came from a server restored from a backup (another store id): the
    /// device forgot what it believed the server had, and the sync starts over.
    server_restored: bool,
}

/// What an exchange gives: the answer, the bytes moved, the server's store id.
type Exchanged = Result<(SyncResponse, http::Moved, Option<String>), SyncError>;

/// A request for the next page, sent while the page before it is committed, and its
/// answer to come.
struct Ahead<'scope> {
    request: SyncRequest,
    answer: std::thread::ScopedJoinHandle<'scope, Exchanged>,
}

/// A push sent while the push before it was out (`Trip::push_next`): the records it
/// carries, and its answer to come.
struct PushAhead<'scope> {
    request: SyncRequest,
    outgoing: Vec<Outgoing>,
    answer: std::thread::ScopedJoinHandle<'scope, Exchanged>,
    /// The page committed while it was out changed one of its records: it pushed
    /// heads that record no longer has, and is not taken (see `Trip::take_push_ahead`).
    stale: bool,
}

/// What a round trip works with besides the store and the plan.
struct Trip<'t, 'scope, 'env> {
    transport: &'env http::Transport,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    /// The request sent ahead, if one is out.
    ahead: &'t mut Option<Ahead<'scope>>,
    /// The push sent ahead, if one is out.
    push_ahead: &'t mut Option<PushAhead<'scope>>,
    /// What the store held when this round trip's shape was chosen.
    holdings: &'t Holdings,
    /// Bytes of an answer asked for ahead that turned out not to be needed.
    wasted: http::Moved,
    /// No push goes ahead once the server answered busy in this sync: its permits are
    /// taken by other devices, and a second push out would only be refused too, after
    /// crossing the link whole.
    push_ahead_allowed: bool,
}

impl Trip<'_, '_, '_> {
    /// Exchanges `request`: the answer of the request sent ahead when it is this very
    /// request (the server answers equal requests alike, so asking earlier changes
    /// nothing but when), else a new exchange. A request sent ahead that is not this
    /// one is waited for and dropped: nothing of its answer is kept.
    fn exchange(&mut self, request: &SyncRequest, observer: &mut dyn Observer) -> Exchanged {
        if let Some(ahead) = self.ahead.take() {
            let answer = ahead
                .answer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            if ahead.request == *request {
                return answer;
            }
            if let Ok((_, moved, _)) = answer {
                self.wasted.up += moved.up;
                self.wasted.down += moved.down;
            }
        }
        observer.sending(&sending(request));
        self.transport.exchange(request)
    }

    /// Asks for the page after `response` while `response` is committed, when the next
    /// request can be known before that commit: this one only pulled, the store held
    /// nothing to push, fetch or resume, and the page removed nothing. The next page
    /// is then asked for at `response.cursor` exactly as the plan would ask after the
    /// commit (`Trip::exchange` checks that it did).
    ///
    /// Why it keeps every guarantee: the cursor is still saved only with its page's
    /// records ([`Store::commit_page`]), so a device killed before that commit asks
    /// again from the cursor it holds, and pulls the page again. The server takes a
    /// request's cursor as the pages before it committed, ending the grace of records
    /// those pages removed (`close_late_grants`): so no page that removed records, and
    /// nothing while a page is held back, is passed ahead of its commit.
    fn ask_ahead(
        &mut self,
        request: &SyncRequest,
        response: &SyncResponse,
        plan: &Plan,
        observer: &mut dyn Observer,
    ) {
        let only_pulled = request.push.is_empty()
            && request.upload.is_none()
            && request.want_docs.is_empty()
            && request.resume.is_none();
        let page_plain = response.more && response.piece.is_none() && response.removed.is_empty();
        if !only_pulled || !page_plain || *self.holdings != Holdings::default() {
            return;
        }
        let Step::Send(shape) = plan.next(&Holdings::default()) else {
            return;
        };
        if shape.push_bytes > 0 || shape.want > 0 || shape.resume.is_some() || shape.page_bytes == 0
        {
            return;
        }
        let next = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: response.cursor,
            page_bytes: shape.page_bytes,
            // What the device knows of the server is what it knew for this request,
            // unless this answer told it otherwise (the request built after the commit
            // then differs, and this one's answer is dropped).
            known: request.known,
            ..SyncRequest::default()
        };
        observer.sending(&sending(&next));
        let transport = self.transport;
        let sent = next.clone();
        *self.ahead = Some(Ahead {
            request: next,
            answer: self.scope.spawn(move || transport.exchange(&sent)),
        });
    }
}

impl<'scope> Trip<'_, 'scope, '_> {
    /// Sends `request` on a thread of the sync's scope and returns its answer to come.
    fn send(
        &self,
        request: &SyncRequest,
        observer: &mut dyn Observer,
    ) -> std::thread::ScopedJoinHandle<'scope, Exchanged> {
        observer.sending(&sending(request));
        let transport = self.transport;
        let sent = request.clone();
        self.scope.spawn(move || transport.exchange(&sent))
    }

    /// The push sent ahead, when this round pushes as it would (a plain push): it is
    /// this round's request. One this round does not take is [`discard`]ed; so is one
    /// whose records a page changed meanwhile. Its answer would mark them synced at
    /// the heads it pushed, short of the server's changes merged since, and this sync,
    /// having tried them, would end with them unsynced; built again, they go with
    /// those heads.
    fn take_push_ahead(&mut self, shape: &Shape) -> Option<PushAhead<'scope>> {
        let ahead = self.push_ahead.take()?;
        if plain_push(shape) && !ahead.stale {
            return Some(ahead);
        }
        let moved = discard(Some(ahead));
        self.wasted.up += moved.up;
        self.wasted.down += moved.down;
        None
    }

    /// While the push `request` (carrying `outgoing`) is out, builds the next push from
    /// the records after it and sends it too, when more are waiting (issue 16): the
    /// device reads and compresses push n+1 while the server stores push n, instead of
    /// each side waiting on the other. The next round takes it as its request
    /// (`take_push_ahead`). It asks for no page: its answer carries only its push's
    /// outcomes, and the cursor it names (the one before push n's page) is only ever
    /// lower than the device's, so the server ends no grace early.
    ///
    /// Why nothing is lost: each answer is still committed alone and in order, and a
    /// push whose answer is not committed (a cut, a kill) leaves its records dirty, to
    /// be pushed again; the server ignores changes it already has.
    fn push_next(
        &mut self,
        store: &mut Store,
        plan: &Plan,
        shape: &Shape,
        request: &SyncRequest,
        outgoing: &[Outgoing],
        observer: &mut dyn Observer,
    ) -> Result<(), SyncError> {
        if !self.push_ahead_allowed
            || !plain_push(shape)
            || request.upload.is_some()
            || self.holdings.to_push <= outgoing.len()
            || self.push_ahead.is_some()
        {
            return Ok(());
        }
        let skip: HashSet<RecordId> = plan
            .tried()
            .iter()
            .map(RecordId::from_wire)
            .chain(outgoing.iter().map(|o| o.id))
            .collect();
        let (batch, damaged) = store.outgoing(
            shape.push_bytes as usize,
            shape.records as usize,
            &skip,
            false,
        )?;
        store.mark_damaged(&damaged)?;
        // A record larger than a push on its own goes in pieces, in a round of its own.
        let alone_too_large = match batch.as_slice() {
            [only] => plan.upload(only.changes.iter().map(Vec::len).sum()),
            _ => false,
        };
        if batch.is_empty() || alone_too_large {
            return Ok(());
        }
        let next = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: request.cursor,
            page_bytes: 0,
            push: batch
                .iter()
                .map(|o| RecordChanges {
                    record: o.id.wire(),
                    changes: o.changes.clone(),
                })
                .collect(),
            known: request.known,
            ..SyncRequest::default()
        };
        let answer = self.send(&next, observer);
        *self.push_ahead = Some(PushAhead {
            request: next,
            outgoing: batch,
            answer,
            stale: false,
        });
        Ok(())
    }
}

/// Whether committing `response`'s page changes any of `records` (or may: a piece of
/// a large item, records the server could not send).
fn page_touches(response: &SyncResponse, records: &[Outgoing]) -> bool {
    if response.piece.is_some() || !response.unavailable.is_empty() {
        return true;
    }
    let ids: HashSet<intake_shared::protocol::WireId> =
        records.iter().map(|o| o.id.wire()).collect();
    response.docs.iter().any(|d| ids.contains(&d.record))
        || response.changes.iter().any(|c| ids.contains(&c.record))
        || response
            .removed
            .iter()
            .chain(&response.erased)
            .any(|id| ids.contains(id))
}

/// Waits for a push sent ahead that will not be used, and drops its answer: the
/// server may have stored its changes, and the device, not knowing, pushes them again
/// (the server ignores changes it has). Returns what it moved: it still crossed.
fn discard(ahead: Option<PushAhead<'_>>) -> http::Moved {
    match ahead.map(|a| {
        a.answer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }) {
        Some(Ok((_, moved, _))) => moved,
        _ => http::Moved::default(),
    }
}

/// Whether a round of `shape` is a push and nothing else (no held records first, no
/// records wanted, no item being resumed): one a push sent ahead can stand in for.
fn plain_push(shape: &Shape) -> bool {
    shape.push_bytes > 0 && !shape.held_only && shape.want == 0 && shape.resume.is_none()
}

/// A request as an [`Observer`] sees it.
fn sending(request: &SyncRequest) -> Sending {
    Sending {
        push_records: request.push.len() + usize::from(request.upload.is_some()),
        page_bytes: request.page_bytes,
    }
}

/// One round trip of `shape`: builds the request from the store, exchanges it, tells
/// the plan, and commits the answer (asking for the next page meanwhile when it can,
/// [`Trip::ask_ahead`]).
fn round_trip(
    store: &mut Store,
    trip: &mut Trip<'_, '_, '_>,
    plan: &mut Plan,
    shape: &Shape,
    observer: &mut dyn Observer,
) -> Result<Round, SyncError> {
    // A push sent ahead while the last round's was out is this round's request.
    let (request, outgoing, upload, sent_ahead) = match trip.take_push_ahead(shape) {
        Some(ahead) => (ahead.request, ahead.outgoing, None, Some(ahead.answer)),
        None => {
            let (request, outgoing, upload) = build(store, plan, shape)?;
            (request, outgoing, upload, None)
        }
    };
    let cursor = request.cursor;
    let exchanged = match sent_ahead {
        Some(answer) => {
            trip.push_next(store, plan, shape, &request, &outgoing, observer)?;
            answer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
        // More to push after this one: it goes out on a thread and the next is built
        // meanwhile (`Trip::push_next`).
        None if plain_push(shape)
            && upload.is_none()
            && trip.ahead.is_none()
            && trip.holdings.to_push > outgoing.len() =>
        {
            let answer = trip.send(&request, observer);
            trip.push_next(store, plan, shape, &request, &outgoing, observer)?;
            answer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
        None => trip.exchange(&request, observer),
    };
    let (mut response, mut moved, mut store_id) = exchanged?;
    // Version 8: the pulled changes' dependencies came as prefixes; put back from what
    // the store holds, or, when they cannot be, the same request again asking for
    // them in full (nothing of the first answer is kept; it still crossed).
    match store.expand_answer(&mut response) {
        Ok(()) => {}
        Err(ExpandError::SendInFull(_)) => {
            let full = SyncRequest {
                full_deps: true,
                ..request.clone()
            };
            observer.sending(&sending(&full));
            let (again, more, id) = trip.transport.exchange(&full)?;
            moved.up += more.up;
            moved.down += more.down;
            moved.server_date = more.server_date.or(moved.server_date);
            moved.lock_after_days = more.lock_after_days.or(moved.lock_after_days);
            (response, store_id) = (again, id.or(store_id));
            store
                .expand_answer(&mut response)
                .map_err(|e| SyncError::Retryable(format!("garbled response: {e}")))?;
        }
        Err(ExpandError::Decode(e)) => {
            return Err(SyncError::Retryable(format!("garbled response: {e}")));
        }
    }
    observer.received(&Received {
        push_results: response.results.len() + usize::from(response.upload.is_some()),
        docs: response.docs.len(),
        changes: response.changes.len(),
        removed: response.removed.len(),
        more: response.more,
    });
    if let Some(id) = store_id {
        match store.server_store()? {
            Some(known) if known != id => {
                store.forget_server(&id)?;
                return Ok(Round {
                    moved,
                    sent: 0,
                    refused: 0,
                    received: 0,
                    removed: 0,
                    erased: 0,
                    more: true,
                    server_restored: true,
                });
            }
            Some(_) => {}
            None => store.set_server_store(&id)?,
        }
    }

    // What the pushed records (and the upload, once whole) became.
    let mut pushed: Vec<(&Outgoing, Outcome)> = response
        .results
        .iter()
        .zip(&outgoing)
        .map(|(r, o)| (o, r.outcome.clone()))
        .collect();
    let mut upload_moved = false;
    if let (Some((o, piece)), Some(ack)) = (&upload, &response.upload)
        && ack.digest == piece.digest
    {
        upload_moved = ack.have > piece.offset || ack.outcome.is_some();
        match &ack.outcome {
            Some(outcome) => {
                store.set_upload_state(None)?;
                pushed.push((o, outcome.clone()));
            }
            None => store.set_upload_state(Some(Upload {
                record: piece.record,
                digest: piece.digest,
                have: ack.have,
            }))?,
        }
    }
    let answer = Answer {
        asked_page: shape.page_bytes > 0,
        more: response.more,
        progress: upload_moved
            || !response.docs.is_empty()
            || !response.changes.is_empty()
            || !response.removed.is_empty()
            || !response.erased.is_empty()
            || !response.unavailable.is_empty()
            || response.piece.as_ref().is_some_and(|p| !p.bytes.is_empty())
            || response.cursor != cursor,
    };
    let outcomes: Vec<_> = pushed
        .iter()
        .map(|(o, outcome)| (o.id.wire(), outcome.clone()))
        .collect();
    let fates = plan.answered(&answer, &outcomes);
    trip.ask_ahead(&request, &response, plan, observer);
    if let Some(ahead) = trip.push_ahead.as_mut() {
        ahead.stale |= page_touches(&response, &ahead.outgoing);
    }
    let receipts = pulled_receipts(&response);
    // An answer without a page names the cursor its request had, which for a push
    // sent ahead is older than the one the page before it left: the cursor stays.
    let page_cursor = if request.page_bytes == 0 {
        store.cursor()?
    } else {
        response.cursor
    };
    let mut page = PageCommit {
        receipts,
        cursor: page_cursor,
        piece: response.piece,
        unavailable: response
            .unavailable
            .iter()
            .map(RecordId::from_wire)
            .collect(),
        ..PageCommit::default()
    };
    let mut round = Round {
        moved,
        sent: 0,
        refused: 0,
        received: 0,
        removed: 0,
        erased: 0,
        more: response.more,
        server_restored: false,
    };
    for ((o, _), fate) in pushed.iter().zip(fates) {
        match fate {
            Fate::Stored => {
                round.sent += 1;
                page.stored.push((o.id, o.pushed.clone()));
            }
            Fate::ResendWhole { now, message } => {
                if !now {
                    round.refused += 1;
                }
                page.resend.push((o.id, message, !now));
            }
            Fate::Refused {
                reason: Rejection::Erased,
                ..
            } => {
                // Erased for good on the server: dropped here with the page, edits too.
                page.erased.push(o.id);
            }
            Fate::Refused { reason, message } => {
                round.refused += 1;
                page.rejected.push((
                    o.id,
                    o.pushed.heads.clone(),
                    format!("{reason:?}: {message}"),
                ));
            }
        }
    }
    page.docs = response
        .docs
        .into_iter()
        .map(|d| (RecordId::from_wire(&d.record), d.doc))
        .collect();
    page.changes = response
        .changes
        .into_iter()
        .map(|c| (RecordId::from_wire(&c.record), c.changes))
        .collect();
    page.removed = response.removed.iter().map(RecordId::from_wire).collect();
    page.erased
        .extend(response.erased.iter().map(RecordId::from_wire));
    let result = store.commit_page(page)?;
    if result.item_bad {
        plan.pull_again();
    }
    round.received = result.received;
    round.removed = result.removed;
    round.erased = result.erased;
    Ok(round)
}

/// What a round of `shape` pushed in full, and the upload it sends a piece of.
type Built = (SyncRequest, Vec<Outgoing>, Option<(Outgoing, Piece)>);

/// Builds the request of a round of `shape` from the store: the records to push (or a
/// piece of one too large for a push), records wanted whole, the page asked for.
fn build(store: &mut Store, plan: &Plan, shape: &Shape) -> Result<Built, SyncError> {
    let skip: HashSet<RecordId> = plan.tried().iter().map(RecordId::from_wire).collect();
    let mut outgoing = Vec::new();
    if shape.push_bytes > 0 {
        let (batch, damaged) = store.outgoing(
            shape.push_bytes as usize,
            shape.records as usize,
            &skip,
            shape.held_only,
        )?;
        store.mark_damaged(&damaged)?;
        outgoing = batch;
    }
    // A record larger than the push budget on its own goes in pieces.
    let mut upload = None;
    if let [only] = outgoing.as_slice()
        && plan.upload(only.changes.iter().map(Vec::len).sum())
    {
        let o = outgoing.remove(0);
        let whole = pieces::encode_upload(&RecordChanges {
            record: o.id.wire(),
            changes: o.changes.clone(),
        });
        let digest = pieces::digest(&whole);
        let from = match store.upload_state()? {
            Some(u) if u.digest == digest && u.record == o.id.wire() => u.have as usize,
            _ => 0,
        };
        let piece = Piece::of(
            o.id.wire(),
            ItemKind::Push,
            digest,
            &whole,
            from,
            plan.piece_bytes() as usize,
        );
        upload = Some((o, piece));
    }
    let want = if shape.want > 0 {
        store.wanted(shape.want)?
    } else {
        Vec::new()
    };
    let cursor = store.cursor()?;
    let request = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor,
        page_bytes: shape.page_bytes,
        push: outgoing
            .iter()
            .map(|o| RecordChanges {
                record: o.id.wire(),
                changes: o.changes.clone(),
            })
            .collect(),
        want_docs: want.iter().map(|id| id.wire()).collect(),
        upload: upload.as_ref().map(|(_, piece)| piece.clone()),
        resume: shape.resume,
        // The server repeats its store id and lock only when they differ from these.
        known: Known::new(
            store.server_store()?.as_deref(),
            store.lock_after_days()?.unwrap_or(0),
        ),
        // Version 8: dependencies as prefixes; in full only when asked again.
        full_deps: false,
    };
    Ok((request, outgoing, upload))
}

/// The server's receipts of what an answer carries (protocol v6), by record and change
/// hash: kept to say when another device's clock was clearly wrong, never to decide.
/// A pulled change that is not one chunk has none; a document's come in the order of
/// its changes' hashes, and a document whose changes do not match them in number
/// (changed between the server's two reads, or unreadable here) keeps none.
fn pulled_receipts(
    response: &intake_shared::protocol::SyncResponse,
) -> Vec<(RecordId, [u8; 32], i64)> {
    let mut out = Vec::new();
    let mut received = response.received.iter();
    for c in &response.changes {
        let id = RecordId::from_wire(&c.record);
        for bytes in &c.changes {
            if let Some(Some(at)) = received.next()
                && let Some(hash) = intake_shared::record::change_hash(bytes)
            {
                out.push((id, hash, *at));
            }
        }
    }
    for (doc, receipts) in response.docs.iter().zip(&response.doc_received) {
        if receipts.iter().all(Option::is_none) {
            continue;
        }
        let id = RecordId::from_wire(&doc.record);
        if let Some(hashes) = intake_shared::record::change_hashes(&doc.doc)
            && hashes.len() == receipts.len()
        {
            for (hash, at) in hashes.into_iter().zip(receipts) {
                if let Some(at) = at {
                    out.push((id, hash, *at));
                }
            }
        }
    }
    out
}

/// Enrols this device with a server using a one-time code from an admin, and keeps
/// the token inside the encrypted store. Plain `http://` only to this machine (see
/// [`enroll_with`]).
pub fn enroll(
    store: &mut Store,
    server: &str,
    code: &str,
    label: &str,
    ca_file: Option<&str>,
) -> Result<Enrolment, SyncError> {
    enroll_with(store, server, code, label, ca_file, false)
}

/// [`enroll`], and with `insecure_http` plain `http://` to another machine too (the
/// user's explicit choice, kept with the enrolment for every later sync).
pub fn enroll_with(
    store: &mut Store,
    server: &str,
    code: &str,
    label: &str,
    ca_file: Option<&str>,
    insecure_http: bool,
) -> Result<Enrolment, SyncError> {
    let server = server.trim().trim_end_matches('/');
    http::check_server_url(server, insecure_http)?;
    let client = http::client(ca_file, Duration::from_secs(60))?;
    let resp = client
        .post(format!("{server}/v1/enroll"))
        .json(&EnrolRequest {
            code: code.to_string(),
            actor: hex::encode(store.device_actor_prefix()),
            label: label.to_string(),
        })
        .send()
        .map_err(http::classify)?;
    let (status, body) = http::enrol_answer(resp)?;
    if !status.is_success() {
        let message = http::server_message(status, &body);
        return Err(match status.as_u16() {
            401 | 409 | 400 | 422 => SyncError::Permanent {
                kind: Permanent::Enrolment,
                message,
            },
            _ => http::status_error(status, &body),
        });
    }
    let answer: EnrolAnswer = serde_json::from_slice(&body)
        .map_err(|e| SyncError::Retryable(format!("garbled enrolment answer: {e}")))?;
    let enrolment = Enrolment {
        server: server.to_string(),
        token: answer.token,
        device_id: answer.device_id,
        user: answer.user,
        role: answer.role,
        team: answer.team,
        ca_file: ca_file.map(str::to_string),
        limits: answer.limits,
        insecure_http,
    };
    store.set_enrolment(&enrolment)?;
    if let Some(id) = &answer.store {
        store.set_server_store(id)?;
    }
    // The lock after N days counts from enrolment until the first sync.
    store.note_sync_ok(Some(answer.lock_after_days.unwrap_or(0)))?;
    Ok(enrolment)
}
