//! Property: random edits on three replicas of one record, exchanged in any order, with
//! duplicates and with intermediate partial merges, always converge to the same heads,
//! values, conflicts and comments.

use chrono::{DateTime, TimeZone, Utc};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, Value};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Urgency(usize),
    Phone(u16),
    BirthYear(i64),
    Narrative {
        at: usize,
        text: String,
    },
    Comment(String),
    ResolveUrgency(usize),
    /// Replica `from` sends everything it has to replica `to`, twice.
    Gossip {
        from: usize,
        to: usize,
    },
}

const URGENCY: [&str; 4] = ["low", "medium", "high", "critical"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Urgency),
        any::<u16>().prop_map(Op::Phone),
        (1900..2030i64).prop_map(Op::BirthYear),
        (0..200usize, "[a-zëç ]{1,8}").prop_map(|(at, text)| Op::Narrative { at, text }),
        "[a-z][a-z ]{0,11}".prop_map(Op::Comment),
        (0..4usize).prop_map(Op::ResolveUrgency),
        (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Gossip { from, to }),
    ]
}

fn t(step: usize) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + step as i64, 0).unwrap()
}

fn replicas() -> Vec<Record> {
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let who = |n: u8| Identity {
        actor: vec![n; 16],
        author: Some(format!("user{n}")),
    };
    let mut first = Record::create(RecordId::new_v7(1, [1; 10]), form, &who(1), t(0));
    let bytes = first.save();
    let mut all = vec![first];
    for n in 2..=3 {
        let mut r = Record::load(&bytes, FormRegistry::builtin()).unwrap();
        r.set_identity(&who(n));
        all.push(r);
    }
    all
}

fn send(all: &mut [Record], from: usize, to: usize) {
    if from == to {
        return;
    }
    let bytes = all[from].changes_since(&[]);
    all[to].apply(&bytes).unwrap();
    all[to].apply(&bytes).unwrap(); // duplicate delivery is harmless
}

fn observe(r: &mut Record) -> (Vec<[u8; 32]>, String) {
    let mut json = r.to_json();
    json.as_object_mut().unwrap().remove("issues");
    (r.heads(), json.to_string())
}

proptest! {
    // Failures are kept in a committed file so they are replayed first, forever.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/convergence.proptest-regressions"),
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn three_replicas_converge(ops in prop::collection::vec((0..3usize, op()), 1..40), order in Just(()).prop_perturb(|_, mut rng| {
        let mut pairs: Vec<(usize, usize)> = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).collect();
        // shuffle the final exchange order
        for i in (1..pairs.len()).rev() { pairs.swap(i, rng.random_range(0..=i)); }
        pairs
    })) {
        let mut all = replicas();
        for (step, (who, op)) in ops.into_iter().enumerate() {
            let at = t(step + 1);
            let r = &mut all[who];
            match op {
                Op::Urgency(i) => r.edit(at, |e| e.set("urgency", Value::Text(URGENCY[i].into()))).unwrap(),
                Op::Phone(n) => r.edit(at, |e| e.set("phone", Value::Text(format!("+383 44 {n:06}")))).unwrap(),
                Op::BirthYear(y) => r.edit(at, |e| e.set("birth_year", Value::Int(y))).unwrap(),
                Op::Narrative { at: pos, text } => {
                    let mut current = match r.get("narrative") { Some(Value::Text(s)) => s, _ => String::new() };
                    let chars: Vec<char> = current.chars().collect();
                    let pos = pos.min(chars.len());
                    current = chars[..pos].iter().collect::<String>() + &text + &chars[pos..].iter().collect::<String>();
                    r.edit(at, |e| e.set("narrative", Value::Text(current))).unwrap()
                }
                Op::Comment(text) => r.edit(at, |e| e.add_comment(&text)).unwrap(),
                Op::ResolveUrgency(i) => r.edit(at, |e| e.resolve("urgency", Value::Text(URGENCY[i].into()))).unwrap(),
                Op::Gossip { from, to } => send(&mut all, from, to),
            }
        }
        // Everyone hears from everyone, in a random order; twice so that what arrived
        // second-hand is passed on.
        for _ in 0..2 {
            for (from, to) in &order {
                send(&mut all, *from, *to);
            }
        }
        let first = observe(&mut all[0]);
        for r in &mut all[1..] {
            prop_assert_eq!(&observe(r), &first);
        }
    }
}
