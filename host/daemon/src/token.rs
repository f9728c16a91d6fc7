//! The admin API's bearer token: given by the configuration, or generated at first start
//! into `<data dir>/admin-token` (owner-only, 0600) and read from there afterwards. An
//! existing file that others could read, or that is not a regular file (a symbolic
//! link), is refused at start: the daemon would otherwise accept a token that leaked.

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
    const FIX: &str = "or remove it to have a new one generated";
    if let Some(text) = passerelle_store::private_file::read(&path, "the admin token", FIX)? {
        if !text.trim().is_empty() {
            return Ok(text.trim().to_string());
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    passerelle_store::private_file::create(&path, &token)?;
    tracing::info!(path = %path.display(), "admin API token generated");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use crate::token::*;

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

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), None).unwrap();
        let path = token_path(dir.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", load_or_create(dir.path(), None).unwrap_err());
        assert!(err.contains("readable by other users (mode 0644)"), "{err}");
        assert!(
            !err.contains(&std::fs::read_to_string(&path).unwrap()),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let err = format!("{:#}", load_or_create(dir.path(), None).unwrap_err());
        assert!(err.contains("not a regular file"), "{err}");
    }
}
