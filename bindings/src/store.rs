//! `IntakeStore`: one open encrypted store, the object an app holds while the user
//! works. Opening takes a passphrase (Argon2id with the store's salt) or the raw
//! 32-byte key the platform keystore hands over; `lock` closes it, `wipe` destroys it.
//! Every record call here is the client library's own (`Store::create`, `edit`,
//! `list`, `get`, the record's `Edit` methods), with values parsed against the form as
//! the `intake` CLI and the field app parse them.
//!
//! **Every method blocks**: each reads or writes the SQLCipher database on the calling
//! thread (opening with a passphrase also runs Argon2id, about a second on a phone).
//! Call them from a background thread (Kotlin `Dispatchers.IO`, a Swift `Task` or
//! actor off the main actor), never from the UI thread. The handle is safe to share
//! between threads: calls on it take turns.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use intake_client::store::DB_FILE;
use intake_client::sync::background::SyncLoop;
use intake_client::{Key, Store};
use intake_shared::{Lang, RecordId};

use crate::IntakeError;
use crate::forms;

/// One answer as a person typed it ("2026-04-19", "yes", "prizren", "42"): parsed and
/// checked against the record's form before anything is written.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FieldInput {
    pub field: String,
    pub value: String,
}

/// An open handle's store, key and background sync.
pub(crate) struct Opened {
    store: Store,
    /// For the sync's own connection (`crate::sync`); wiped from memory on drop.
    key: Key,
    pub(crate) background: Option<SyncLoop>,
}

/// Where a handle stands.
pub(crate) enum State {
    /// Boxed: the other states hold nothing.
    Open(Box<Opened>),
    /// Closed by `lock()`: open the store again.
    Locked,
    /// Destroyed (quick wipe or the server's order).
    Wiped,
}

/// An open store. See the module documentation: every method blocks.
#[derive(uniffi::Object)]
pub struct IntakeStore {
    pub(crate) dir: PathBuf,
    pub(crate) state: Mutex<State>,
    lang: Mutex<Lang>,
}

/// A mutex whose holder panicked still guards consistent data here (every change to
/// the store is one SQLite transaction), so it is used, not propagated as a panic.
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The key the app handed over; every copy made here is wiped when dropped (the
/// foreign array is the app's to clear).
fn raw_key(bytes: Vec<u8>) -> Result<Key, IntakeError> {
    let bytes = zeroize::Zeroizing::new(bytes);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(IntakeError::BadKey {
            reason: "a raw key is 32 bytes".into(),
        });
    }
    key.copy_from_slice(&bytes);
    Ok(Key::from_bytes(*key))
}

fn exists(dir: &Path) -> bool {
    dir.join(DB_FILE).exists()
}

impl IntakeStore {
    fn opened(dir: PathBuf, key: Key) -> Result<Arc<Self>, IntakeError> {
        let store = Store::open(&dir, &key)?;
        Ok(Arc::new(IntakeStore {
            dir,
            state: Mutex::new(State::Open(Box::new(Opened {
                store,
                key,
                background: None,
            }))),
            lang: Mutex::new(Lang::En),
        }))
    }

    pub(crate) fn lang(&self) -> Lang {
        *locked(&self.lang)
    }

    /// Runs `f` on the open store.
    pub(crate) fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store, Lang) -> Result<T, IntakeError>,
    ) -> Result<T, IntakeError> {
        let lang = self.lang();
        match &mut *locked(&self.state) {
            State::Open(o) => f(&mut o.store, lang),
            State::Locked => Err(IntakeError::Locked),
            State::Wiped => Err(IntakeError::Wiped),
        }
    }

    /// The open store's key, for a connection of its own.
    pub(crate) fn key(&self) -> Result<Key, IntakeError> {
        match &*locked(&self.state) {
            State::Open(o) => Ok(o.key.clone()),
            State::Locked => Err(IntakeError::Locked),
            State::Wiped => Err(IntakeError::Wiped),
        }
    }

    /// Closes the handle as wiped (after a sync obeyed the server's wipe order on a
    /// connection of its own), and destroys whatever the closed handle left.
    pub(crate) fn wiped_remotely(&self) {
        let previous = std::mem::replace(&mut *locked(&self.state), State::Wiped);
        close(previous);
        // Best effort: the files are already gone unless a write raced the wipe.
        let _ = intake_client::store::destroy_dir(&self.dir);
    }

    /// Changes record `id` with `f` as one change, labelling errors with its form.
    pub(crate) fn change(
        &self,
        id: &str,
        f: impl FnOnce(&mut intake_shared::Edit<'_>) -> Result<(), intake_shared::RecordError>,
    ) -> Result<(), IntakeError> {
        let id = record_id(id)?;
        self.with_store(|store, lang| {
            let form = store.get(id)?.form().clone();
            store
                .edit(id, f)
                .map_err(|e| IntakeError::store(e, &form, lang))
        })
    }
}

