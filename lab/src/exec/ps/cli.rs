//! The `powershell.exe` command line: where the script comes from (`-Command`,
//! `-EncodedCommand`, stdin) and the switches that change how it runs.

use super::super::clixml;

/// Where the script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliScript {
    /// `-Command` text or a decoded `-EncodedCommand`.
    Text(String),
    /// Read from stdin (`-Command -`, or no command at all).
    Stdin,
}

/// Parsed `powershell.exe` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The script.
    pub script: CliScript,
    /// Came from `-EncodedCommand` (errors then go to stderr as CLIXML).
    pub encoded: bool,
    /// `-OutputFormat` was given.
    pub output_format_given: bool,
    /// `-NonInteractive` was given.
    pub non_interactive: bool,
}

/// A `powershell.exe` command-line error (printed on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

fn is_prefix_of(key: &str, name: &str, min: usize) -> bool {
    key.len() >= min && name.starts_with(key)
}

/// What a `-Key` of the command line is (checked in this order, as powershell.exe's
/// abbreviations overlap: `-e` is `-EncodedCommand`, `-ex` `-ExecutionPolicy`).
enum CliParam {
    /// A lone `-`: the script comes from stdin.
    Stdin,
    /// `-EncodedCommand <base64>`.
    EncodedCommand,
    /// `-Command <text...>` (or `-Command -`).
    Command,
    /// `-OutputFormat <format>`.
    OutputFormat,
    /// A parameter whose value the lab ignores (`-ExecutionPolicy`, `-InputFormat`,
    /// `-WindowStyle`, `-Version`).
    IgnoredWithValue,
    /// `-File`, which this host does not run.
    File,
    /// `-NonInteractive`.
    NonInteractive,
    /// Another switch the lab ignores (`-NoProfile`, `-NoLogo`, ...).
    IgnoredSwitch,
    /// Not a parameter: the command text starts here.
    Text,
}

fn classify(key: &str) -> CliParam {
    if key.is_empty() {
        return CliParam::Stdin;
    }
    if is_prefix_of(key, "executionpolicy", 2) || key == "ep" {
        return CliParam::IgnoredWithValue;
    }
    if is_prefix_of(key, "encodedcommand", 1) || key == "ec" {
        return CliParam::EncodedCommand;
    }
    if is_prefix_of(key, "command", 1) {
        return CliParam::Command;
    }
    if is_prefix_of(key, "outputformat", 1) || key == "of" {
        return CliParam::OutputFormat;
    }
    if is_prefix_of(key, "inputformat", 1)
        || key == "if"
        || is_prefix_of(key, "windowstyle", 1)
        || is_prefix_of(key, "version", 1)
    {
        return CliParam::IgnoredWithValue;
    }
    if is_prefix_of(key, "file", 1) {
        return CliParam::File;
    }
    if is_prefix_of(key, "noninteractive", 3) {
        return CliParam::NonInteractive;
    }
    let switches = ["noprofile", "nologo", "noexit", "sta", "mta"];
    if switches.iter().any(|s| is_prefix_of(key, s, 3)) || key == "nop" {
        return CliParam::IgnoredSwitch;
    }
    CliParam::Text
}

/// Parses `powershell.exe` arguments (after the program name). Parameter names are
/// matched like powershell.exe does: any case, unambiguous prefixes (`-enc`, `-e`, `-ec`).
pub fn parse_cli(args: &[String]) -> Result<Cli, CliError> {
    let mut cli = Cli {
        script: CliScript::Stdin,
        encoded: false,
        output_format_given: false,
        non_interactive: false,
    };
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let text_from = |i: usize| args.get(i..).map(|r| r.join(" ")).unwrap_or_default();
        let param = match arg.strip_prefix('-').or_else(|| arg.strip_prefix('/')) {
            Some(key) => classify(&key.to_ascii_lowercase()),
            None => CliParam::Text,
        };
        match param {
            CliParam::Stdin => return Ok(cli),
            CliParam::Text => {
                cli.script = CliScript::Text(text_from(i));
                return Ok(cli);
            }
            CliParam::EncodedCommand => {
                let Some(b64) = args.get(i + 1) else {
                    return Err(CliError(
                        "Cannot process the command because -EncodedCommand requires an argument."
                            .into(),
                    ));
                };
                cli.encoded = true;
                return match clixml::decode_encoded_command(b64) {
                    Some(s) => {
                        cli.script = CliScript::Text(s);
                        Ok(cli)
                    }
                    None => Err(CliError(
                        "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded."
                            .into(),
                    )),
                };
            }
            CliParam::Command => {
                if args.get(i + 1).map(String::as_str) != Some("-") {
                    cli.script = CliScript::Text(text_from(i + 1));
                }
                return Ok(cli);
            }
            CliParam::File => {
                return Err(CliError(
                    "The -File parameter is not supported by this host.".into(),
                ))
            }
            CliParam::OutputFormat => {
                cli.output_format_given = true;
                i += 2;
            }
            CliParam::IgnoredWithValue => i += 2,
            CliParam::NonInteractive => {
                cli.non_interactive = true;
                i += 1;
            }
            CliParam::IgnoredSwitch => i += 1,
        }
    }
    Ok(cli)
}
