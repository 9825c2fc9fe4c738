//! The `trustsweep` binary.
fn main() {}
