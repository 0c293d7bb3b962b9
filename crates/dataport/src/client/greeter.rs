//! `dataport hello`.

use crate::client::Channel;
use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;

pub async fn hello(channel: Channel, name: String, again: bool) -> anyhow::Result<()> {
    let mut client = GreeterClient::new(channel);
    let request = HelloRequest { name };
    let reply =
        if again { client.say_hello_again(request).await? } else { client.say_hello(request).await? };
    println!("{}", reply.into_inner().message);
    Ok(())
}
