//! Every change's device time and what it follows, for [`crate::skew::judge`] (issue
//! 13, clock skew): the time a device's clock gave a change is shown to people, never
//! used to decide anything, and is marked when it is clearly wrong.

use crate::skew::ChangeTime;

use super::Record;
use super::conflict::device_of;

impl Record {
    /// Every change of the document: hash, device, dependencies and device time.
    pub fn change_times(&mut self) -> Vec<ChangeTime> {
        self.doc
            .get_changes(&[])
            .into_iter()
            .map(|c| ChangeTime {
                hash: c.hash().0,
                device: device_of(c.actor_id()),
                deps: c.deps().iter().map(|d| d.0).collect(),
                at_ms: c.timestamp(),
            })
            .collect()
    }
}
