//! `dataport files ls|stat|rm`: the stored files listed page by page,
//! shown, and deleted.

use std::time::SystemTime;

use dataport_core::files::validate_name;
use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use tonic::transport::Channel;

use crate::client::rows::{Cell, Format, Printer};

#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    /// List the stored files, by name.
    Ls {
        /// Only names starting with PREFIX.
        prefix: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show stored files.
    Stat {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete stored files.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The name last: the other columns have one width each, so a table's rows
/// line up whatever the names.
const HEADER: [&str; 5] = ["size", "created", "updated", "sha256", "name"];

pub async fn files(channel: Channel, command: FilesCommand) -> anyhow::Result<()> {
    let mut client = FilesServiceClient::new(channel);
    match command {
        FilesCommand::Ls { prefix, format } => {
            let mut printer = Printer::new(std::io::stdout().lock(), format, &HEADER);
            let mut page_token = String::new();
            loop {
                let request =
                    pb::ListRequest { prefix: prefix.clone().unwrap_or_default(), page_size: 0, page_token };
                let reply = client.list(request).await?.into_inner();
                for file in &reply.files {
                    printer.row(&row(file))?;
                }
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            printer.finish()?;
        }
        FilesCommand::Stat { names, format } => {
            check_names(&names)?;
            let mut printer = Printer::new(std::io::stdout().lock(), format, &HEADER);
            for name in names {
                let reply = client.stat(pb::StatRequest { name }).await?.into_inner();
                printer.row(&row(&reply.file.unwrap_or_default()))?;
                printer.flush()?;
            }
            printer.finish()?;
        }
        FilesCommand::Rm { names } => {
            check_names(&names)?;
            for name in names {
                let file = client.delete(pb::DeleteRequest { name: name.clone() }).await?.into_inner().file;
                match file {
                    Some(f) => println!("deleted {} ({} bytes, sha256 {})", f.name, f.size, f.sha256),
                    None => println!("deleted {name}"),
                }
            }
        }
    }
    Ok(())
}

fn check_names(names: &[String]) -> anyhow::Result<()> {
    names.iter().try_for_each(|n| validate_name(n)).map_err(Into::into)
}

fn row(file: &pb::File) -> Vec<Cell> {
    let time = |t: &Option<prost_types::Timestamp>| {
        t.and_then(|t| SystemTime::try_from(t).ok())
            .map_or(Cell::Empty, |t| Cell::Text(humantime::format_rfc3339_seconds(t).to_string()))
    };
    vec![
        Cell::Integer(file.size),
        time(&file.create_time),
        time(&file.update_time),
        Cell::Text(file.sha256.clone()),
        Cell::Text(file.name.clone()),
    ]
}
