//! `helloworld.Greeter` (compat).

use dataport_core::greeter;
use dataport_proto::helloworld::greeter_server::{Greeter, GreeterServer};
use dataport_proto::helloworld::{HelloReply, HelloRequest};
use tonic::{Request, Response, Status};

#[derive(Clone, Copy, Debug, Default)]
pub struct GreeterCompat;

pub fn compat() -> GreeterServer<GreeterCompat> {
    GreeterServer::new(GreeterCompat)
}

#[tonic::async_trait]
impl Greeter for GreeterCompat {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let message = greeter::hello(&request.get_ref().name);
        Ok(Response::new(HelloReply { message }))
    }

    async fn say_hello_again(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let message = greeter::hello_again(&request.get_ref().name);
        Ok(Response::new(HelloReply { message }))
    }
}
