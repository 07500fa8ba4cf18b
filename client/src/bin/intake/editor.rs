//! `--edit FIELD`: the value is written in the user's editor (`$VISUAL`, else
//! `$EDITOR`, else `vi`), so long text and names never pass through the command line.
//! While the editor runs, the text lives in a file only this user can read (mode 0600,
//! in a directory of mode 0700 made for this one edit, so editors' swap and backup
//! files land there too); afterwards every file in it is overwritten and the directory
//! removed, whatever happened. Overwriting cannot promise the blocks are gone on every
//! file system (journals, SSDs), but it keeps the text out of the next `cat` of /tmp.

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow};

use crate::source;

/// Opens the editor on `current` (empty for a new value) for `field` and returns what
/// was saved, without its trailing newline. A failure to start the editor, or an
/// editor exiting with a failure, is an error: the caller then writes nothing.
pub fn edit(field: &str, current: &str) -> anyhow::Result<String> {
    let scratch = Scratch::new()?;
    let path = scratch.file(field, current)?;
    let editor = editor_command();
    let status = editor_process(&editor, &path)
        .status()
        .with_context(|| format!("cannot run the editor {editor:?}: set VISUAL or EDITOR"))?;
    match status.code() {
        Some(0) => {}
        // What `sh` answers when the command is missing or not executable.
        Some(126 | 127) => {
            return Err(anyhow!(
                "cannot run the editor {editor:?}: set VISUAL or EDITOR to an installed \
                 editor; nothing was changed"
            ));
        }
        _ => {
            return Err(anyhow!(
                "the editor {editor:?} failed ({status}); nothing was changed"
            ));
        }
    }
    let file = File::open(&path).context("cannot read back what the editor saved")?;
    source::bounded(file, &format!("--edit {field}"), "the edited text")
}

/// `$VISUAL`, else `$EDITOR`, else `vi` (as git and crontab choose). Empty means unset.
fn editor_command() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// The editor as a command. On Unix it goes through `sh`, like git does, so that
/// `EDITOR="code --wait"` works. When standard output is captured
/// (`ID=$(intake new … --edit narrative)`), the editor is given the terminal instead,
/// or its screen would end up in the capture.
fn editor_process(editor: &str, path: &Path) -> Command {
    let mut cmd = if cfg!(unix) {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{editor} \"$@\""))
            .arg(editor)
            .arg(path);
        cmd
    } else {
        let mut cmd = Command::new(editor);
        cmd.arg(path);
        cmd
    };
    // The editor, its plugins and whatever they start have no use for the store's
    // passphrase.
    cmd.env_remove("INTAKE_PASSPHRASE");
    if !std::io::stdout().is_terminal()
        && let Ok(tty) = OpenOptions::new().read(true).write(true).open("/dev/tty")
        && let Ok(out) = tty.try_clone()
    {
        cmd.stdin(Stdio::from(tty)).stdout(Stdio::from(out));
    }
    cmd
}

/// A private directory for one edit, emptied and removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| anyhow!("no randomness: {e}"))?;
        let dir = std::env::temp_dir().join(format!("intake-edit-{}", hex::encode(random)));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .with_context(|| format!("cannot create a directory in {}", dir.display()))?;
        Ok(Scratch { dir })
    }

    /// Creates the file the editor opens, named after the field (editors show the
    /// name), holding `current`.
    fn file(&self, field: &str, current: &str) -> anyhow::Result<PathBuf> {
        let name: String = field
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = self.dir.join(format!("{name}.txt"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        if !current.is_empty() {
            // Ends with a newline like a file an editor saves, so an unchanged value
            // reads back unchanged.
            writeln!(file, "{current}").context("cannot write the current value")?;
        }
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Overwrite before removing: the edited file and whatever the editor left
        // beside it (swap files, backups).
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(meta) = fs::symlink_metadata(&path)
                    && meta.is_file()
                    && let Ok(mut file) = OpenOptions::new().write(true).open(&path)
                {
                    let zeros = vec![0u8; meta.len() as usize];
                    let _ = file.write_all(&zeros).and_then(|_| file.sync_all());
                }
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "intake: warning: could not remove {}: {e}; delete it by hand",
                self.dir.display()
            );
        }
    }
}
