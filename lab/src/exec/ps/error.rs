//! Error records as Windows PowerShell 5.1 prints them (NormalView: `Cmdlet : message`, the
//! `At line:` position with its `~~~` underline, CategoryInfo and FullyQualifiedErrorId),
//! wrapped as the host wraps them when not attached to a console.

/// Console width PowerShell wraps error text at when it is not attached to a console
/// (pywinrm's captured CLIXML wraps the "not recognized" message before column 120; an
/// older capture wraps at 80 — the width is host-dependent and not verified).
pub(crate) const WRAP_WIDTH: usize = 120;

/// Where in the script a command was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) col: usize,
    /// Text of the line.
    pub(crate) line_text: String,
    /// Length to underline.
    pub(crate) len: usize,
}

/// How a native stderr line was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NativeKind {
    /// Not a native stderr line.
    No,
    /// The first stderr line of a native command (NativeCommandError).
    First,
    /// A following line (NativeCommandErrorMessage): printed bare.
    Following,
}

/// An ErrorRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorRecord {
    /// Exception message.
    pub(crate) message: String,
    /// `Foo-Bar` in `Foo-Bar : message`; empty for none.
    pub(crate) command: String,
    /// ErrorCategory, e.g. `ObjectNotFound`.
    pub(crate) category: String,
    /// Target object text.
    pub(crate) target: String,
    /// Target object type name, e.g. `String`.
    pub(crate) target_type: String,
    /// Activity (cmdlet) in `[...]`.
    pub(crate) activity: String,
    /// Reason (exception type short name).
    pub(crate) reason: String,
    /// Full exception type name.
    pub(crate) exception_type: String,
    /// FullyQualifiedErrorId.
    pub(crate) fqid: String,
    /// Invocation position.
    pub(crate) position: Option<Position>,
    /// Native stderr wrapping.
    pub(crate) native: NativeKind,
}

impl ErrorRecord {
    /// A cmdlet error (`Cmdlet : message` / `[Cmdlet], Reason` / `Id,Full.Type.Name`).
    pub(crate) fn cmdlet(
        cmdlet: &str,
        class: &str,
        message: String,
        fqid: &str,
        category: &str,
        target: &str,
        reason: &str,
    ) -> Self {
        ErrorRecord {
            message,
            command: cmdlet.to_string(),
            category: category.to_string(),
            target: target.to_string(),
            target_type: "String".to_string(),
            activity: cmdlet.to_string(),
            reason: reason.to_string(),
            exception_type: format!("System.{reason}"),
            fqid: if class.is_empty() {
                fqid.to_string()
            } else {
                format!("{fqid},{class}")
            },
            position: None,
            native: NativeKind::No,
        }
    }

    /// The "term is not recognized" error.
    pub(crate) fn not_recognized(name: &str) -> Self {
        ErrorRecord {
            message: format!(
                "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
            ),
            command: name.to_string(),
            category: "ObjectNotFound".to_string(),
            target: name.to_string(),
            target_type: "String".to_string(),
            activity: String::new(),
            reason: "CommandNotFoundException".to_string(),
            exception_type: "System.Management.Automation.CommandNotFoundException".to_string(),
            fqid: "CommandNotFoundException".to_string(),
            position: None,
            native: NativeKind::No,
        }
    }

    /// A native command's stderr line.
    pub(crate) fn native_stderr(program: &str, line: &str, first: bool) -> Self {
        ErrorRecord {
            message: line.to_string(),
            command: program.to_string(),
            category: "NotSpecified".to_string(),
            target: line.to_string(),
            target_type: "String".to_string(),
            activity: String::new(),
            reason: "RemoteException".to_string(),
            exception_type: "System.Management.Automation.RemoteException".to_string(),
            fqid: if first {
                "NativeCommandError".to_string()
            } else {
                "NativeCommandErrorMessage".to_string()
            },
            position: None,
            native: if first {
                NativeKind::First
            } else {
                NativeKind::Following
            },
        }
    }

    /// A `throw` or runtime error without a command.
    pub(crate) fn runtime(message: String, fqid: &str, category: &str, reason: &str) -> Self {
        ErrorRecord {
            message: message.clone(),
            command: String::new(),
            category: category.to_string(),
            target: message,
            target_type: "String".to_string(),
            activity: String::new(),
            reason: reason.to_string(),
            exception_type: format!("System.Management.Automation.{reason}"),
            fqid: fqid.to_string(),
            position: None,
            native: NativeKind::No,
        }
    }

    /// Sets the position when none is set.
    pub(crate) fn at(mut self, pos: Option<Position>) -> Self {
        if self.position.is_none() {
            self.position = pos;
        }
        self
    }

    /// The lines PowerShell prints for it (NormalView), without line terminators.
    pub(crate) fn lines(&self) -> Vec<String> {
        if self.native == NativeKind::Following {
            return self
                .message
                .split('\n')
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect();
        }
        let mut out = Vec::new();
        let head = if self.command.is_empty() {
            self.message.clone()
        } else {
            format!("{} : {}", self.command, self.message)
        };
        for l in head.split('\n') {
            out.extend(word_wrap(l.trim_end_matches('\r'), WRAP_WIDTH - 1));
        }
        if let Some(p) = &self.position {
            out.push(format!("At line:{} char:{}", p.line, p.col));
            out.push(format!("+ {}", p.line_text.trim_end()));
            out.push(format!(
                "+ {}{}",
                " ".repeat(p.col.saturating_sub(1)),
                "~".repeat(p.len.max(1))
            ));
        }
        let target = ellipsize(&self.target);
        let cat = format!(
            "    + CategoryInfo          : {}: ({}:{}) [{}], {}",
            self.category, target, self.target_type, self.activity, self.reason
        );
        out.extend(hard_wrap(&cat, WRAP_WIDTH - 1));
        out.extend(hard_wrap(
            &format!("    + FullyQualifiedErrorId : {}", self.fqid),
            WRAP_WIDTH - 1,
        ));
        out.push(" ".to_string());
        out
    }
}

/// PowerShell shortens long target objects in CategoryInfo: first 15 + `...` + last 15.
fn ellipsize(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 40 {
        return s.to_string();
    }
    let first: String = chars.iter().take(15).collect();
    let last: String = chars.iter().skip(chars.len() - 15).collect();
    format!("{first}...{last}")
}

/// Word wrap keeping the trailing space on each broken line (as the host does).
fn word_wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in line.split_inclusive(' ') {
        if !cur.is_empty() && cur.chars().count() + word.chars().count() > width {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Character wrap of `    + ...` lines, continuation indented by three spaces.
fn hard_wrap(line: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= width {
        return vec![line.to_string()];
    }
    let mut out = Vec::new();
    let first: String = chars.iter().take(width - 1).collect();
    out.push(format!("{first} "));
    let rest: Vec<char> = chars.iter().skip(width - 1).copied().collect();
    for chunk in rest.chunks(width - 4) {
        out.push(format!("   {}", chunk.iter().collect::<String>()));
    }
    out
}
