//! Owner-only files in the data directory (the admin token, the secrets key): read only
//! when a regular file (a symbolic link is not followed) that no other user may read —
//! one that others could read may have leaked, and is refused rather than trusted —
//! and created with mode 0600, never over an existing file.

use std::path::Path;

use anyhow::{Context, Result};

/// The file's text, or None if there is none. `what` names it in errors; `fix` says
/// what the operator can do besides `chmod 600`.
pub fn read(path: &Path, what: &str, fix: &str) -> Result<Option<String>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    anyhow::ensure!(
        meta.file_type().is_file(),
        "{} is not a regular file (a symbolic link is not followed): put {what} there, mode 0600, {fix}",
        path.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} is readable by other users (mode {mode:04o}): {what} may have leaked; `chmod 600` it if it has not, {fix}",
            path.display()
        );
    }
    std::fs::read_to_string(path)
        .map(Some)
        .with_context(|| format!("reading {}", path.display()))
}

/// Creates the file with `text`, mode 0600, synced; fails if it exists (another process
/// may have just created it: read theirs).
pub fn create(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
