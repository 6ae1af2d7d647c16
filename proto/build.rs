//! Generates the gRPC client and server from proto/warrant.proto (needs `protoc`, from
//! Debian's protobuf-compiler, which scripts/install-deps.sh installs).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/warrant.proto");
    tonic_prost_build::configure().compile_protos(&["proto/warrant.proto"], &["proto"])?;
    Ok(())
}
