//! A new record read off its one creating change, without building the document.
//!
//! The server takes in most records as one change with no dependencies (a paralegal's
//! intake, saved offline and pushed). Building that change into an Automerge document
//! costs some 3.5 M instructions a record, one operation per character of its
//! narrative, and was about 60 % of the server's work on a push (issue 16); reading the
//! same facts off the decoded operations costs a tenth of that.
//!
//! The shortcut is taken only for the shape an honest app writes, which is also the
//! shape whose document is plain to see: the change is its actor's first (sequence
//! number 1, operations from 1, no other actor named, nothing after its columns);
//! every operation makes an object or puts a
//! scalar; none deletes, increments, marks or overwrites (no predecessors, and no key
//! written twice, so nothing is in conflict); every operation writes into the root or
//! into an object an earlier operation of the change made, a map by key and a list or
//! text by insertion; and each insertion follows the one before it in the same list or
//! text (the first follows the head), as typing and `splice` produce. Anything else
//! returns `None`, and the caller builds the document as before, with Automerge's own
//! verdict.
//!
//! "Nothing stored is unbuildable" rests, for a record stored this way, on: Automerge's
//! verification of the change's columns when it was decoded (`Change::from_bytes`), the
//! structural rules above, and `Record::from_doc`'s rules on `id`, `form`,
//! `form_version` and `fields`, checked here the same way. The unit tests and the
//! `ingest` fuzz target check that whatever this accepts, Automerge builds, and that the
//! facts read here are the facts read off the built record.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::ObjType;
use chrono::{DateTime, Utc};

use super::inspect::{ChangeInfo, Incoming, RootWrite};
use super::ops::{self, Action, Key, Scalar};
use super::read;
use crate::form::{Form, FormRegistry};
use crate::ids::RecordId;
use crate::status::ReviewStatus;
use crate::value::Value;

/// What a record's creating change makes: its root and field values, and the change's
/// whole facts (root writes included).
#[derive(Clone, Debug)]
pub struct Creation {
    id: RecordId,
    form: Arc<Form>,
    root: HashMap<String, Slot>,
    fields: HashMap<String, Slot>,
    /// Objects the change made, by their index: kind, and for a text its characters.
    objects: Vec<Made>,
    info: ChangeInfo,
}

#[derive(Clone, Debug)]
enum Slot {
    Scalar(Value),
    Object(usize),
}

#[derive(Clone, Debug)]
struct Made {
    kind: ObjType,
    /// The characters of a text, in order.
    text: String,
    /// The operation counter of the last insertion into a list or text (0: none yet).
    last_insert: u64,
    /// What a map holds, by key.
    entries: HashMap<String, Slot>,
}

