//! Which device clocks were clearly wrong (issue 13, clock skew). A change carries the
//! time its device's clock said; that clock can be a year off. No decision uses that
//! time (conflicts and review follow causal order, late delivery the log position);
//! it is only shown to people, and this module says when it is clearly wrong, from
//! facts that do not depend on any device clock: when the server received the change,
//! and what the change causally follows.
//!
//! - **Ahead**: the device time is later than the server's receipt of the change by
//!   more than [`CLEARLY_WRONG`]. A correct clock can never be ahead of the receipt.
//! - **Behind**: the device time is earlier, by more than [`CLEARLY_WRONG`], than a
//!   moment the change must have come after: the server's receipt of a change by
//!   another device that it follows (the device could only have had it from the
//!   server), carried through the device's own earlier changes. Being offline for
//!   weeks explains a device time long before its receipt, so that alone is not
//!   "behind".
//!
//! Pure functions over times passed in: no clock is read here.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

/// A device time this far past what it must be is "clearly wrong"; less is drift and
/// not worth a mark. A correct clock is never flagged, whatever this is.
pub const CLEARLY_WRONG: Duration = Duration::hours(1);

/// What a change says about itself, read off the document (`Record::change_times`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeTime {
    pub hash: [u8; 32],
    /// The device part of the actor, hex.
    pub device: String,
    pub deps: Vec<[u8; 32]>,
    /// The device's clock, in milliseconds since the epoch.
    pub at_ms: i64,
}

/// How wrong a device's clock clearly was: at least this much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockError {
    Ahead(Duration),
    Behind(Duration),
}

/// What the server knows about one change's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Judged {
    /// When the server stored it (its clock), if known.
    pub received: Option<DateTime<Utc>>,
    /// Set when the device's clock was clearly wrong.
    pub error: Option<ClockError>,
}

/// Judges every change's device time. `received` holds the server's receipts by hash
/// (a change without one is judged only against what it follows). The changes may come
/// in any order; the result is the same.
pub fn judge(
    changes: &[ChangeTime],
    received: &HashMap<[u8; 32], DateTime<Utc>>,
) -> HashMap<[u8; 32], Judged> {
    let by_hash: HashMap<[u8; 32], &ChangeTime> = changes.iter().map(|c| (c.hash, c)).collect();
    // `floor[c]`: the latest moment `c` must have come after (server time), if any.
    let mut floor: HashMap<[u8; 32], Option<DateTime<Utc>>> = HashMap::new();
    // Kahn's order over the dependency graph, so a dependency's floor is known first.
    let mut waiting: HashMap<[u8; 32], usize> = HashMap::new();
    let mut children: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
    for c in changes {
        let known: Vec<_> = c.deps.iter().filter(|d| by_hash.contains_key(*d)).collect();
        waiting.insert(c.hash, known.len());
        for d in known {
            children.entry(*d).or_default().push(c.hash);
        }
    }
    let mut ready: Vec<[u8; 32]> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(h, _)| *h)
        .collect();
    while let Some(h) = ready.pop() {
        let c = by_hash[&h];
        let mut f: Option<DateTime<Utc>> = None;
        for d in c.deps.iter().filter_map(|d| by_hash.get(d)) {
            let bound = if d.device == c.device {
                floor.get(&d.hash).copied().flatten()
            } else {
                received.get(&d.hash).copied()
            };
            f = f.max(bound);
        }
        floor.insert(h, f);
        for child in children.get(&h).into_iter().flatten() {
            let n = waiting.get_mut(child).expect("every change is counted");
            *n -= 1;
            if *n == 0 {
                ready.push(*child);
            }
        }
    }
    changes
        .iter()
        .map(|c| {
            let got = received.get(&c.hash).copied();
            let at = DateTime::<Utc>::from_timestamp_millis(c.at_ms);
            let error = match (at, got, floor.get(&c.hash).copied().flatten()) {
                (Some(at), Some(got), _) if at - got > CLEARLY_WRONG => {
                    Some(ClockError::Ahead(at - got))
                }
                (Some(at), _, Some(f)) if f - at > CLEARLY_WRONG => {
                    Some(ClockError::Behind(f - at))
                }
                _ => None,
            };
            (
                c.hash,
                Judged {
                    received: got,
                    error,
                },
            )
        })
        .collect()
}

