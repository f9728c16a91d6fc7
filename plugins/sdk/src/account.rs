//! Access to an account's settings, with `invalid-config` errors that name the setting.

use crate::{Account, SyncError};

/// Convenience accessors on [`Account`].
pub trait AccountExt {
    /// The value of an optional setting.
    fn setting_opt(&self, key: &str) -> Option<&str>;
    /// The value of a required setting, or `invalid-config` naming it.
    fn setting(&self, key: &str) -> Result<&str, SyncError> {
        self.setting_opt(key)
            .ok_or_else(|| SyncError::InvalidConfig(format!("setting `{key}` is required")))
    }
    /// A required setting parsed as `T`, or `invalid-config` naming it.
    fn setting_parsed<T: std::str::FromStr>(&self, key: &str) -> Result<T, SyncError> {
        self.setting(key)?.parse().map_err(|_| {
            SyncError::InvalidConfig(format!(
                "setting `{key}` is not a valid {}",
                std::any::type_name::<T>()
            ))
        })
    }
    /// Whether the account has a secret of this name configured.
    fn has_secret(&self, name: &str) -> bool;
}

impl AccountExt for Account {
    fn setting_opt(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    fn has_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
}
