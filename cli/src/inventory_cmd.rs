//! `trustsweep inventory`: the resolved hosts, their groups and variables (secrets masked),
//! without connecting to any host — to check an inventory, an OU or a `--limit` first.

use clap::{Args, ValueEnum};

use crate::exit;
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
    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    format: InventoryFormat,
}

/// Shows the resolved hosts.
pub async fn main(args: InventoryArgs) -> i32 {
    let loaded = match targets::load(&args.source).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("trustsweep inventory: {e}");
            return exit::USAGE;
        }
    };
    match args.format {
        InventoryFormat::Table => print!("{}", loaded.inventory.to_table()),
        InventoryFormat::Json => {
            match serde_json::to_string_pretty(&loaded.inventory.to_display_rows()) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("trustsweep inventory: {e}");
                    return exit::USAGE;
                }
            }
        }
    }
    for (host, res) in &loaded.laps {
        if let Err(e) = res {
            eprintln!("warning: {host}: {e}");
        }
    }
    exit::OK
}
