//! A benchmark device: the real client library over its own encrypted store in a
//! temporary directory, enrolled through the counting proxy.

use intake_client::{Key, Store, SyncOptions, SyncSummary};

use crate::data::{KEY, Template};

pub struct Device {
    pub store: Store,
    // Removed when the device is dropped (after the store closes: fields drop in order).
    _dir: tempfile::TempDir,
}

impl Device {
    /// A device with an empty store (e.g. a supervisor's new laptop).
    pub fn empty() -> anyhow::Result<Device> {
        let dir = tempfile::Builder::new()
            .prefix("intake-bench-device")
            .tempdir()?;
        let store = Store::open(dir.path(), &Key::from_bytes(KEY))?;
        Ok(Device { store, _dir: dir })
    }

    /// A device holding a copy of `template`'s records, created offline.
    pub fn from_template(template: &Template) -> anyhow::Result<Device> {
        let dir = tempfile::Builder::new()
            .prefix("intake-bench-device")
            .tempdir()?;
        template.copy_to(dir.path())?;
        let store = Store::open(dir.path(), &Key::from_bytes(KEY))?;
        Ok(Device { store, _dir: dir })
    }

    /// Enrols at `url` with `code`, trusting `ca_file` when given.
    pub fn enroll(
        &mut self,
        url: &str,
        code: &str,
        label: &str,
        ca_file: Option<&str>,
    ) -> anyhow::Result<()> {
        intake_client::enroll(&mut self.store, url, code, label, ca_file)?;
        Ok(())
    }

    /// One full sync with the default options (what a field app does).
    pub fn sync(&mut self) -> anyhow::Result<SyncSummary> {
        Ok(intake_client::sync(
            &mut self.store,
            &SyncOptions::default(),
            &mut |_| {},
        )?)
    }
}
