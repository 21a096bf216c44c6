//! Client passwords (`--requirepass`): the [`Password`] a node asks of
//! its Redis clients, checked in constant time, and the [`ClientAuth`]
//! every connection shares (the password and the count of failed
//! attempts that `INFO` reports as `acl_access_denied_auth`).
//!
//! The password is never printed: its `Debug` says `<hidden>`, so a
//! settings struct that holds it can be logged whole. Comparing SHA-256
//! digests of both sides with `subtle` takes the same time whatever the
//! guess and whatever its length, as Redis does for its ACL passwords.
//!
//! Pure: no socket, file or thread.

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A client password: its text (which `CONFIG GET requirepass` shows an
/// authenticated client, as Redis does) and the digest guesses are
/// compared against.
#[derive(Clone)]
pub struct Password {
    text: String,
    digest: [u8; 32],
}

impl Password {
    /// A password; the caller has trimmed it and refused an empty one.
    pub fn new(text: &str) -> Password {
        Password {
            text: text.to_owned(),
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Whether `guess` is the password, in time that does not depend on
    /// how much of it is right.
    pub fn matches(&self, guess: &[u8]) -> bool {
        let guess: [u8; 32] = Sha256::digest(guess).into();
        bool::from(self.digest.ct_eq(&guess))
    }

    /// The password's text.
    pub fn reveal(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Password) -> bool {
        bool::from(self.digest.ct_eq(&other.digest))
    }
}

impl Eq for Password {}

/// What every client connection of a node shares about authentication.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// The password clients must give; `None`: no password, every client
    /// is in at once (Redis's `default` user with `nopass`).
    pub password: Option<Password>,
    /// Failed `AUTH` and `HELLO ... AUTH` attempts since the start.
    denied: Arc<AtomicU64>,
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &ClientAuth) -> bool {
        self.password == other.password && Arc::ptr_eq(&self.denied, &other.denied)
    }
}

impl Eq for ClientAuth {}

/// Why an `AUTH` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `AUTH <password>` with no password set.
    NoPasswordSet,
    /// Not the user or not the password.
    WrongPass,
}

impl Denied {
    /// Redis's error text.
    pub fn text(self) -> &'static str {
        match self {
            Denied::NoPasswordSet => {
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?"
            }
            Denied::WrongPass => "WRONGPASS invalid username-password pair or user is disabled.",
        }
    }
}

/// The only user netdb has, as in a Redis without ACLs.
pub const DEFAULT_USER: &[u8] = b"default";

impl ClientAuth {
    /// Clients must give `password`, if any.
    pub fn new(password: Option<Password>) -> ClientAuth {
        ClientAuth {
            password,
            denied: Arc::default(),
        }
    }

    /// Whether a client must authenticate before its commands run.
    pub fn is_required(&self) -> bool {
        self.password.is_some()
    }

    /// Checks `AUTH [user] pass`: `user` is `None` for the one-argument
    /// form. A failure is counted (except `AUTH pass` with no password
    /// set, which Redis answers without trying a user).
    pub fn check(&self, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Denied> {
        let result = match (&self.password, user) {
            (None, None) => return Err(Denied::NoPasswordSet),
            // The default user takes any password while none is set.
            (None, Some(user)) if user == DEFAULT_USER => Ok(()),
            (None, Some(_)) => Err(Denied::WrongPass),
            (Some(password), user) => {
                // Both checks run, so a wrong user takes as long as a
                // wrong password.
                let right_user = user.is_none_or(|u| u == DEFAULT_USER);
                let right_pass = password.matches(pass);
                if right_user && right_pass {
                    Ok(())
                } else {
                    Err(Denied::WrongPass)
                }
            }
        };
        if result.is_err() {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Failed attempts so far (`acl_access_denied_auth`).
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_checked_and_never_shown() {
        let auth = ClientAuth::new(Some(Password::new("s3cret")));
        assert!(auth.is_required());
        assert_eq!(auth.check(None, b"s3cret"), Ok(()));
        assert_eq!(auth.check(Some(b"default"), b"s3cret"), Ok(()));
        assert_eq!(auth.check(None, b"s3cre"), Err(Denied::WrongPass));
        assert_eq!(auth.check(None, b"s3cret "), Err(Denied::WrongPass));
        assert_eq!(
            auth.check(Some(b"admin"), b"s3cret"),
            Err(Denied::WrongPass)
        );
        assert_eq!(auth.denied(), 3);
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(format!("{auth:?}").contains("<hidden>"));
    }

    #[test]
    fn without_a_password_the_default_user_takes_any() {
        let auth = ClientAuth::new(None);
        assert!(!auth.is_required());
        assert_eq!(auth.check(None, b"x"), Err(Denied::NoPasswordSet));
        assert_eq!(auth.check(Some(b"default"), b"x"), Ok(()));
        assert_eq!(auth.check(Some(b"other"), b"x"), Err(Denied::WrongPass));
        assert_eq!(auth.denied(), 1, "only the attempt as another user counts");
    }
}
