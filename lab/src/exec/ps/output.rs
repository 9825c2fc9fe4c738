//! What reaches the console: values written as `Out-Default` writes them (objects as
//! property lists, credentials as a table) and error records on the error stream.

use super::engine::Engine;
use super::error::ErrorRecord;
use super::value::Value;
use super::StreamLine;

impl Engine<'_, '_> {
    /// Writes values to stdout as Out-Default would.
    pub(crate) fn emit(&mut self, values: &[Value]) {
        for v in values {
            self.emit_one(v);
        }
    }

    fn emit_one(&mut self, v: &Value) {
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for i in items {
                    self.emit_one(i);
                }
            }
            Value::Error(e) => {
                for l in e.lines() {
                    self.stdout.push_str(&l);
                    self.stdout.push('\n');
                }
            }
            Value::Obj(o) => {
                let width = o
                    .props
                    .iter()
                    .map(|(k, _)| k.chars().count())
                    .max()
                    .unwrap_or(0);
                self.stdout.push('\n');
                for (k, val) in &o.props {
                    self.stdout
                        .push_str(&format!("{k:<width$} : {}\n", val.to_ps_string()));
                }
                self.stdout.push('\n');
            }
            Value::Cred(c) => {
                let w = c.user.chars().count().max(8);
                self.stdout.push_str(&format!(
                    "\n{:<w$} Password\n{:<w$} --------\n{:<w$} System.Security.SecureString\n\n",
                    "UserName", "--------", c.user
                ));
            }
            other => {
                self.stdout.push_str(&other.to_ps_string());
                self.stdout.push('\n');
            }
        }
    }

    /// Writes an error record's lines to the error stream.
    pub(crate) fn write_error(&mut self, e: &ErrorRecord) {
        for l in e.lines() {
            self.streams.push(StreamLine::Error(l));
        }
    }
}
