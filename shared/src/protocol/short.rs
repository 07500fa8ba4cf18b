//! Protocol version 7: abbreviated dependencies. An edit of a synced record names, as
//! its dependency, a change the server already holds: 32 bytes of hash that compress
//! to nothing (320 B of a 10-edit push, the largest part of its body). A v7 device
//! sends such a change without its dependencies and, beside the pack, the first
//! [`PREFIX_BYTES`] of each; the server puts the hashes back from that record's stored
//! changes, and only then is the change's checksum, hash and the push's digest what
//! the device made.
//!
//! What the device abbreviates: a change of record R whose every dependency is a change
//! of R that is not in this push. The device pushes every change the server lacks
//! (`changes_since` what the server acknowledged), so such a dependency is one the
//! device believes the server holds. No state beyond the request is needed, and a
//! record pushed whole (a first push, or again after `MissingDependencies`) carries
//! its whole history, so nothing in it is abbreviated.
//!
//! What can go wrong, and why nothing wrong is ever stored: a prefix the server finds
//! for none of R's changes (a server restored from a backup, a change stored before it
//! kept receipts) or for more than one cannot be expanded, and an expansion that picks
//! a change other than the device's (a restored server holding another change with
//! that prefix, about one chance in 2^32 per change it holds) makes the push's digest,
//! taken over the changes as the device holds them, disagree. Both refuse the whole
//! request before anything is judged (409 `send_in_full`), and the device sends the
//! same request again at once with every dependency in full.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{DecodeError, Hash, RecordChanges, WireId};
use crate::pack;

/// How many leading bytes of a dependency's hash travel in its place.
pub const PREFIX_BYTES: usize = 4;

/// The first bytes of a change hash, as an abbreviated dependency.
pub type Prefix = [u8; PREFIX_BYTES];

/// A pushed change sent without its dependencies, and the start of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortDeps {
    /// The change's position among all the push's changes (records in order, each
    /// record's changes in order), from 0. Strictly increasing through the list.
    pub change: u32,
    /// The first [`PREFIX_BYTES`] of each dependency's hash, in the change's order.
    pub deps: Vec<Prefix>,
}

/// The one hash of `hashes` that starts with `prefix`; `None` when none does, or more
/// than one (which change was meant is then unknown: never a guess). What the server
/// puts a pushed prefix back with, and a device a pulled one (version 8).
pub fn the_one_with_prefix(hashes: &[Hash], prefix: &Prefix) -> Option<Hash> {
    let mut found = hashes.iter().filter(|h| h.starts_with(prefix));
    let first = found.next()?;
    found.next().is_none().then_some(*first)
}

fn prefix(hash: &Hash) -> Prefix {
    hash[..PREFIX_BYTES].try_into().expect("a hash is longer")
}

/// The push with every change that can be abbreviated sent without its dependencies,
/// and those dependencies' prefixes.
pub(crate) fn abbreviate(push: &[RecordChanges]) -> (Vec<RecordChanges>, Vec<ShortDeps>) {
    let mut out = Vec::with_capacity(push.len());
    let mut short = Vec::new();
    let mut index: u32 = 0;
    for r in push {
        // The record's own pushed changes, hashed only if one of them has dependencies.
        let mut own: Option<HashSet<Hash>> = None;
        let mut changes = Vec::with_capacity(r.changes.len());
        for c in &r.changes {
            let stripped = pack::strip_deps(c).filter(|(deps, _)| {
                let own = own.get_or_insert_with(|| {
                    r.changes
                        .iter()
                        .filter_map(|c| pack::change_hash(c))
                        .collect()
                });
                deps.iter().all(|d| !own.contains(d))
            });
            match stripped {
                Some((deps, bare)) => {
                    short.push(ShortDeps {
                        change: index,
                        deps: deps.iter().map(prefix).collect(),
                    });
                    changes.push(bare);
                }
                None => changes.push(c.clone()),
            }
            index = index.checked_add(1).expect("fewer than 2^32 changes");
        }
        out.push(RecordChanges {
            record: r.record,
            changes,
        });
    }
    (out, short)
}

/// Why a push's abbreviated dependencies could not be put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The message itself is wrong (an index out of order or past the push, a change
    /// that was not sent without its dependencies): 400.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A prefix names no change of its record, or more than one, or the expanded push
    /// is not the one the device digested: nothing is judged, and the device sends the
    /// request again with every dependency in full (409 `send_in_full`).
    #[error("{0}")]
    SendInFull(String),
}

/// The records whose dependencies `short` abbreviates, each once, in push order.
pub(crate) fn records_of(push: &[RecordChanges], short: &[ShortDeps]) -> Vec<WireId> {
    let mut out = Vec::new();
    let mut wanted = short.iter().map(|s| s.change as usize).peekable();
    let mut start = 0usize;
    for r in push {
        let end = start + r.changes.len();
        let mut any = false;
        while wanted.peek().is_some_and(|&i| i < end) {
            wanted.next();
            any = true;
        }
        if any {
            out.push(r.record);
        }
        start = end;
    }
    out
}

/// Puts the dependencies back, each prefix resolved by `resolve` within its record
/// (`None`: no change of that record has it, or more than one has).
pub(crate) fn expand(
    push: &mut [RecordChanges],
    short: &[ShortDeps],
    resolve: &mut dyn FnMut(&WireId, &Prefix) -> Option<Hash>,
) -> Result<(), ExpandError> {
    let bad = |why: &str| {
        ExpandError::Decode(DecodeError::Malformed(format!(
            "abbreviated dependencies: {why}"
        )))
    };
    let mut entries = short.iter().peekable();
    let mut start = 0usize;
    let mut last: Option<u32> = None;
    for r in push.iter_mut() {
        let end = start + r.changes.len();
        while let Some(s) = entries.next_if(|s| (s.change as usize) < end) {
            if last.is_some_and(|l| s.change <= l) {
                return Err(bad("changes out of order"));
            }
            last = Some(s.change);
            if s.deps.is_empty() {
                return Err(bad("a change with none"));
            }
            let mut deps = Vec::with_capacity(s.deps.len());
            for p in &s.deps {
                deps.push(resolve(&r.record, p).ok_or_else(|| {
                    ExpandError::SendInFull(
                        "a dependency's prefix names no change of its record, or several: \
                         send the dependencies in full"
                            .into(),
                    )
                })?);
            }
            let change = &mut r.changes[s.change as usize - start];
            *change = pack::with_deps(change, &deps)
                .ok_or_else(|| bad("a change sent with its dependencies"))?;
        }
        start = end;
    }
    if entries.next().is_some() {
        return Err(bad("a change past the end of the push"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::the_one_with_prefix;

    #[test]
    fn a_prefix_is_put_back_only_when_exactly_one_change_has_it() {
        let mut a = [1u8; 32];
        let mut b = [2u8; 32];
        let c = [3u8; 32];
        assert_eq!(the_one_with_prefix(&[a, b, c], &[2, 2, 2, 2]), Some(b));
        assert_eq!(the_one_with_prefix(&[a, b, c], &[4, 4, 4, 4]), None);
        assert_eq!(the_one_with_prefix(&[], &[1, 1, 1, 1]), None);
        // Two changes of the record start alike: neither is chosen.
        a[..4].copy_from_slice(&[9, 9, 9, 9]);
        b[..4].copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(the_one_with_prefix(&[a, b, c], &[9, 9, 9, 9]), None);
        assert_eq!(the_one_with_prefix(&[a, c], &[9, 9, 9, 9]), Some(a));
    }
}
