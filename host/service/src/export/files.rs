//! Writing the export's files: each through a temporary file beside it, synced and
//! renamed over the old one (a reader never sees half a file), readable by all; and
//! removing what an earlier export wrote for a department no longer exported.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::{ServiceError, ServiceResult};

/// The name of a department's daily counts, inside the department's folder.
pub const DAILY: &str = "creneaux-quotidiens.json";

/// Writes `value` to `dir/name` (creating `name`'s folder if needed) and adds `name` to
/// `written`. Files are 0644 (open data, which a web server running as another user
/// serves; the temporary file would be 0600).
pub fn write(
    dir: &Path,
    name: &str,
    value: &Value,
    written: &mut Vec<String>,
) -> ServiceResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    let failed = |e: std::io::Error| {
        ServiceError::Internal(anyhow::anyhow!("writing {}: {e}", path.display()))
    };
    std::fs::create_dir_all(parent).map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(parent).map_err(failed)?;
    serde_json::to_writer_pretty(&mut file, value).map_err(|e| failed(e.into()))?;
    file.write_all(b"\n").map_err(failed)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(&path).map_err(|e| failed(e.error))?;
    written.push(name.to_string());
    Ok(())
}

/// Whether `code` is spelled like a department code (`75`, `2A`, `971`).
fn is_department_code(code: &str) -> bool {
    let b = code.as_bytes();
    match b.len() {
        2 => b.iter().all(u8::is_ascii_digit) || (b[0] == b'2' && matches!(b[1], b'A' | b'B')),
        3 => code.starts_with("97") && (b'1'..=b'8').contains(&b[2]),
        _ => false,
    }
}

/// Removes, from `dir`, the department files (`13.json`) and daily counts
/// (`13/creneaux-quotidiens.json`, then the folder if empty) of departments not in
/// `exported`; returns what it removed. Nothing else in `dir` is touched.
pub fn remove_stale(dir: &Path, exported: &BTreeSet<String>) -> ServiceResult<Vec<String>> {
    let failed = |what: &str, e: std::io::Error| {
        ServiceError::Internal(anyhow::anyhow!(
            "removing {what} from {}: {e}",
            dir.display()
        ))
    };
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| failed("old files", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() {
            if let Some(code) = name.strip_suffix(".json") {
                if is_department_code(code) && !exported.contains(code) {
                    std::fs::remove_file(entry.path()).map_err(|e| failed(&name, e))?;
                    removed.push(name);
                }
            }
        } else if kind.is_dir() && is_department_code(&name) && !exported.contains(&name) {
            let daily = entry.path().join(DAILY);
            if daily.is_file() {
                let shown = format!("{name}/{DAILY}");
                std::fs::remove_file(&daily).map_err(|e| failed(&shown, e))?;
                removed.push(shown);
            }
            // Left in place if something else lives there.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_departments_not_exported_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["13.json", "75.json", "2A.json", "notes.json", "999.json"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        for folder in ["13", "75", "2B"] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join(DAILY), "{}").unwrap();
        }
        std::fs::write(dir.path().join("2B").join("mine.txt"), "").unwrap();
        let exported: BTreeSet<String> = ["75".to_string()].into();
        let removed = remove_stale(dir.path(), &exported).unwrap();
        assert_eq!(
            removed,
            [
                "13.json",
                "13/creneaux-quotidiens.json",
                "2A.json",
                "2B/creneaux-quotidiens.json"
            ]
        );
        assert!(!dir.path().join("13").exists());
        assert!(dir.path().join("2B").join("mine.txt").exists());
        for kept in [
            "75.json",
            "notes.json",
            "999.json",
            "75/creneaux-quotidiens.json",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
    }

    #[test]
    fn files_are_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut written = vec![];
        write(
            dir.path(),
            "75/creneaux-quotidiens.json",
            &serde_json::json!({}),
            &mut written,
        )
        .unwrap();
        let mode = std::fs::metadata(dir.path().join("75").join(DAILY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(written, ["75/creneaux-quotidiens.json"]);
    }
}
