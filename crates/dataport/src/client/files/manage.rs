//! `dataport files ls|stat|rm`: the stored files listed page by page,
//! shown, and deleted.

use std::time::SystemTime;

use crate::client::Channel;
use dataport_core::files::validate_name;
use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;

use crate::client::rows::{Cell, Format, Printer};

#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    /// List the stored files, by name.
    #[command(disable_help_flag = true)]
    Ls {
        /// Only names starting with PREFIX.
        prefix: Option<String>,
        #[command(flatten)]
        show: Show,
    },
    /// Show stored files.
    #[command(disable_help_flag = true)]
    Stat {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        show: Show,
    },
    /// Delete stored files.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// How `ls` and `stat` print files.
#[derive(Debug, clap::Args)]
pub struct Show {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Sizes as 1.5K, 23M, 4.0G (powers of 1024) in a table.
    #[arg(short = 'h', long = "human-readable")]
    human: bool,
    /// The whole sha256 in a table (CSV and JSON always have it whole).
    #[arg(short = 'l', long)]
    long: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl Show {
    fn printer<W: std::io::Write>(&self, out: W) -> Printer<W> {
        Printer::new(out, self.format, &HEADER).human_sizes(self.human)
    }

    /// A sha256 as a table shows it: its first [`SHORT_SHA`] hex digits,
    /// unless told to show it whole.
    fn sha256(&self, sha256: &str) -> String {
        match self.format == Format::Table && !self.long {
            true => sha256.get(..SHORT_SHA).unwrap_or(sha256).to_owned(),
            false => sha256.to_owned(),
        }
    }
}

/// As many hex digits of a sha256 as a table shows, as git and docker
/// shorten theirs: enough to tell a directory's files apart.
const SHORT_SHA: usize = 12;

/// The name last: the other columns have one width each, so a table's rows
/// line up whatever the names.
const HEADER: [&str; 5] = ["size", "created", "updated", "sha256", "name"];

pub async fn files(channel: Channel, command: FilesCommand) -> anyhow::Result<()> {
    let mut client = FilesServiceClient::new(channel);
    match command {
        FilesCommand::Ls { prefix, show } => {
            let mut printer = show.printer(std::io::stdout().lock());
            let mut page_token = String::new();
            loop {
                let request =
                    pb::ListRequest { prefix: prefix.clone().unwrap_or_default(), page_size: 0, page_token };
                let reply = client.list(request).await?.into_inner();
                for file in &reply.files {
                    printer.row(&row(file, &show))?;
                }
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            printer.finish()?;
        }
        FilesCommand::Stat { names, show } => {
            check_names(&names)?;
            let mut printer = show.printer(std::io::stdout().lock());
            for name in names {
                let reply = client.stat(pb::StatRequest { name }).await?.into_inner();
                printer.row(&row(&reply.file.unwrap_or_default(), &show))?;
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

fn row(file: &pb::File, show: &Show) -> Vec<Cell> {
    let time = |t: &Option<prost_types::Timestamp>| {
        t.and_then(|t| SystemTime::try_from(t).ok())
            .map_or(Cell::Empty, |t| Cell::Text(humantime::format_rfc3339_seconds(t).to_string()))
    };
    vec![
        Cell::Size(file.size),
        time(&file.create_time),
        time(&file.update_time),
        Cell::Text(show.sha256(&file.sha256)),
        Cell::Text(file.name.clone()),
    ]
}