impl Incoming {
    /// The record this creating change makes, read off its operations, when it has the
    /// plain shape the module doc describes; `None` otherwise (and for a change with
    /// dependencies), in which case the document must be built to know.
    pub fn creation(&self, forms: &FormRegistry) -> Option<Creation> {
        // A record's first change is its actor's first (sequence number 1), starts at
        // operation 1, names no other actor and carries nothing after its columns, as
        // every app makes it. Automerge 0.12 panics applying a creating change with a
        // later sequence number (found by fuzzing); anything unlike an app's is left to
        // it.
        if !self.change.deps().is_empty()
            || self.change.seq() != 1
            || self.change.start_op().get() != 1
            || !self.change.other_actor_ids().is_empty()
            || !self.change.extra_bytes().is_empty()
        {
            return None;
        }
        let (start, ops) = ops::read(&self.info.bytes)?;
        // What Automerge counted when it verified the chunk: a column this reader
        // ended early or late on is not read the same, so it is left to Automerge.
        if ops.len() != self.change.len() || start != self.change.start_op().get() {
            return None;
        }
        // Object index by the counter of the operation that made it.
        let mut by_counter: HashMap<u64, usize> = HashMap::new();
        let mut objects: Vec<Made> = Vec::new();
        let mut root: HashMap<String, Slot> = HashMap::new();
        let mut root_writes = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let counter = start + i as u64;
            if op.has_pred {
                return None;
            }
            let made_here = match &op.action {
                Action::Make(code) => {
                    by_counter.insert(counter, objects.len());
                    objects.push(Made {
                        kind: match code {
                            0 => ObjType::Map,
                            2 => ObjType::List,
                            _ => ObjType::Text,
                        },
                        text: String::new(),
                        last_insert: 0,
                        entries: HashMap::new(),
                    });
                    Some(objects.len() - 1)
                }
                Action::Put(_) => None,
            };
            // What a map key holds. (A text's characters go straight into its text.)
            let slot = || match (&op.action, made_here) {
                (Action::Put(v), _) => Slot::Scalar(v.value()),
                (Action::Make(_), made) => Slot::Object(made.expect("made just above")),
            };
            match (op.obj, &op.key) {
                (None, Key::Map(key)) if !op.insert => {
                    if root.contains_key(*key) {
                        return None;
                    }
                    let slot = slot();
                    root_writes.push(RootWrite {
                        key: key.to_string(),
                        value: match &slot {
                            Slot::Scalar(v) => Some(v.clone()),
                            Slot::Object(_) => None,
                        },
                    });
                    root.insert(key.to_string(), slot);
                }
                (Some(obj), key) => {
                    let &target = by_counter.get(&obj)?;
                    // The object was made by an earlier operation: its counter is lower.
                    if obj >= counter {
                        return None;
                    }
                    let made = &mut objects[target];
                    match (made.kind, key) {
                        (ObjType::Map, Key::Map(k)) if !op.insert => {
                            if made.entries.insert(k.to_string(), slot()).is_some() {
                                return None;
                            }
                        }
                        (ObjType::List | ObjType::Text, Key::Head | Key::After(_)) if op.insert => {
                            let follows = match key {
                                Key::Head => made.last_insert == 0,
                                _ => made.last_insert != 0 && *key == Key::After(made.last_insert),
                            };
                            if !follows {
                                return None;
                            }
                            made.last_insert = counter;
                            if made.kind == ObjType::Text {
                                // A text holds characters only (Automerge's own
                                // splice writes strings); anything else is built.
                                let Action::Put(Scalar::Str(s)) = &op.action else {
                                    return None;
                                };
                                made.text.push_str(s);
                            }
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        // `Record::from_doc`'s rules, read the same way.
        let text = |key: &str| match root.get(key) {
            Some(Slot::Scalar(Value::Text(s))) => Some(s.clone()),
            _ => None,
        };
        let id = text("id")?.parse::<RecordId>().ok()?;
        let form_id = text("form")?;
        let version = match root.get("form_version") {
            Some(Slot::Scalar(Value::Int(v))) => u32::try_from(*v).ok(),
            _ => None,
        }?;
        let fields = match root.get("fields") {
            Some(Slot::Object(o)) if objects[*o].kind == ObjType::Map => {
                std::mem::take(&mut objects[*o].entries)
            }
            _ => return None,
        };
        let form = forms.get(&form_id, version).ok()?;
        // In the order Automerge lists a map's keys, as facts read off a document are.
        root_writes.sort_by(|a: &RootWrite, b: &RootWrite| a.key.cmp(&b.key));
        Some(Creation {
            id,
            form,
            root,
            fields,
            objects,
            info: ChangeInfo {
                root_writes,
                ..self.info.clone()
            },
        })
    }
}

impl Creation {
    pub fn id(&self) -> RecordId {
        self.id
    }

    pub fn form(&self) -> &Arc<Form> {
        &self.form
    }

    /// The change's whole facts, its root writes included.
    pub fn info(&self) -> &ChangeInfo {
        &self.info
    }

    fn value(&self, slot: &Slot) -> Value {
        match slot {
            Slot::Scalar(v) => v.clone(),
            Slot::Object(o) => match self.objects[*o].kind {
                ObjType::Text => Value::Text(self.objects[*o].text.clone()),
                kind => Value::Text(format!("<{kind:?}>")),
            },
        }
    }

    /// One field's value, as [`Record::get`](super::Record::get) reads it.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.fields.get(name).map(|s| self.value(s))
    }

    /// The values of a top-level key (at most one: nothing is in conflict), as
    /// [`Record::review_values`](super::Record::review_values) reads them.
    pub fn review_values(&self, key: &str) -> Vec<Value> {
        self.root
            .get(key)
            .map(|s| self.value(s))
            .into_iter()
            .collect()
    }

    fn root_str(&self, key: &str) -> Option<String> {
        match self.root.get(key) {
            Some(Slot::Scalar(Value::Text(s))) => Some(s.clone()),
            _ => None,
        }
    }

    /// As [`Record::status`](super::Record::status).
    pub fn status(&self) -> ReviewStatus {
        read::status_of(self.root_str("status"))
    }

    /// As [`Record::review_note`](super::Record::review_note).
    pub fn review_note(&self) -> Option<String> {
        read::non_empty(self.root_str("review_note"))
    }

    /// As [`Record::assigned_to`](super::Record::assigned_to).
    pub fn assigned_to(&self) -> Option<String> {
        read::non_empty(self.root_str("assigned_to"))
    }

    /// As [`Record::created_at`](super::Record::created_at).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        read::time_of(self.root_str("created_at"))
    }
}

impl Creation {
    /// Checks this reading against the document Automerge builds of the same change:
    /// that it builds, that the stored bytes load, and that every fact the server reads
    /// (root writes, id, form, status, assignee, creation time, every field's value, no
    /// conflicts) is the same. The tests and the `ingest` fuzz target call it; it costs
    /// the build this module saves, so the server does not.
    pub fn verify(&self, change: &Incoming, forms: &FormRegistry) -> Result<(), String> {
        let (built, info) = super::Record::creation(change, forms)
            .map_err(|e| format!("accepted, but Automerge does not build it: {e}"))?;
        super::Record::load(&change.info.bytes, forms)
            .map_err(|e| format!("accepted, but its bytes do not load: {e}"))?;
        let mut theirs = info.root_writes.clone();
        theirs.sort_by(|a, b| a.key.cmp(&b.key));
        let differ = |what: &str| Err(format!("{what} differs from the built record's"));
        if theirs != self.info.root_writes || info.hash != self.info.hash {
            return differ("the root writes");
        }
        if built.id() != self.id
            || built.form().id != self.form.id
            || built.form().version != self.form.version
        {
            return differ("the id or form");
        }
        if built.status() != self.status()
            || built.review_note() != self.review_note()
            || built.assigned_to() != self.assigned_to()
            || built.created_at() != self.created_at()
        {
            return differ("the status, assignee or creation time");
        }
        for key in ["status", "assigned_to", "review_note"] {
            if built.review_values(key) != self.review_values(key) {
                return differ(key);
            }
        }
        let mut names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        names.extend(self.form.fields().iter().map(|f| f.name.as_str()));
        for name in names {
            if built.get(name) != self.get(name) {
                return differ("a field's value");
            }
        }
        if built.has_conflicts() {
            return differ("the conflicts");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The reading agrees with the built document on what an app writes, and whatever
    //! it accepts of arbitrary single changes, Automerge builds.

    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
    use chrono::TimeZone;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    use super::super::{Identity, Record, decode_incoming};
    use crate::form::FormRegistry;
    use crate::ids::RecordId;
    use crate::value::Value;

    fn incoming(doc: &mut AutoCommit) -> super::Incoming {
        let changes = doc.get_changes(&[]);
        assert_eq!(changes.len(), 1, "one creating change");
        let mut decoded = decode_incoming(changes[0].raw_bytes()).expect("decodes");
        decoded.remove(0)
    }

    #[test]
    fn an_apps_new_record_is_read_as_built() {
        let forms = FormRegistry::builtin();
        let who = Identity {
            actor: vec![7; 16],
            author: Some("ana".into()),
        };
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        let mut accepted = 0;
        for form in forms.iter() {
            let mut record = Record::create_with(
                RecordId::new_v7(1_770_000_000_000, [3; 10]),
                form.clone(),
                &who,
                at,
                |e| {
                    for f in form.fields() {
                        let value = match f.kind {
                            crate::FieldType::Integer => Value::Int(1987),
                            crate::FieldType::YesNo => Value::Bool(true),
                            crate::FieldType::Date => Value::Text("2026-02-28".into()),
                            crate::FieldType::LongText => {
                                Value::Text("Ajo tha: «shkolla» 🙂 e ndarë.\nLine two.".into())
                            }
                            _ => match form.choices(f).first() {
                                Some(o) => Value::Text(o.value.clone()),
                                None => Value::Text("Shpresa Krasniqi".into()),
                            },
                        };
                        // A value the form refuses is left out, as the app would.
                        let _ = e.set(&f.name, value);
                    }
                    Ok(())
                },
            )
            .expect("created");
            let bytes = record.change_list_since(&[]);
            assert_eq!(bytes.len(), 1);
            let change = decode_incoming(&bytes[0]).expect("decodes").remove(0);
            let created = change
                .creation(forms)
                .unwrap_or_else(|| panic!("form {}: the app's shape is read", form.id));
            created.verify(&change, forms).expect("agrees");
            assert!(
                created.get("full_name").is_some()
                    || !form.fields().iter().any(|f| f.name == "full_name"),
                "the fields were read"
            );
            accepted += 1;
        }
        assert!(accepted > 0, "the registry has forms");
    }

    /// One random operation of a creating transaction.
    #[derive(Clone, Debug)]
    enum Step {
        PutRoot(u8, i64),
        PutField(u8, u8),
        Splice(u8, usize, u8),
        DeleteInText(u8, usize),
        NewList(u8),
        PushToList(u8),
        NestedMap(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..6, any::<i64>()).prop_map(|(k, v)| Step::PutRoot(k, v)),
            (0u8..8, 0u8..4).prop_map(|(k, v)| Step::PutField(k, v)),
            (0u8..3, 0usize..40, 0u8..3).prop_map(|(k, at, s)| Step::Splice(k, at, s)),
            (0u8..3, 0usize..40).prop_map(|(k, at)| Step::DeleteInText(k, at)),
            (0u8..2).prop_map(Step::NewList),
            (0u8..2).prop_map(Step::PushToList),
            (0u8..8).prop_map(Step::NestedMap),
        ]
    }

    const FIELDS: [&str; 8] = [
        "full_name",
        "municipality",
        "community",
        "gender",
        "issue_type",
        "urgency",
        "birth_year",
        "narrative",
    ];

    /// A creating change: an app's initialisation, then random steps, in one commit.
    fn build(steps: &[Step]) -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&[9u8; 16][..]));
        let form = FormRegistry::builtin().latest("intake").unwrap();
        doc.put(
            ROOT,
            "id",
            RecordId::new_v7(1_770_000_000_000, [3; 10]).to_string(),
        )
        .unwrap();
        doc.put(ROOT, "form", form.id.as_str()).unwrap();
        doc.put(ROOT, "form_version", i64::from(form.version))
            .unwrap();
        doc.put(ROOT, "created_at", "2026-01-02T03:04:05+00:00")
            .unwrap();
        doc.put(ROOT, "status", "draft").unwrap();
        let fields = doc.put_object(ROOT, "fields", ObjType::Map).unwrap();
        let texts: Vec<_> = (0..3)
            .map(|i| {
                doc.put_object(&fields, format!("text{i}"), ObjType::Text)
                    .unwrap()
            })
            .collect();
        let mut lists = Vec::new();
        for s in steps {
            match s {
                Step::PutRoot(k, v) => {
                    let key = [
                        "status",
                        "assigned_to",
                        "review_note",
                        "x",
                        "form_version",
                        "id",
                    ][*k as usize];
                    let _ = match v % 3 {
                        0 => doc.put(ROOT, key, *v),
                        1 => doc.put(ROOT, key, format!("v{v}")),
                        _ => doc.put(ROOT, key, *v > 0),
                    };
                }
                Step::PutField(k, v) => {
                    let key = FIELDS[*k as usize];
                    let _ = match v {
                        0 => doc.put(&fields, key, "Prizren"),
                        1 => doc.put(&fields, key, 1990i64),
                        2 => doc.put(&fields, key, 2.5f64),
                        _ => doc.put_object(&fields, key, ObjType::Text).map(|t| {
                            let _ = doc.splice_text(&t, 0, 0, "Roma");
                        }),
                    };
                }
                Step::Splice(k, at, s) => {
                    let t = &texts[*k as usize];
                    let len = doc.length(t);
                    let text = ["abc", "ë🙂", "x"][*s as usize];
                    let _ = doc.splice_text(t, (*at).min(len), 0, text);
                }
                Step::DeleteInText(k, at) => {
                    let t = &texts[*k as usize];
                    let len = doc.length(t);
                    if len > 0 {
                        let _ = doc.splice_text(t, (*at) % len, 1, "");
                    }
                }
                Step::NewList(k) => {
                    if let Ok(l) =
                        doc.put_object(ROOT, ["comments", "actions"][*k as usize], ObjType::List)
                    {
                        lists.push(l);
                    }
                }
                Step::PushToList(k) => {
                    if let Some(l) = lists.get(*k as usize % lists.len().max(1)) {
                        let l = l.clone();
                        let len = doc.length(&l);
                        if let Ok(m) = doc.insert_object(&l, len, ObjType::Map) {
                            let _ = doc.put(&m, "text", "a comment");
                        }
                    }
                }
                Step::NestedMap(k) => {
                    if let Ok(m) = doc.put_object(&fields, FIELDS[*k as usize], ObjType::Map) {
                        let _ = doc.put(&m, "inner", 1i64);
                    }
                }
            }
        }
        doc.commit();
        doc
    }

