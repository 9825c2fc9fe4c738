//! `trustsweep inventory`: the resolved hosts, their groups and variables (secrets masked),
//! without connecting to any host — to check an inventory, an OU or a `--limit` first.

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
    if console::inventory(&loaded.inventory, table).is_err() {
        return exit::USAGE;
    }
    for (host, res) in &loaded.laps {
        if let Err(e) = res {
            console::warning(&format_args!("{host}: {e}"));
        }
    }
    exit::OK
}
