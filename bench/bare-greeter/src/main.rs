//! `bare-greeter`: the bare tonic baseline with the system allocator. See the
//! library's documentation.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    bare_greeter::run().await
}
