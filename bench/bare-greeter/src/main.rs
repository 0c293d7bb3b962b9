//! The baseline for `bench/run`: `helloworld.Greeter` served by tonic with no
//! middleware, no logging and the default multi-thread runtime, so that the
//! benchmark shows what Dataport's own layers cost. Usage: `bare-greeter ADDR`.

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr =
        std::env::args().nth(1).ok_or("usage: bare-greeter LISTEN_ADDR (e.g. 127.0.0.1:50051)")?.parse()?;
    tonic::transport::Server::builder().add_service(GreeterServer::new(BareGreeter)).serve(addr).await?;
    Ok(())
}
