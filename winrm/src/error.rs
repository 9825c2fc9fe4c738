//! The crate's top-level error (filled in with the transport).
