//! The secret type every password, LAPS value and key travels in.
//!
//! It is `secrecy`'s boxed string: `Debug` prints `[REDACTED]`, the memory is zeroed on
//! drop, and reading the value takes an explicit `expose_secret()` that is easy to audit.

pub use secrecy::{ExposeSecret, SecretString};

/// A password or other secret text.
pub type Secret = SecretString;

/// Wraps a plain string into a [`Secret`].
pub fn secret(value: impl Into<String>) -> Secret {
    SecretString::from(value.into())
}
