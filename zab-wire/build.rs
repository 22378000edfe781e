//! Generates the protobuf types, and with the `grpc` feature the tonic
//! services, from `proto/zab.proto` with `protox`, a pure-Rust protobuf
//! compiler: no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/zab.proto");
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let fds = protox::compile(["proto/zab.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