/// A rough size for people, rounded to the nearest unit: years from 360 days, else
/// days from 2 days, else hours (at least 1). `(n, unit)`. A change reaches the server
/// a moment after it is made, so "5 hours ahead" measures as a little less.
pub fn rough(d: Duration) -> (i64, RoughUnit) {
    let d = d.abs();
    if d >= Duration::days(360) {
        ((d.num_days() + 182) / 365, RoughUnit::Years)
    } else if d >= Duration::days(2) {
        ((d.num_hours() + 12) / 24, RoughUnit::Days)
    } else {
        (((d.num_minutes() + 30) / 60).max(1), RoughUnit::Hours)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoughUnit {
    Years,
    Days,
    Hours,
}

/// The time a new record counts as created for lists, date filters and donor counts:
/// the device's time, unless that clock was clearly wrong, then the server's receipt.
/// Ahead: later than `received` by more than [`CLEARLY_WRONG`]. Behind: earlier than
/// the device's enrolment by more than that (nothing can be recorded on a device before
/// it exists; weeks offline are not "behind"). A record without a device time counts
/// from its receipt.
pub fn creation_time(
    device_time: Option<DateTime<Utc>>,
    received: DateTime<Utc>,
    enrolled: DateTime<Utc>,
) -> DateTime<Utc> {
    match device_time {
        Some(t) if t <= received + CLEARLY_WRONG && t >= enrolled - CLEARLY_WRONG => t,
        _ => received,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(h)
    }

    fn change(n: u8, device: &str, deps: &[u8], at: DateTime<Utc>) -> ChangeTime {
        ChangeTime {
            hash: [n; 32],
            device: device.into(),
            deps: deps.iter().map(|d| [*d; 32]).collect(),
            at_ms: at.timestamp_millis(),
        }
    }

    #[test]
    fn correct_clocks_are_never_flagged_even_after_weeks_offline() {
        // b made 2 offline for three weeks, then 3 after it; a saw both and answered.
        let changes = [
            change(1, "a", &[], t(0)),
            change(2, "b", &[1], t(1)),
            change(3, "b", &[2], t(2)),
            change(4, "a", &[3], t(24 * 21 + 1)),
        ];
        let received = HashMap::from([
            ([1; 32], t(0)),
            ([2; 32], t(24 * 21)),
            ([3; 32], t(24 * 21)),
            ([4; 32], t(24 * 21 + 1)),
        ]);
        let judged = judge(&changes, &received);
        assert!(judged.values().all(|j| j.error.is_none()), "{judged:?}");
    }

    #[test]
    fn ahead_of_its_receipt_and_behind_what_it_follows_are_flagged() {
        let changes = [
            change(1, "a", &[], t(24 * 365)),
            change(2, "b", &[1], t(-3)),
            // b's next change follows a's only through b's own: still after a's receipt.
            change(3, "b", &[2], t(-2)),
            // Made offline before anything it follows: nothing says the clock is wrong.
            change(4, "c", &[], t(-24 * 30)),
        ];
        let received = HashMap::from([([1; 32], t(0)), ([2; 32], t(1)), ([3; 32], t(1))]);
        let judged = judge(&changes, &received);
        assert!(
            matches!(judged[&[1; 32]].error, Some(ClockError::Ahead(d)) if d == Duration::days(365))
        );
        assert_eq!(
            judged[&[2; 32]].error,
            Some(ClockError::Behind(Duration::hours(3)))
        );
        assert_eq!(
            judged[&[3; 32]].error,
            Some(ClockError::Behind(Duration::hours(2)))
        );
        assert_eq!(judged[&[4; 32]].error, None);
        assert_eq!(rough(Duration::days(365)), (1, RoughUnit::Years));
        assert_eq!(
            rough(Duration::hours(5) - Duration::seconds(2)),
            (5, RoughUnit::Hours)
        );
    }

    #[test]
    fn a_creation_time_from_a_clearly_wrong_clock_counts_from_its_receipt() {
        let at = |h: i64| DateTime::<Utc>::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap();
        let (enrolled, received) = (at(0), at(24 * 30));
        // A week offline, correct clock: the device's time stands.
        assert_eq!(
            creation_time(Some(at(24 * 23)), received, enrolled),
            at(24 * 23)
        );
        // Half an hour of drift either way stands too.
        assert_eq!(
            creation_time(Some(received + Duration::minutes(30)), received, enrolled),
            received + Duration::minutes(30)
        );
        // A year ahead, or before the device existed: the receipt.
        assert_eq!(
            creation_time(Some(at(24 * 395)), received, enrolled),
            received
        );
        assert_eq!(
            creation_time(Some(at(-24 * 335)), received, enrolled),
            received
        );
        assert_eq!(creation_time(None, received, enrolled), received);
    }
}
