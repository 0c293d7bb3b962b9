use crate::common;

use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;

#[tokio::test]
async fn greeter_answers_both_greetings_verbatim() {
    let server = common::start().await;
    let mut client = GreeterClient::new(server.channel().await);
    for (name, hello, again) in [
        ("world", "Hello, world!", "Hello again, world!"),
        ("", "Hello, !", "Hello again, !"),
        ("Zoë", "Hello, Zoë!", "Hello again, Zoë!"),
    ] {
        let request = || HelloRequest { name: name.into() };
        assert_eq!(client.say_hello(request()).await.expect("ok").into_inner().message, hello);
        assert_eq!(client.say_hello_again(request()).await.expect("ok").into_inner().message, again);
    }
    server.stop().await;
}
