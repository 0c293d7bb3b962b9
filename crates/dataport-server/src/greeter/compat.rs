//! The seed `helloworld.Greeter`.

use dataport_core::greeter as hello;
use dataport_proto::helloworld::greeter_server::{self, GreeterServer};
use dataport_proto::helloworld::{HelloReply, HelloRequest};
use tonic::{Request, Response};

use crate::Reply;

/// `helloworld.Greeter`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Greeter;

/// `helloworld.Greeter`.
pub fn greeter(max_message: usize) -> GreeterServer<Greeter> {
    GreeterServer::new(Greeter).max_decoding_message_size(max_message)
}

#[tonic::async_trait]
impl greeter_server::Greeter for Greeter {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Reply<HelloReply> {
        let message = hello::hello(&request.get_ref().name);
        Ok(Response::new(HelloReply { message }))
    }

    async fn say_hello_again(&self, request: Request<HelloRequest>) -> Reply<HelloReply> {
        let message = hello::hello_again(&request.get_ref().name);
        Ok(Response::new(HelloReply { message }))
    }
}
