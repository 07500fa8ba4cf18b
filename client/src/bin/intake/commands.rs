//! The commands that change the store: new, edit, followup, comment, submit/status,
//! resolve and user. Each reads and parses its input first (values may come from
//! files, standard input or the editor: see `source` and `editor`), then makes one
//! change to one record and saves it; a failure anywhere leaves the store as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Utc;
use intake_client::{Store, StoreError};
use intake_shared::record::is_review_key;
use intake_shared::{Edit, Form, Lang, Record, RecordError, RecordId, Value};

use crate::error::{self, input};
use crate::{editor, input as parse, open, source};

/// `intake new FORM [--set FIELD=VALUE ...] [--edit FIELD ...]`: prints the new
/// record's id.
pub fn new(
    home: Option<PathBuf>,
    lang: Lang,
    form: &str,
    sets: &[String],
    edits: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let form = parse::record_form(form)?;
    // Checked before the store is opened: a typo costs no passphrase and no write.
    let given = source::assignments(sets, edits)?;
    let mut answers = parse::answers(&form, &given, lang)?;
    answers.extend(edited(&form, edits, lang, |_| String::new())?);
    let mut store = open::store(home)?;
    let id = store
        .create(&form.id, |e| set_all(e, answers))
        .map_err(|e| error::store(e, &form, lang))?;
    if json {
        let out = serde_json::json!({ "id": id.to_string() });
        crate::show::print(&format!("{}\n", serde_json::to_string_pretty(&out)?))
    } else {
        crate::show::print(&format!("{id}\n"))
    }
}

/// `intake edit ID [--set FIELD=VALUE ...] [--edit FIELD ...] [--clear FIELD ...]`.
pub fn edit(
    home: Option<PathBuf>,
    lang: Lang,
    id: &str,
    sets: &[String],
    edits: &[String],
    clear: &[String],
) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    // Files and standard input are read before the passphrase is asked for; the
    // values need the record's form version, so they are checked once it is loaded.
    let given = source::assignments(sets, edits)?;
    let mut store = open::store(home)?;
    let mut record = load(&store, id)?;
    let form = record.form().clone();
    let mut answers = parse::answers(&form, &given, lang)?;
    answers.extend(edited(&form, edits, lang, |field| {
        record.get(field).map(|v| v.to_string()).unwrap_or_default()
    })?);
    if answers.is_empty() && clear.is_empty() {
        eprintln!("intake: nothing to change in {id}");
        return Ok(());
    }
    record
        .edit(Utc::now(), |e| {
            set_all(e, answers)?;
            clear.iter().try_for_each(|f| e.clear(f))
        })
        .map_err(|e| error::record(e, &form, lang))?;
    store.save(&mut record)?;
    eprintln!("intake: updated {id}");
    Ok(())
}

/// `intake followup ID [--set FIELD=VALUE ...] [--edit FIELD ...]`: appends a
/// follow-up action.
pub fn followup(
    home: Option<PathBuf>,
    lang: Lang,
    id: &str,
    sets: &[String],
    edits: &[String],
) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    let form = parse::followup_form()?;
    let given = source::assignments(sets, edits)?;
    let mut values: BTreeMap<_, _> = parse::answers(&form, &given, lang)?.into_iter().collect();
    values.extend(edited(&form, edits, lang, |_| String::new())?);
    let mut store = open::store(home)?;
    let mut record = load(&store, id)?;
    record
        .edit(Utc::now(), |e| e.add_action(&form, &values))
        .map_err(|e| error::record(e, &form, lang))?;
    store.save(&mut record)?;
    eprintln!("intake: added a follow-up action to {id}");
    Ok(())
}

/// `intake comment ID TEXT|@PATH|@-`.
pub fn comment(home: Option<PathBuf>, lang: Lang, id: &str, text: &str) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    let text = &source::read("the comment", text)?;
    change(home, lang, id, |_| {
        Ok(|e: &mut Edit<'_>| e.add_comment(text))
    })?;
    eprintln!("intake: commented on {id}");
    Ok(())
}

/// `intake submit ID` and `intake status ID STATUS [--note TEXT|@PATH|@-]`. Statuses
/// past draft need a complete record; what is missing is listed, in `lang`.
pub fn status(
    home: Option<PathBuf>,
    lang: Lang,
    id: &str,
    status: &str,
    note: Option<&str>,
) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    let status = parse::status(status)?;
    let note = note.map(|n| source::read("--note", n)).transpose()?;
    let note = note.as_deref();
    change(home, lang, id, |_| {
        Ok(move |e: &mut Edit<'_>| e.set_status(status, note))
    })?;
    eprintln!(
        "intake: {id} is now {}",
        crate::show::status_text(status, note)
    );
    Ok(())
}