/// Closes a handle's state: its store connection is dropped, its background sync
/// stopped without waiting.
fn close(state: State) {
    if let State::Open(o) = state {
        stop_detached(o.background);
    }
}

/// Stops a background sync without waiting for its round trip (on a thread of its
/// own, as the field app does: "Lock now" must answer at once; the loop's own
/// connection closes when that round trip ends).
pub(crate) fn stop_detached(background: Option<SyncLoop>) {
    if let Some(background) = background {
        let _ = std::thread::Builder::new()
            .name("intake-stop-sync".into())
            .spawn(move || background.stop());
    }
}

pub(crate) fn record_id(id: &str) -> Result<RecordId, IntakeError> {
    id.parse()
        .map_err(|e: intake_shared::ids::BadRecordId| IntakeError::input(e.to_string()))
}

#[uniffi::export]
impl IntakeStore {
    /// Creates a new store in `dir` protected by `passphrase` (too weak a passphrase
    /// is refused, and nothing is created). Blocks: Argon2id and file writes.
    #[uniffi::constructor]
    pub fn create_with_passphrase(
        dir: String,
        passphrase: String,
    ) -> Result<Arc<Self>, IntakeError> {
        let dir = PathBuf::from(dir);
        let passphrase = zeroize::Zeroizing::new(passphrase);
        if exists(&dir) {
            return Err(IntakeError::StoreExists);
        }
        let key = Key::from_passphrase(&dir, &passphrase)?;
        Self::opened(dir, key)
    }

    /// Opens the store in `dir` with its passphrase. A wrong passphrase is
    /// `WrongPassphrase` and writes nothing. Blocks: Argon2id (about a second).
    #[uniffi::constructor]
    pub fn open_with_passphrase(dir: String, passphrase: String) -> Result<Arc<Self>, IntakeError> {
        let dir = PathBuf::from(dir);
        let passphrase = zeroize::Zeroizing::new(passphrase);
        if !exists(&dir) {
            return Err(IntakeError::NoStore);
        }
        let key = Key::from_passphrase(&dir, &passphrase)?;
        Self::opened(dir, key)
    }

    /// Creates a new store in `dir` encrypted with a raw 32-byte key (generated and
    /// kept by Android Keystore or the iOS Keychain). The library's copy of the key is
    /// zeroed; the app clears its own array after the call.
    #[uniffi::constructor]
    pub fn create_with_key(dir: String, key: Vec<u8>) -> Result<Arc<Self>, IntakeError> {
        let dir = PathBuf::from(dir);
        let key = raw_key(key)?;
        if exists(&dir) {
            return Err(IntakeError::StoreExists);
        }
        Self::opened(dir, key)
    }

    /// Opens the store in `dir` with its raw 32-byte key. A wrong key is
    /// `WrongPassphrase` and writes nothing.
    #[uniffi::constructor]
    pub fn open_with_key(dir: String, key: Vec<u8>) -> Result<Arc<Self>, IntakeError> {
        let dir = PathBuf::from(dir);
        let key = raw_key(key)?;
        if !exists(&dir) {
            return Err(IntakeError::NoStore);
        }
        Self::opened(dir, key)
    }

    /// Sets the language of labels and messages (`sq`, `sr-Latn`, `sr-Cyrl`, `en`,
    /// `tr`, `bs`, `rom`; English until set). Does no I/O.
    pub fn set_language(&self, lang: String) -> Result<(), IntakeError> {
        *locked(&self.lang) = forms::lang(&lang)?;
        Ok(())
    }

    /// Closes the store: its database connection, and the background sync (told to
    /// stop, not waited for). Every later call answers `Locked`; open it again with
    /// its passphrase or key. Returns at once.
    pub fn lock(&self) {
        let previous = std::mem::replace(&mut *locked(&self.state), State::Locked);
        close(previous);
    }

    /// Quick wipe: closes the store (the background sync is not waited for), then
    /// overwrites and removes every file of it, the salt first. Every later call
    /// answers `Wiped`. The app deletes a key it keeps in the platform keystore.
    /// Blocks for the file writes (well under a second).
    pub fn wipe(&self) -> Result<(), IntakeError> {
        let mut state = locked(&self.state);
        match std::mem::replace(&mut *state, State::Wiped) {
            State::Open(mut o) => {
                stop_detached(o.background.take());
                o.store.destroy()?;
                Ok(())
            }
            State::Locked => {
                *state = State::Locked;
                Err(IntakeError::Locked)
            }
            State::Wiped => Ok(()),
        }
    }
}
