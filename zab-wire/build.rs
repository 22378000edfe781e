//! Generates the protobuf types and tonic services from `proto/zab.proto`
//! with `protox`, a pure-Rust protobuf compiler: no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/zab.proto");
    let fds = protox::compile(["proto/zab.proto"], ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
