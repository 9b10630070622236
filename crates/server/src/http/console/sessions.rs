//! Console sessions, kept server-side in this process' memory: the browser's cookie carries
//! only a random 256-bit id. Keeping them here (not in the store) means a restart signs every
//! admin out and replicas do not share them (a replica set needs sticky sessions, or admins
//! sign in again on another replica); in exchange nothing about them is ever written down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::AdminPrincipal;

/// A console session unused for this long is over; the next request goes to sign-in.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One signed-in admin.
#[derive(Clone)]
pub struct ConsoleSession {
    /// The admin token signed in with, kept only here (never in a cookie or a page), so every
    /// request can check it is still valid: a revoked token ends the console session.
    pub token: String,
    /// Who the token belongs to.
    pub principal: AdminPrincipal,
    /// What every form of this session must carry.
    pub csrf: String,
    /// The last request, for the idle timeout.
    last_seen: Instant,
}

/// The console sessions of this process, by id.
#[derive(Default)]
pub struct ConsoleSessions {
    sessions: Mutex<HashMap<String, ConsoleSession>>,
}

/// 256 random bits, hex-encoded.
fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl ConsoleSessions {
    /// Starts a session for `principal`, signed in with `token`; returns its id.
    pub fn create(&self, token: String, principal: AdminPrincipal) -> String {
        let id = random_id();
        let session = ConsoleSession {
            token,
            principal,
            csrf: random_id(),
            last_seen: Instant::now(),
        };
        let mut sessions = self.lock();
        // Abandoned sessions (closed tabs) are dropped here, so the map holds only the
        // sessions used within the idle timeout.
        sessions.retain(|_, session| session.last_seen.elapsed() < IDLE_TIMEOUT);
        sessions.insert(id.clone(), session);
        id
    }

    /// The session `id` names, when it exists and has been used within the idle timeout;
    /// marks it used now. An idle session is removed.
    pub fn touch(&self, id: &str) -> Option<ConsoleSession> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if session.last_seen.elapsed() >= IDLE_TIMEOUT {
            sessions.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    /// Ends the session `id` (signed out, or its token no longer valid).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConsoleSession>> {
        // A panic while holding the lock leaves the map consistent (every change is one call).
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> AdminPrincipal {
        AdminPrincipal {
            instance_id: "instance".into(),
            token_id: "token".into(),
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_until_removed() {
        let sessions = ConsoleSessions::default();
        let id = sessions.create("secret".into(), principal());
        assert_eq!(id.len(), 64);
        let session = sessions.touch(&id).expect("the session");
        assert_eq!(session.principal.token_id, "token");
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, id);
        assert!(sessions.touch("unknown").is_none());
        sessions.remove(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn an_idle_session_is_over() {
        let sessions = ConsoleSessions::default();
        let id = sessions.create("secret".into(), principal());
        let Some(long_ago) = Instant::now().checked_sub(IDLE_TIMEOUT) else {
            return;
        };
        sessions.lock().get_mut(&id).unwrap().last_seen = long_ago;
        assert!(sessions.touch(&id).is_none());
        assert!(sessions.lock().is_empty(), "the idle session is removed");
    }
}
