//! `bare-greeter-mimalloc`: the bare tonic baseline with mimalloc as the global
//! allocator, as `dataport` has, so that comparing the two shows the cost of
//! Dataport's own layers with the allocator held equal.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    bare_greeter::run().await
}
