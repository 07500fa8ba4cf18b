//! Where a value comes from. A value typed as an argument stays in the shell's history
//! and shows in `ps` while the command runs, which is wrong for a client's name or
//! story; so a value argument can also name a file (`@PATH`) or standard input (`@-`),
//! and `--edit FIELD` (see [`crate::editor`]) opens the user's editor. `@@…` is a
//! literal value starting with `@`. What is read here is only text: it goes through
//! the same form checks as a typed value afterwards.

use std::io::{IsTerminal, Read};

use crate::error::input;

/// The most a value read from a file, standard input or the editor may hold. More
/// than any form allows (narratives have no `max_length`), little enough that a wrong
/// path (a disk image, a log) is refused instead of read into a record.
pub const MAX_BYTES: usize = 1 << 20;

/// What a value argument asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// The argument itself (`@@x` is the literal `@x`).
    Literal(&'a str),
    /// `@PATH`: the file's content.
    File(&'a str),
    /// `@-`: standard input.
    Stdin,
}

impl<'a> Source<'a> {
    pub fn parse(arg: &'a str) -> Source<'a> {
        match arg.strip_prefix('@') {
            None => Source::Literal(arg),
            Some("-") => Source::Stdin,
            Some(rest) if rest.starts_with('@') => Source::Literal(rest),
            Some(path) => Source::File(path),
        }
    }
}

/// Splits `FIELD=VALUE`.
pub fn split_assignment(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('=') {
        Some((field, value)) if !field.trim().is_empty() => Ok((field.trim(), value)),
        _ => Err(input(format!(
            "--set {text:?}: expected FIELD=VALUE, e.g. --set urgency=high"
        ))),
    }
}

/// The `--set FIELD=VALUE` answers with every `@PATH` and `@-` read, in the order
/// given. Everything that can be checked without reading is checked first (the `=`,
/// one `@-` at most, no field both set and edited), so a mistake reads nothing.
pub fn assignments(sets: &[String], edits: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let split = sets
        .iter()
        .map(|s| split_assignment(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stdin: Vec<&str> = split
        .iter()
        .filter(|(_, v)| Source::parse(v) == Source::Stdin)
        .map(|(f, _)| *f)
        .collect();
    if stdin.len() > 1 {
        return Err(input(format!(
            "--set {}=@- and --set {}=@-: standard input holds one value; \
             give the others as @FILE or with --edit FIELD",
            stdin[0], stdin[1]
        )));
    }
    if let (Some(field), false) = (stdin.first(), edits.is_empty()) {
        // The editor needs the terminal that `@-` would be reading from.
        return Err(input(format!(
            "--set {field}=@- and --edit cannot be used together: \
             give {field} as @FILE or with --edit {field}"
        )));
    }
    for (field, _) in &split {
        if edits.iter().any(|e| e == field) {
            return Err(input(format!(
                "{field} is given with both --set and --edit: choose one"
            )));
        }
    }
    split
        .into_iter()
        .map(|(field, value)| Ok((field.to_string(), read(&format!("--set {field}"), value)?)))
        .collect()
}

/// The value of one argument (`what` names it in messages): itself, or what `@PATH`
/// or `@-` hold.
pub fn read(what: &str, arg: &str) -> anyhow::Result<String> {
    match Source::parse(arg) {
        Source::Literal(text) => Ok(text.to_string()),
        Source::Stdin => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                // Otherwise intake looks hung while it waits for the value.
                eprintln!("intake: {what}: type the value, then Ctrl-D on a new line");
            }
            bounded(stdin.lock(), what, "standard input")
        }
        Source::File("") => Err(input(format!(
            "{what}: `@` needs a file name (@PATH), or @- for standard input; \
             write @@ for a value starting with @"
        ))),
        Source::File(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| input(format!("{what}: cannot read {path}: {e}")))?;
            bounded(file, what, path)
        }
    }
}

/// Reads at most [`MAX_BYTES`] of UTF-8 text from `from` (`name` says what it is in
/// messages), without its trailing newline: files and editors end their last line
/// with one, and nobody means it as part of a name.
pub fn bounded(from: impl Read, what: &str, name: &str) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    from.take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| input(format!("{what}: cannot read {name}: {e}")))?;
    if bytes.len() > MAX_BYTES {
        return Err(input(format!(
            "{what}: {name} is larger than {} MiB; nothing was changed",
            MAX_BYTES >> 20
        )));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| {
        input(format!(
            "{what}: {name} is not UTF-8 text (invalid byte at offset {}); \
             save it as UTF-8 and try again",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}
