//! Control flow out of a statement: what travels up the evaluator in `Result<_, Flow>`
//! when a statement does not simply finish.
//!
//! PowerShell has two kinds of terminating error (about_Try_Catch_Finally,
//! about_Throw; `ThrowTerminatingError` vs `throw`/`-ErrorAction Stop`): a
//! statement-terminating error stops only the statement that raised it (outside `try`
//! it is written to the error stream and the script goes on), a script-terminating one
//! unwinds to the nearest `catch` or ends the script. Inside `try`, both are caught.

use super::error::ErrorRecord;

/// Why a statement stopped early.
#[derive(Debug)]
pub(crate) enum Flow {
    /// A terminating error travelling to the nearest `catch` (or ending the script): `throw`,
    /// `-ErrorAction Stop`, or a statement-terminating error raised inside `try`.
    Throw(Box<ErrorRecord>),
    /// A statement-terminating error raised outside any `try` (an unknown command, a
    /// parameter binding error, a cmdlet's `ThrowTerminatingError`): the nearest statement
    /// writes it, records it in `$Error`, sets `$?` to false, and the script goes on.
    StatementTerminated(Box<ErrorRecord>),
    /// `exit n`.
    Exit(i64),
}
