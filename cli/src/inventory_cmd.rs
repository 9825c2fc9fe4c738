//! `trustsweep inventory`: the resolved hosts, their groups and variables (secrets masked),
//! without connecting to any host — to check an inventory, an OU or a `--limit` first;
//! `--explain` shows where each variable came from (file, line, precedence level), like
//! `ansible-inventory --host` with origins. A variable a sweep would need whose template
//! trustsweep does not evaluate is reported, and makes the exit code 1.

use clap::{Args, ValueEnum};

use crate::exit;
use crate::heading;
use crate::reporter::console;
use crate::targets::{self, SourceArgs};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// An aligned table.
    Table,
    /// JSON rows.
    Json,
}

/// `trustsweep inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Table, help_heading = heading::OUTPUT)]
    format: InventoryFormat,
    /// Show every variable of each host with the file, line and precedence level it came
    /// from (inventory file, group_vars, host_vars, credentials file).
    #[arg(long, help_heading = heading::OUTPUT)]
    explain: bool,
}

/// Shows the resolved hosts.
pub async fn main(args: InventoryArgs) -> i32 {
    let loaded = match targets::load(&args.source).await {
        Ok(l) => l,
        Err(e) => {
            console::failed(Some("inventory"), &e);
            return exit::USAGE;
        }
    };
    let table = args.format == InventoryFormat::Table;
    let shown = if args.explain {
        console::inventory_explain(&loaded.inventory, table)
    } else {
        console::inventory(&loaded.inventory, table)
    };
    if shown.is_err() {
        return exit::USAGE;
    }
    // What a sweep would refuse: a connection setting that is a template.
    let mut unusable = false;
    for h in &loaded.inventory.hosts {
        let stands_in = args.source.user.is_some() || args.source.laps;
        let problem = h.connection_unresolved().or_else(|| {
            if stands_in {
                return None;
            }
            [
                inventory::connection::USER_VARS,
                inventory::connection::PASSWORD_VARS,
            ]
            .into_iter()
            .find_map(|names| h.unresolved_for(names))
        });
        if let Some(e) = problem {
            console::warning(e);
            unusable = true;
        }
    }
    for (host, res) in &loaded.laps {
        if let Err(e) = res {
            console::warning(&format_args!("{host}: {e}"));
        }
    }
    if unusable {
        exit::USAGE
    } else {
        exit::OK
    }
}