    /// Whatever the reading accepts, Automerge builds, and reads the same; and the
    /// random changes reach both ways (read, and left to Automerge), so the check is
    /// not vacuous.
    #[test]
    fn what_is_read_is_what_automerge_builds() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut read, mut left) = (0, 0);
        for _ in 0..600 {
            let steps = proptest::collection::vec(step(), 0..24)
                .new_tree(&mut runner)
                .expect("a case")
                .current();
            let mut doc = build(&steps);
            let change = incoming(&mut doc);
            match change.creation(FormRegistry::builtin()) {
                Some(created) => {
                    let verdict = created.verify(&change, FormRegistry::builtin());
                    assert_eq!(verdict, Ok(()), "{steps:?}");
                    read += 1;
                }
                None => left += 1,
            }
        }
        assert!(read > 100 && left > 100, "read {read}, left {left}");
    }

    /// The column reader reads every operation as Automerge's own decoding does,
    /// whenever it reads a change at all (and it reads most of these).
    #[test]
    fn the_column_reader_reads_what_automerge_decodes() {
        use super::super::ops::{self, Action, Key, Scalar};
        use automerge::legacy::{ElementId, Key as LKey, ObjectId, OpType};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut read = 0;
        for _ in 0..400 {
            let steps = proptest::collection::vec(step(), 0..24)
                .new_tree(&mut runner)
                .expect("a case")
                .current();
            let mut doc = build(&steps);
            let change = doc.get_changes(&[])[0].clone();
            let Some((start, ops)) = ops::read(change.raw_bytes()) else {
                continue;
            };
            read += 1;
            let theirs = change.decode();
            assert_eq!(start, theirs.start_op.get());
            assert_eq!(ops.len(), theirs.operations.len(), "{steps:?}");
            for (mine, op) in ops.iter().zip(&theirs.operations) {
                let obj = match &op.obj {
                    ObjectId::Root => None,
                    ObjectId::Id(id) => Some(id.counter()),
                };
                let key = match &op.key {
                    LKey::Map(k) => Key::Map(k.as_str()),
                    LKey::Seq(ElementId::Head) => Key::Head,
                    LKey::Seq(ElementId::Id(id)) => Key::After(id.counter()),
                };
                let action = match &op.action {
                    OpType::Make(ObjType::Map) => Action::Make(0),
                    OpType::Make(ObjType::List) => Action::Make(2),
                    OpType::Make(ObjType::Text) => Action::Make(4),
                    OpType::Put(automerge::ScalarValue::Str(s)) => Action::Put(Scalar::Str(s)),
                    OpType::Put(automerge::ScalarValue::Int(i)) => Action::Put(Scalar::Int(*i)),
                    OpType::Put(automerge::ScalarValue::Uint(u)) => Action::Put(Scalar::Uint(*u)),
                    OpType::Put(automerge::ScalarValue::Boolean(b)) => {
                        Action::Put(Scalar::Bool(*b))
                    }
                    other => panic!("read an operation it should have left: {other:?}"),
                };
                assert_eq!(mine.obj, obj);
                assert_eq!(mine.key, key);
                assert_eq!(mine.insert, op.insert);
                assert_eq!(mine.action, action);
                assert_eq!(mine.has_pred, !op.pred.is_empty());
            }
        }
        assert!(read > 100, "read {read} of 400");
    }

    #[test]
    fn shapes_other_than_an_apps_are_left_to_automerge() {
        let forms = FormRegistry::builtin();
        // Typing in the middle of a text, an overwrite, a deletion, a float, a
        // rewritten root key: each is built, not read.
        let cases: Vec<Vec<Step>> = vec![
            vec![Step::Splice(0, 0, 0), Step::Splice(0, 1, 2)],
            vec![Step::PutField(0, 0), Step::PutField(0, 1)],
            vec![Step::Splice(1, 0, 0), Step::DeleteInText(1, 1)],
            vec![Step::PutField(1, 2)],
            vec![Step::PutRoot(0, 3), Step::PutRoot(0, 6)],
        ];
        for steps in cases {
            let mut doc = build(&steps);
            assert!(incoming(&mut doc).creation(forms).is_none(), "{steps:?}");
        }
        // No fields map: `Record::from_doc` refuses it, so the reading does too.
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&[9u8; 16][..]));
        doc.put(ROOT, "id", RecordId::new_v7(1, [1; 10]).to_string())
            .unwrap();
        doc.put(ROOT, "form", "intake").unwrap();
        doc.put(ROOT, "form_version", 1i64).unwrap();
        doc.put(ROOT, "fields", "none").unwrap();
        doc.commit();
        assert!(
            incoming(&mut doc).creation(forms).is_none(),
            "no fields map"
        );
        // And the plain ones are read: appending to a text, several texts, a comment.
        let plain = vec![
            Step::Splice(0, 0, 0),
            Step::Splice(0, 3, 1),
            Step::Splice(2, 0, 2),
            Step::PutField(0, 0),
            Step::PutField(3, 3),
            Step::NewList(0),
            Step::PushToList(0),
            Step::NestedMap(7),
        ];
        let mut doc = build(&plain);
        let change = incoming(&mut doc);
        let created = change.creation(forms).expect("the plain shape is read");
        created.verify(&change, forms).expect("agrees");
        assert_eq!(created.get("text0"), Some(Value::Text("abcë🙂".into())));
        assert_eq!(created.get("gender"), Some(Value::Text("Roma".into())));
        assert_eq!(created.get("narrative"), Some(Value::Text("<Map>".into())));
    }
}
