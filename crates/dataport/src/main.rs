//! `dataport`: the server (`dataport serve`) and a client for every service,
//! in one binary. This file holds only the command line; `serve` and the
//! client modules do the work.

mod backup;
mod client;
mod fsck;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The server allocates and frees small buffers for every call (HTTP/2
// frames, headers, messages); mimalloc does that markedly cheaper than the
// system allocator (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts a thread that has the allocator give freed memory back to the
/// system each second. mimalloc returns pages a second after they are freed
/// (`purge_delay`), but only when a later allocation or free asks it to: a
/// burst of connections that all closed at once left their memory resident
/// until the next call, however long the server then stayed idle.
fn return_freed_memory() -> std::io::Result<()> {
    #[allow(unsafe_code)]
    fn collect() {
        // SAFETY: `mi_collect` takes no pointers and may be called from
        // any thread at any time; it only frees what nothing uses.
        unsafe { libmimalloc_sys::mi_collect(false) }
    }
    std::thread::Builder::new().name("return-memory".into()).spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            collect();
        }
    })?;
    Ok(())
}

#[derive(Debug, Parser)]
#[command(
    name = "dataport",
    version,
    about = "Dataport: Python's data services over gRPC, in one Rust binary"
)]
struct Cli {
    /// The server the client commands call: http://HOST:PORT, https://HOST:PORT (TLS, never
    /// downgraded) or HOST:PORT (plaintext, or TLS with --ca or --cert).
    #[arg(long, global = true, env = "DATAPORT_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,

    #[command(flatten)]
    tls: client::TlsArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Greet NAME (helloworld.Greeter).
    Hello {
        name: String,
        /// Call SayHelloAgain instead of SayHello.
        #[arg(long)]
        again: bool,
    },
    /// Query the route guide (routeguide.RouteGuide); coordinates are degrees x 1e7.
    #[command(subcommand)]
    Route(client::route::RouteCommand),
    /// Read, publish and watch positions (dataport.position.v1).
    #[command(subcommand)]
    Position(client::position::PositionCommand),
    /// MACD(12, 26, 9) of a symbol's daily bars over a date range, beside the prices (dataport.market.v1).
    Macd(client::market::MacdArgs),
    /// Import, list, print and remove stored daily bars (dataport.market.v1).
    #[command(subcommand)]
    Bars(client::market::BarsCommand),
    /// Indicators of a symbol's stored bars over a date range, as columns (dataport.market.v1).
    Indicators(client::market::IndicatorsArgs),
    /// Draw candlesticks, volume and MACD of a date range to a PNG or SVG file (dataport.market.v1).
    Chart(client::market::ChartArgs),
    /// Print the outliers among the metrics of a CSV file (dataport.outliers.v1).
    Outliers(client::outliers::OutliersArgs),
    /// Upload files, each stored under its base name (dataport.files.v1;
    /// google.bytestream with --resume).
    Upload(client::files::UploadArgs),
    /// Download stored files to a directory, a file or stdout, checked against their sha256 (dataport.files.v1).
    Download(client::files::DownloadArgs),
    /// List, show and delete stored files (dataport.files.v1).
    #[command(subcommand)]
    Files(client::files::FilesCommand),
    /// Ask the server's health (grpc.health.v1): prints SERVING and exits 0, or exits 1.
    Health {
        /// One service's health (e.g. helloworld.Greeter); the whole server's by default.
        #[arg(default_value = "")]
        service: String,
    },
    /// Make tokens for a server's auth_tokens file (no server needed).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Check a data directory no server is running on: every stored file against the index,
    /// leftovers of a crash, the bar store (exit 1 when anything is wrong).
    Fsck(fsck::FsckArgs),
    /// Copy a data directory, consistently, while a server may be running on it.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory (no server running on either).
    Restore(backup::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::main(args),
        Command::Token(command) => token::run(command),
        Command::Fsck(args) => fsck::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        command => client::main(&cli.server, &cli.tls, |channel| async move {
            match command {
                Command::Hello { name, again } => client::greeter::hello(channel, name, again).await,
                Command::Health { service } => client::health::check(channel, service).await,
                Command::Route(cmd) => client::route::run(channel, cmd).await,
                Command::Position(cmd) => client::position::run(channel, cmd).await,
                Command::Macd(args) => client::market::macd(channel, args).await,
                Command::Bars(cmd) => client::market::bars(channel, cmd).await,
                Command::Indicators(args) => client::market::indicators(channel, args).await,
                Command::Chart(args) => client::market::chart(channel, args).await,
                Command::Outliers(args) => client::outliers::run(channel, args).await,
                Command::Upload(args) => client::files::upload(channel, args).await,
                Command::Download(args) => client::files::download(channel, args).await,
                Command::Files(cmd) => client::files::files(channel, cmd).await,
                Command::Serve(_)
                | Command::Token(_)
                | Command::Fsck(_)
                | Command::Backup(_)
                | Command::Restore(_) => unreachable!("handled above"),
            }
        }),
    }
}
