//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, mapped in this
//! daemon's memory to the token the operator logged in with (checked again on every
//! request, so a revoked token ends its sessions at once), the session's CSRF token and
//! a one-shot notice for the next page. Sessions expire after [`TTL`] idle and do not
//! survive a restart (the operator logs in again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "passerelle_console";
/// Idle time after which a session ends.
pub const TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest idle one goes first).
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    /// The token presented at login (never shown, never logged).
    pub token: String,
    pub csrf: String,
    pub notice: Option<String>,
    seen: Instant,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// This daemon's sessions.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `token`; returns its id.
    pub fn open(&self, token: String) -> String {
        let id = random_token();
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.seen) < TTL);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                token,
                csrf: random_token(),
                notice: None,
                seen: now,
            },
        );
        id
    }

    /// The live session `id`, its idle timer restarted; its notice is taken when
    /// `take_notice`.
    pub fn touch(&self, id: &str, take_notice: bool) -> Option<Session> {
        let mut sessions = self.lock();
        let now = Instant::now();
        let live = sessions
            .get(id)
            .is_some_and(|s| now.duration_since(s.seen) < TTL);
        if !live {
            sessions.remove(id);
            return None;
        }
        let session = sessions.get_mut(id)?;
        session.seen = now;
        let copy = session.clone();
        if take_notice {
            session.notice = None;
        }
        Some(copy)
    }

    /// Leaves a notice for the session's next page.
    pub fn notify(&self, id: &str, notice: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.notice = Some(notice);
        }
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The session cookie (`Secure` when the console is reached over HTTPS).
pub fn cookie(id: String, secure: bool) -> Cookie<'static> {
    Cookie::build((COOKIE, id))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/console")
        .max_age(time::Duration::seconds(TTL.as_secs() as i64))
        .build()
}

/// The cookie that clears it.
pub fn removal() -> Cookie<'static> {
    Cookie::build((COOKIE, "")).path("/console").build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_carries_its_csrf_token_and_one_notice() {
        let sessions = Sessions::default();
        let id = sessions.open("t".into());
        let s = sessions.touch(&id, false).unwrap();
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches("forged"));
        sessions.notify(&id, "queued".into());
        assert_eq!(
            sessions.touch(&id, true).unwrap().notice.as_deref(),
            Some("queued")
        );
        assert_eq!(sessions.touch(&id, true).unwrap().notice, None);
        sessions.close(&id);
        assert!(sessions.touch(&id, false).is_none());
        assert!(sessions.touch("unknown", false).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = cookie("abc".into(), false).to_string();
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Strict"), "{c}");
        assert!(c.contains("Path=/console"), "{c}");
    }
}