/// `intake resolve ID FIELD VALUE|@PATH|@-`: writes the value to keep over every
/// concurrent one.
/// FIELD is a form field or a review key (`status`, `assigned_to`, `review_note`): a
/// status is checked like `intake status` (the server then judges it as a move from
/// every conflicting value).
pub fn resolve(
    home: Option<PathBuf>,
    lang: Lang,
    id: &str,
    field: &str,
    value: &str,
) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    let value = &source::read("VALUE", value)?;
    change(home, lang, id, |record| {
        let value = if is_review_key(field) {
            match field {
                "status" => Value::Text(parse::status(value)?.as_str().to_string()),
                _ => Value::Text(value.to_string()),
            }
        } else {
            parse::value_for(record.form(), field, value, lang)?
        };
        if !record.conflicts().iter().any(|c| c.field == field) {
            let how = match field {
                "status" | "review_note" => "intake status",
                "assigned_to" => "intake assign",
                _ => "intake edit",
            };
            return Err(input(format!(
                "{field} has no conflicting values in {id}; to change it use `{how}`"
            )));
        }
        Ok(move |e: &mut Edit<'_>| e.resolve(field, value))
    })?;
    eprintln!("intake: resolved {field} in {id}");
    Ok(())
}

/// `intake user [NAME]`: shows or sets the author name of this store's changes.
pub fn user(home: Option<PathBuf>, name: Option<&str>) -> anyhow::Result<()> {
    let mut store = open::store(home)?;
    if let Some(name) = name {
        let name = name.trim();
        if name.is_empty() {
            return Err(input("the user name is empty"));
        }
        store.set_user(name)?;
        eprintln!("intake: your changes from now on are recorded as by {name}");
        return Ok(());
    }
    // The device part of the actor (each open adds session bytes): what `show` and
    // `conflicts` abbreviate to its first 8 hex digits.
    let device: String = store
        .device_actor_prefix()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let author = store.identity().author.as_deref();
    crate::show::print(&format!(
        "user: {}\ndevice: {device}\n",
        author.unwrap_or("(not set: `intake user NAME`)")
    ))
}

/// `intake assign ID USER` (supervisors; the server checks the role).
pub fn assign(home: Option<PathBuf>, lang: Lang, id: &str, user: &str) -> anyhow::Result<()> {
    let id = parse::record_id(id)?;
    let user = user.to_string();
    let shown = user.clone();
    change(home, lang, id, move |_| {
        Ok(move |e: &mut Edit<'_>| e.assign(&user))
    })?;
    eprintln!("intake: {id} is assigned to {shown}");
    Ok(())
}

/// Loads a record; an unknown id is an input error.
/// Warns (on stderr) when the last sync found this device's clock clearly wrong: the
/// times it shows and records are that clock's (issue 13, clock skew).
pub fn warn_if_clock_wrong(store: &Store, lang: intake_shared::Lang) {
    if let Ok(Some(e)) = store.clock_error() {
        eprintln!("intake: {}", intake_web::clock::this_device(lang, e));
    }
}

pub fn load(store: &Store, id: RecordId) -> anyhow::Result<Record> {
    store.get(id).map_err(|e| match e {
        StoreError::NotFound(id) => input(format!("no record {id}")),
        other => other.into(),
    })
}

/// Opens the store, loads record `id`, lets `prepare` check the input against the
/// record and return the edit to make, makes it as one change and saves it.
fn change<F>(
    home: Option<PathBuf>,
    lang: Lang,
    id: RecordId,
    prepare: impl FnOnce(&mut Record) -> anyhow::Result<F>,
) -> anyhow::Result<()>
where
    F: FnOnce(&mut Edit<'_>) -> Result<(), RecordError>,
{
    let mut store = open::store(home)?;
    let mut record = load(&store, id)?;
    let edit = prepare(&mut record)?;
    let form = record.form().clone();
    record
        .edit(Utc::now(), edit)
        .map_err(|e| error::record(e, &form, lang))?;
    store.save(&mut record)?;
    Ok(())
}

/// The values of the `--edit` fields, each written in the editor starting from
/// `current(field)`, and checked against `form` like a typed value. Every field is
/// checked to exist before the first editor opens. A field left empty or unchanged is
/// left out: there is nothing to change (`--clear` removes an answer).
fn edited(
    form: &Form,
    edits: &[String],
    lang: Lang,
    mut current: impl FnMut(&str) -> String,
) -> anyhow::Result<Vec<(String, Value)>> {
    for field in edits {
        parse::known_field(form, field, lang)?;
    }
    let mut answers = Vec::new();
    for field in edits {
        let before = current(field);
        let after = editor::edit(field, &before)?;
        if after.trim().is_empty() || after == before {
            eprintln!("intake: {field}: nothing to change");
            continue;
        }
        answers.push((field.clone(), parse::value_for(form, field, &after, lang)?));
    }
    Ok(answers)
}

fn set_all(
    e: &mut Edit<'_>,
    answers: Vec<(String, intake_shared::Value)>,
) -> Result<(), RecordError> {
    answers.into_iter().try_for_each(|(f, v)| e.set(&f, v))
}
