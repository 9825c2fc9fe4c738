//! Inputs the fuzz targets (`fuzz/`, RELIABILITY.md "Fuzzing") found, kept as tests: each
//! is named after its target and holds the crashing input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use winrm::powershell::{decode_clixml, encode_clixml_errors};

/// fuzz/clixml: `_x000D` followed by a control character. The encoder left the `_` as it
/// was (no closing `_`, so no escape in the source text), then wrote U+0001 as `_x0001_`,
/// whose leading `_` closed `_x000D_`: the line read back with a carriage return in it.
#[test]
fn clixml_escape_completed_by_next_escape() {
    for line in [
        "_x000D\u{1}",
        "WriteErrorExcep _x000D\u{1}\0\0\0__x000A_",
        "_X1234\u{7f}",
        "a_x00Ab\u{1b}[0m",
    ] {
        assert_eq!(decode_clixml(&encode_clixml_errors(&[line])), line);
    }
}
