//! The admin API's bearer token: given by the configuration, or generated at first start
//! into `<data dir>/admin-token` (owner-only, 0600) and read from there afterwards.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::RngCore;

/// Where the generated token is kept.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// The configured token, or the data directory's (created if missing).
pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> Result<String> {
    if let Some(token) = configured {
        return Ok(token.to_string());
    }
    let path = token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    write_private(&path, &token)?;
    tracing::info!(path = %path.display(), "admin API token generated");
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::daemon::token::*;

    #[test]
    fn generated_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let t1 = load_or_create(dir.path(), None).unwrap();
        assert_eq!(t1.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(token_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load_or_create(dir.path(), None).unwrap(), t1);
        assert_eq!(
            load_or_create(dir.path(), Some("configured-token-123")).unwrap(),
            "configured-token-123"
        );
    }
}
