//! Compiles every .proto under `proto/` with protox (no system protoc) and
//! generates prost messages and tonic clients and servers from the result.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let compat = root.join("compat");
    println!("cargo:rerun-if-changed={}", root.display());

    // Compat files are named as the seed clients name them ("helloworld.proto"),
    // so that reflection serves the same file names their stubs were built from;
    // versioned files, and the public Google and gRPC APIs we serve, are named
    // by their package path ("dataport/position/v1/...", "google/bytestream/...",
    // "grpc/health/v1/health.proto").
    let mut files = Vec::new();
    collect(&compat, &compat, &mut files)?;
    collect(&root.join("dataport"), &root, &mut files)?;
    collect(&root.join("google"), &root, &mut files)?;
    collect(&root.join("grpc"), &root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [&compat, &root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;

    // File data is `bytes::Bytes`: a received chunk is a slice of the buffer
    // tonic decoded it from, not a copy.
    let bytes = [
        ".UploadRequest.chunk_data",
        ".FileResponse.chunk_data",
        ".FileTransfer.Chunk.data",
        ".google.bytestream",
        ".dataport.files.v1",
    ];
    bytes
        .iter()
        .fold(tonic_prost_build::configure(), |config, path| config.bytes(path))
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Pushes the path of every .proto file below `dir`, relative to `base`.
fn collect(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, base, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(base).map_err(std::io::Error::other)?;
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}
