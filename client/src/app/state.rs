//! What the app keeps between requests: the one-time launch secret, the session it
//! was traded for (cookie value and CSRF token), and the open store — held only while
//! the paralegal uses the app. The store (and with it the SQLCipher key) is dropped
//! after the idle time without a request, checked on every request and by a reaper
//! thread, so an unattended laptop does not keep the cases open.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::Config;
use super::remote::SyncStatus;
use crate::sync::background::SyncLoop;
use crate::{Key, Store};

/// The app's clock: the monotonic clock plus an offset that only tests move (so an
/// idle lock is tested without waiting minutes). Moving it wakes the reaper.
#[derive(Debug)]
pub struct Clock {
    offset: Mutex<Duration>,
    moved: Condvar,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            offset: Mutex::new(Duration::ZERO),
            moved: Condvar::new(),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::now() + *locked(&self.offset)
    }

    /// How far tests moved the clock.
    fn offset(&self) -> Duration {
        *locked(&self.offset)
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        *locked(&self.offset) += d;
        self.moved.notify_all();
    }

    /// Waits up to `d`, or until the clock is moved.
    fn wait(&self, d: Duration) {
        let guard = locked(&self.offset);
        let _ = self.moved.wait_timeout(guard, d);
    }
}

/// Why the store was closed, shown on the unlock page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockReason {
    Idle,
    Asked,
    /// The store was destroyed (quick wipe).
    Wiped,
    /// The store was destroyed on the server's order (the device was revoked with a
    /// wipe order, issue 12).
    RemoteWiped,
}

/// The browser session the launch secret was traded for.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
}

struct Open {
    store: Store,
    /// Kept to open the sync threads' own handles; dropped with the store.
    key: Key,
    last_request: Instant,
    /// The background sync while the store is open and enrolled.
    background: Option<SyncLoop>,
}

/// Everything the handlers share.
pub struct AppState {
    /// Itself, for the background sync's reports (see [`AppState::shared`]).
    me: Weak<AppState>,
    pub config: Config,
    pub port: u16,
    pub clock: Clock,
    /// The launch secret until it is used once.
    secret: Mutex<Option<String>>,
    session: Mutex<Option<Session>>,
    open: Mutex<Option<Open>>,
    last_lock: Mutex<Option<LockReason>>,
    /// What the sync page shows; shared with the sync threads.
    pub sync: Arc<Mutex<SyncStatus>>,
}

pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves nothing half-written that matters
    // (the store's writes are transactions), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn new(config: Config, port: u16, secret: &str) -> AppState {
        AppState {
            me: Weak::new(),
            config,
            port,
            clock: Clock::new(),
            secret: Mutex::new(Some(secret.to_string())),
            session: Mutex::new(None),
            open: Mutex::new(None),
            last_lock: Mutex::new(None),
            sync: Arc::new(Mutex::new(SyncStatus::default())),
        }
    }

    /// The state as the app holds it, able to reach itself from sync threads.
    pub fn shared(config: Config, port: u16, secret: &str) -> Arc<AppState> {
        Arc::new_cyclic(|me| AppState {
            me: me.clone(),
            ..AppState::new(config, port, secret)
        })
    }

    /// `Host` every request must carry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `Origin` a request may carry.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Trades the launch secret for a new session, once: a second use (or a wrong
    /// secret) gets nothing. A failing OS random source is an error, and leaves the
    /// secret unspent.
    pub fn launch(&self, sent: &str) -> std::io::Result<Option<Session>> {
        let session = Session {
            token: super::csrf::new_token()?,
            csrf: super::csrf::new_token()?,
        };
        let mut secret = locked(&self.secret);
        let ok = secret
            .as_deref()
            .is_some_and(|s| super::csrf::matches(s, sent));
        if !ok {
            return Ok(None);
        }
        *secret = None;
        *locked(&self.session) = Some(session.clone());
        Ok(Some(session))
    }

    /// The session whose cookie value is `token`.
    pub fn session(&self, token: &str) -> Option<Session> {
        locked(&self.session)
            .as_ref()
            .filter(|s| super::csrf::matches(&s.token, token))
            .cloned()
    }

    /// Called on every admitted request: closes the store if it was left idle too
    /// long, else counts this request as use.
    pub fn touch(&self) {
        let now = self.clock.now();
        if !self.lock_if_idle(now)
            && let Some(open) = locked(&self.open).as_mut()
        {
            open.last_request = now;
        }
    }

    /// Closes the store when no request came for the idle time; true if it did.
    pub fn lock_if_idle(&self, now: Instant) -> bool {
        let closed = {
            let mut open = locked(&self.open);
            let idle = open
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.last_request) >= self.config.idle);
            if idle {
                *locked(&self.last_lock) = Some(LockReason::Idle);
            }
            idle.then(|| open.take())
        };
        // Closed outside the lock, and the background sync stopped without waiting
        // for a round trip in progress: this runs in a request too.
        let idle = closed.is_some();
        if let Some(Some(mut o)) = closed {
            stop_detached(o.background.take());
        }
        idle
    }

    /// Closes the store now (`None`: without a message, when the app stops). The
    /// background sync is told to stop without waiting for it: on a 2G link a round
    /// trip in progress can take long, and "Lock now" must answer at once; its own
    /// handle closes when that round trip ends.
    pub fn lock(&self, reason: Option<LockReason>) {
        let open = locked(&self.open).take();
        *locked(&self.last_lock) = reason;
        if let Some(mut o) = open {
            stop_detached(o.background.take());
        }
    }

    /// Quick wipe: closes the store without waiting for a background sync round trip
    /// (its thread ends on its own; its open handle writes only to removed files), then
    /// destroys every file of the store and forgets the sync status.
    pub fn wipe(&self) -> std::io::Result<()> {
        let open = locked(&self.open).take();
        if let Some(mut o) = open {
            stop_detached(o.background.take());
        }
        super::wipe::destroy(&self.config.home)?;
        *locked(&self.sync) = super::remote::SyncStatus::default();
        *locked(&self.last_lock) = Some(LockReason::Wiped);
        Ok(())
    }

    /// The server ordered this device wiped and a sync destroyed the store's files
    /// (`crate::sync`): closes the app's own handle too and destroys whatever is left
    /// (a handle open elsewhere may have written again meanwhile). The next page says
    /// why.
    pub fn wiped_remotely(&self) {
        // The reason first: a page asked for the moment the store is closed says why.
        *locked(&self.last_lock) = Some(LockReason::RemoteWiped);
        let open = locked(&self.open).take();
        if let Some(mut o) = open {
            stop_detached(o.background.take());
        }
        if let Err(e) = super::wipe::destroy(&self.config.home) {
            eprintln!("intake app: destroying the store on the server's order failed: {e}");
        }
    }

    /// Keeps `store` open for the coming requests, with a background sync when the
    /// device is enrolled.
    pub fn unlocked(&self, mut store: Store, key: Key) {
        store.set_clock(self.store_clock());
        let enrolled = matches!(store.enrolment(), Ok(Some(_)));
        let previous = locked(&self.open).replace(Open {
            store,
            key,
            last_request: self.clock.now(),
            background: None,
        });
        drop(previous);
        *locked(&self.last_lock) = None;
        if enrolled {
            self.start_background();
        }
    }

    /// Starts the background sync (once) for the open store.
    pub fn start_background(&self) {
        let mut open = locked(&self.open);
        if let Some(o) = open.as_mut()
            && o.background.is_none()
        {
            let status = self.sync.clone();
            let me = self.me.clone();
            o.background = Some(SyncLoop::start(
                self.config.home.clone(),
                o.key.clone(),
                super::remote::BACKGROUND_EVERY,
                move |report| {
                    super::remote::record(&status, report);
                    if super::remote::is_wiped(report) {
                        // On a thread of its own: this runs on the loop's thread,
                        // which closing the store waits for.
                        let me = me.clone();
                        let _ = std::thread::Builder::new()
                            .name("intake-app-wiped".into())
                            .spawn(move || {
                                if let Some(state) = me.upgrade() {
                                    state.wiped_remotely();
                                }
                            });
                        return;
                    }
                    // Kept in the store, so the time survives the app.
                    if report.is_ok()
                        && let Some(state) = me.upgrade()
                    {
                        state.with_store(|s| s.set_last_sync(chrono::Utc::now()));
                    }
                },
            ));
        }
    }

    /// The wall clock as the app's clock moves it, for the stores the app opens (the
    /// lock after N days without a sync, issue 12): tests move it instead of waiting.
    pub fn store_clock(&self) -> crate::store::Clock {
        let me = self.me.clone();
        Arc::new(move || {
            let offset = me.upgrade().map(|s| s.clock.offset()).unwrap_or_default();
            chrono::Utc::now() + chrono::Duration::from_std(offset).unwrap_or_default()
        })
    }

    /// The open store's key (for a sync thread's own handle).
    pub fn key(&self) -> Option<Key> {
        locked(&self.open).as_ref().map(|o| o.key.clone())
    }

    pub fn is_unlocked(&self) -> bool {
        locked(&self.open).is_some()
    }

    /// Why the store was last closed, if it is closed.
    pub fn last_lock(&self) -> Option<LockReason> {
        *locked(&self.last_lock)
    }

    /// Runs `f` on the open store; `None` when it is locked. Blocking: call it from
    /// `web::block`.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Option<T> {
        locked(&self.open).as_mut().map(|o| f(&mut o.store))
    }
}

/// Stops a background sync on a thread of its own (it waits for a round trip in
/// progress).
fn stop_detached(background: Option<SyncLoop>) {
    if let Some(background) = background {
        let _ = std::thread::Builder::new()
            .name("intake-app-stop-sync".into())
            .spawn(move || background.stop());
    }
}

/// Checks for idleness every few seconds (and whenever the clock is moved) for as
/// long as the app's state lives, so the store is closed on time even when no request
/// comes.
pub fn start_reaper(state: Weak<AppState>) {
    let _ = std::thread::Builder::new()
        .name("intake-app-idle".into())
        .spawn(move || {
            loop {
                let Some(s) = state.upgrade() else { break };
                let every =
                    (s.config.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
                s.clock.wait(every);
                s.lock_if_idle(s.clock.now());
            }
        });
}
