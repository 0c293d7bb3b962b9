//! The baselines for `bench/run`: `helloworld.Greeter` served by tonic with no
//! middleware, no logging and the default multi-thread runtime, so that the
//! benchmark shows what Dataport's own layers cost. Two binaries share this
//! code and differ only in the global allocator: `bare-greeter` keeps the
//! system allocator, `bare-greeter-mimalloc` uses mimalloc as `dataport` does.
//! Usage of either: `BINARY LISTEN_ADDR`.

use std::error::Error;
use std::net::SocketAddr;

use dataport_proto::helloworld::greeter_server::{Greeter, GreeterServer};
use dataport_proto::helloworld::{HelloReply, HelloRequest};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct BareGreeter;

#[tonic::async_trait]
impl Greeter for BareGreeter {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello, {}!", req.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }

    async fn say_hello_again(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello again, {}!", req.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

/// Serves the Greeter on `addr` until the process is killed.
pub async fn serve(addr: SocketAddr) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder().add_service(GreeterServer::new(BareGreeter)).serve(addr).await
}

/// The whole of either binary's `main`: serves on the address given as the
/// first command-line argument.
pub async fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_else(|| "bare-greeter".into());
    let addr = args.next().ok_or_else(|| format!("usage: {program} LISTEN_ADDR (e.g. 127.0.0.1:50051)"))?;
    serve(addr.parse()?).await?;
    Ok(())
}
