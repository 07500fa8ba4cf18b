//! The sync plan as tables: for each situation the store can be in, the step the plan
//! takes; for each answer, what it means; for each failure, whether to retry; and that a
//! sync always ends (resend once, each record once, stalls).

use intake_shared::plan::*;
use intake_shared::protocol::{Outcome, Rejection, Resume};

const MAX: Budgets = Budgets {
    push: 2 << 20,
    page: 1 << 20,
    records: 1000,
};

fn shape(step: Step) -> Shape {
    match step {
        Step::Send(s) => s,
        Step::Done => panic!("expected a request, the plan is done"),
    }
}

fn held() -> Holdings {
    Holdings {
        held: true,
        to_push: 3,
        ..Holdings::default()
    }
}

#[test]
fn the_next_step_follows_what_the_store_holds() {
    let resume = Resume {
        digest: [9; 32],
        have: 4096,
    };
    // (situation, holdings, push_bytes > 0, held_only, page_bytes, want, resume)
    type Case = (&'static str, Holdings, bool, bool, u32, u32, Option<Resume>);
    let cases: Vec<Case> = vec![
        (
            "records to push: push, with a small page",
            Holdings {
                to_push: 5,
                ..Holdings::default()
            },
            true,
            false,
            PUSH_PAGE,
            0,
            None,
        ),
        (
            "a held page: push its records only, no page",
            held(),
            true,
            true,
            0,
            0,
            None,
        ),
        (
            "nothing to push: pull a page of the page budget",
            Holdings::default(),
            false,
            false,
            MAX.page,
            0,
            None,
        ),
        (
            "wanted records: asked for with the page",
            Holdings {
                wanted: 3,
                ..Holdings::default()
            },
            false,
            false,
            MAX.page,
            3,
            None,
        ),
        (
            "a half-received item: resumed",
            Holdings {
                download: Some(resume),
                ..Holdings::default()
            },
            false,
            false,
            MAX.page,
            0,
            Some(resume),
        ),
        (
            "a half-received item while pushing: resumed on the push's small page",
            Holdings {
                to_push: 1,
                download: Some(resume),
                ..Holdings::default()
            },
            true,
            false,
            PUSH_PAGE,
            0,
            Some(resume),
        ),
    ];
    for (what, holdings, pushes, held_only, page, want, resume) in cases {
        let plan = Plan::new(None, MAX);
        let s = shape(plan.next(&holdings));
        assert_eq!(s.push_bytes > 0, pushes, "{what}");
        assert_eq!(s.held_only, held_only, "{what}");
        assert_eq!(s.page_bytes, page, "{what}");
        assert_eq!(s.want, want, "{what}");
        assert_eq!(s.resume, resume, "{what}");
    }
}

#[test]
fn wanted_records_are_asked_within_the_records_budget() {
    let plan = Plan::new(None, MAX);
    let s = shape(plan.next(&Holdings {
        wanted: 5000,
        ..Holdings::default()
    }));
    assert_eq!(s.want, MAX.records);
}

#[test]
fn a_sync_ends_when_the_server_has_no_more_and_nothing_waits() {
    let mut plan = Plan::new(None, MAX);
    let idle = Holdings::default();
    assert!(matches!(plan.next(&idle), Step::Send(_)));
    let page = |more| Answer {
        asked_page: true,
        more,
        progress: true,
    };
    plan.answered(&page(true), &[]);
    assert!(matches!(plan.next(&idle), Step::Send(_)), "more pages");
    plan.answered(&page(false), &[]);
    assert_eq!(plan.next(&idle), Step::Done);
    // Still work to do: not done, whatever the server said.
    for busy in [
        Holdings {
            to_push: 1,
            ..Holdings::default()
        },
        held(),
        Holdings {
            wanted: 1,
            ..Holdings::default()
        },
        Holdings {
            download: Some(Resume {
                digest: [1; 32],
                have: 0,
            }),
            ..Holdings::default()
        },
    ] {
        assert!(matches!(plan.next(&busy), Step::Send(_)), "{busy:?}");
    }
}

#[test]
fn a_page_whose_large_item_did_not_add_up_is_asked_for_again() {
    let mut plan = Plan::new(None, MAX);
    plan.answered(
        &Answer {
            asked_page: true,
            more: false,
            progress: true,
        },
        &[],
    );
    assert_eq!(plan.next(&Holdings::default()), Step::Done);
    plan.pull_again();
    assert!(matches!(plan.next(&Holdings::default()), Step::Send(_)));
}

#[test]
fn a_push_without_a_page_does_not_end_the_pull() {
    let mut plan = Plan::new(None, MAX);
    plan.answered(
        &Answer {
            asked_page: false,
            more: false,
            progress: true,
        },
        &[([1; 16], Outcome::Stored)],
    );
    assert!(matches!(plan.next(&Holdings::default()), Step::Send(_)));
}

#[test]
fn what_each_outcome_means() {
    let mut plan = Plan::new(None, MAX);
    let refused = |reason| Outcome::Rejected {
        reason,
        message: "why".into(),
    };
    let fates = plan.answered(
        &Answer::default(),
        &[
            ([1; 16], Outcome::Stored),
            ([2; 16], refused(Rejection::Forbidden)),
            ([3; 16], refused(Rejection::MissingDependencies)),
            ([4; 16], refused(Rejection::TooLarge)),
        ],
    );
    assert_eq!(fates[0], Fate::Stored);
    assert!(matches!(
        fates[1],
        Fate::Refused {
            reason: Rejection::Forbidden,
            ..
        }
    ));
    assert!(matches!(fates[2], Fate::ResendWhole { now: true, .. }));
    assert!(matches!(
        fates[3],
        Fate::Refused {
            reason: Rejection::TooLarge,
            ..
        }
    ));
    // Tried records are left out of what is pushed again in this sync, except the one
    // to resend whole.
    assert!(plan.tried().contains(&[1; 16]));
    assert!(plan.tried().contains(&[2; 16]));
    assert!(!plan.tried().contains(&[3; 16]));
}

#[test]
fn a_record_is_resent_whole_once_a_sync() {
    let mut plan = Plan::new(None, MAX);
    let missing = Outcome::Rejected {
        reason: Rejection::MissingDependencies,
        message: "m".into(),
    };
    let first = plan.answered(&Answer::default(), &[([3; 16], missing.clone())]);
    assert!(matches!(first[0], Fate::ResendWhole { now: true, .. }));
    assert!(!plan.tried().contains(&[3; 16]));
    let second = plan.answered(&Answer::default(), &[([3; 16], missing)]);
    assert!(matches!(second[0], Fate::ResendWhole { now: false, .. }));
    assert!(plan.tried().contains(&[3; 16]), "not again in this sync");
}

#[test]
fn failures_shrink_the_budgets_and_successes_grow_them_back() {
    let mut plan = Plan::new(None, MAX);
    assert_eq!(plan.failed(Failure::Retryable), Retry::Now);
    assert_eq!(plan.budgets().push, MAX.push / 2);
    assert_eq!(plan.budgets().page, MAX.page / 2);
    for _ in 0..4 {
        plan.failed(Failure::Retryable);
    }
    // Never below the floor, however often it fails.
    let mut p = Plan::new(None, MAX);
    for _ in 0..40 {
        p = {
            let mut q = p.clone();
            if q.failed(Failure::Retryable) == Retry::GiveUp {
                q = Plan::new(Some(q.budgets()), MAX);
            }
            q
        };
    }
    assert_eq!(p.budgets().push, FLOOR);
    assert_eq!(p.budgets().page, FLOOR);
    // Answers grow them back, up to the maximum.
    for _ in 0..40 {
        p.answered(
            &Answer {
                progress: true,
                ..Answer::default()
            },
            &[],
        );
    }
    assert_eq!(p.budgets(), MAX);
    // The store's budgets start the next sync, within the maximum.
    let kept = Budgets {
        push: 20_000,
        page: 30_000,
        records: 5000,
    };
    let next = Plan::new(Some(kept), MAX);
    assert_eq!(
        next.budgets(),
        Budgets {
            push: 20_000,
            page: 30_000,
            records: 1000
        }
    );
}

#[test]
fn retries_are_bounded_and_offline_gives_up_soon() {
    let mut plan = Plan::new(None, MAX);
    let mut tries = 0;
    while plan.failed(Failure::Retryable) == Retry::Now {
        tries += 1;
        assert!(tries < 100);
    }
    assert_eq!(tries + 1, RETRY_LIMIT as usize);
    let mut plan = Plan::new(None, MAX);
    assert_eq!(plan.failed(Failure::Offline), Retry::Now);
    assert_eq!(plan.failed(Failure::Offline), Retry::GiveUp);
    assert_eq!(
        plan.budgets(),
        MAX,
        "no signal says nothing of the link's size"
    );
    let mut plan = Plan::new(None, MAX);
    assert_eq!(plan.failed(Failure::Permanent), Retry::GiveUp);
    // An answer in between starts the count again.
    let mut plan = Plan::new(None, MAX);
    for _ in 0..3 * RETRY_LIMIT {
        assert_eq!(plan.failed(Failure::Retryable), Retry::Now);
        plan.answered(
            &Answer {
                progress: true,
                ..Answer::default()
            },
            &[],
        );
    }
}

#[test]
fn a_busy_server_is_waited_for_without_shrinking() {
    let mut plan = Plan::new(None, MAX);
    assert_eq!(plan.failed(Failure::Busy), Retry::Now);
    assert_eq!(plan.budgets(), MAX);
    let mut tries = 1;
    while plan.failed(Failure::Busy) == Retry::Now {
        tries += 1;
    }
    assert_eq!(tries + 1, RETRY_LIMIT);
}

#[test]
fn a_413_lowers_the_push_and_the_records_for_the_rest_of_the_sync() {
    let mut plan = Plan::new(None, MAX);
    assert_eq!(plan.failed(Failure::TooLarge), Retry::Now);
    let after = plan.budgets();
    assert_eq!(after.push, MAX.push / 2);
    assert_eq!(after.records, MAX.records / 2);
    assert_eq!(after.page, MAX.page, "pages are not what was too large");
    for _ in 0..10 {
        plan.answered(
            &Answer {
                progress: true,
                ..Answer::default()
            },
            &[],
        );
    }
    assert_eq!(
        plan.budgets().push,
        after.push,
        "does not grow back past it"
    );
    assert_eq!(plan.budgets().records, after.records);
    // At its least, shrinking cannot help: give up.
    let least = Budgets {
        push: FLOOR,
        page: FLOOR,
        records: 1,
    };
    let mut plan = Plan::new(Some(least), MAX);
    assert_eq!(plan.failed(Failure::TooLarge), Retry::GiveUp);
}

#[test]
fn a_server_that_moves_nothing_ends_the_sync() {
    let mut plan = Plan::new(None, MAX);
    let wanted = Holdings {
        wanted: 1,
        ..Holdings::default()
    };
    for _ in 0..STALL_LIMIT {
        assert!(matches!(plan.next(&wanted), Step::Send(_)));
        plan.answered(
            &Answer {
                asked_page: true,
                more: false,
                progress: false,
            },
            &[],
        );
    }
    assert_eq!(plan.next(&wanted), Step::Done);
    assert!(plan.stalled());
}

#[test]
fn large_records_go_in_pieces_of_the_push_budget() {
    let mut plan = Plan::new(None, MAX);
    assert!(!plan.upload(MAX.push as usize));
    assert!(plan.upload(MAX.push as usize + 1));
    plan.failed(Failure::Retryable);
    assert_eq!(plan.piece_bytes(), MAX.push / 2);
    assert!(plan.upload(MAX.push as usize / 2 + 1));
}
