//! `warrant-verifier`: admits only nodes whose boot it can prove. Never links the TPM stack.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use proto::tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use verifier::ca::Authority;
use verifier::service::{unix_now, Config, Service};
use verifier::store::{SqliteStore, Store};

/// Warrant's verifier: admits only nodes whose boot it can prove.
#[derive(Parser)]
#[command(name = "warrant-verifier", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the attestation protocol (gRPC over TLS).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:7443
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// The verifier's state: SQLite database, its CA, its server certificate, evidence.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Reference values (docs/reference-values.md). Without it every node is denied and
        /// its evidence kept for `policy capture`.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Trusted EK manufacturer CA certificates: every *.pem, *.crt and *.der in DIR.
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        /// Names in the server certificate (DNS names or IP addresses); repeatable.
        #[arg(long = "server-name", default_values_t = vec!["localhost".to_string(), "127.0.0.1".to_string()])]
        server_names: Vec<String>,
        /// Seconds between re-attestations of an admitted node; three missed intervals
        /// revoke it.
        #[arg(long, default_value_t = 60)]
        reattest_interval: u64,
        /// Lifetime of an issued client certificate, in seconds.
        #[arg(long, default_value_t = 3600)]
        credential_ttl: u64,
        /// Lifetime of a bootstrap token, in seconds.
        #[arg(long, default_value_t = 900)]
        token_ttl: u64,
        /// POST every decision as JSON to this URL (http:// on a loopback address only).
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
    },
    /// Reference values.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The audit trail: every decision with its reasons, as JSON lines.
    Audit {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Only this node (its id).
        #[arg(long)]
        node: Option<String>,
        /// Only decisions at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
    },
    /// Registered nodes and their states, as JSON.
    Nodes {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
    },
    /// Issue a client certificate for an operator or controller that reads the watch stream:
    /// writes operator.pem, operator-key.pem (0600) and ca.pem into --out.
    OperatorCert {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The operator's name (a DNS-style label, e.g. cluster-controller).
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Lifetime in seconds (operator certificates are not in the revocation list).
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Print decisions as the verifier takes them (the watch stream), as JSON lines.
    Watch {
        /// The verifier, e.g. https://127.0.0.1:7443
        #[arg(long, value_name = "URL")]
        verifier: String,
        /// A folder written by `operator-cert` (operator.pem, operator-key.pem, ca.pem).
        #[arg(long, value_name = "DIR")]
        identity: PathBuf,
    },
    /// Revoke a node's credentials now (works while the verifier is serving: same database).
    Revoke {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The node's id or name.
        node: String,
        #[arg(long, default_value = "revoked by an operator")]
        reason: String,
    },
    /// Forget a node (a revoked one, typically, after its machine was repaired): its
    /// credentials stop working, and its TPM may register again and must pass a full
    /// attestation. The audit trail keeps every decision, plus this removal.
    Remove {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The node's id or name.
        node: String,
        #[arg(long, default_value = "removed by an operator")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Reference values from a golden node's last evidence (kept by `serve`): its quote
    /// verified and its logs replayed, everything they show becomes what is allowed.
    Capture {
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The golden node's id or name.
        #[arg(long)]
        node: String,
    },
    /// Check a reference-values file and print it normalised.
    Check { file: PathBuf },
}

struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Every certificate in *.pem, *.crt and *.der files of `dir`.
fn trusted_roots(dir: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Failure(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pem" | "crt" | "der")
                )
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = read(&p)?;
        if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            out.extend(
                policy::ek::pem_to_der(&bytes)
                    .map_err(|e| Failure(format!("{}: {e}", p.display())))?,
            );
        } else {
            out.push(bytes);
        }
    }
    if out.is_empty() {
        return Err(Failure(format!(
            "{}: no trusted EK CA certificates (*.pem, *.crt, *.der)",
            dir.display()
        )));
    }
    Ok(out)
}

fn load_policy(path: &Path) -> Result<policy::refvalues::ReferenceValues, Failure> {
    policy::refvalues::ReferenceValues::from_json(&read(path)?)
        .map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn find_node(store: &SqliteStore, node: &str) -> Result<verifier::store::Node, Failure> {
    if let Some(n) = store.node(node)? {
        return Ok(n);
    }
    store
        .node_by_name(node)?
        .ok_or_else(|| Failure(format!("no node with id or name {node}")))
}

async fn serve(
    listen: SocketAddr,
    state: PathBuf,
    config: Config,
    server_names: Vec<String>,
) -> Result<(), Failure> {
    let store = Arc::new(SqliteStore::open(&state)?);
    let ca = Arc::new(Authority::load_or_create(&state, unix_now())?);
    let (cert, key) = ca.server_identity(&server_names, unix_now())?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca.ca_pem()))
        .client_auth_optional(true);
    let service = Service::new(store, ca.clone(), config);
    service.start_webhook();
    let monitor = service.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Ok(revoked) = monitor.revoke_silent_nodes() {
                for node in revoked {
                    eprintln!("warrant-verifier: revoked {node}: missed re-attestation");
                }
            }
        }
    });
    let server = proto::v1::verifier_server::VerifierServer::new(service)
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port (with --listen 127.0.0.1:0).
    println!("warrant-verifier: listening on {local}");
    eprintln!(
        "warrant-verifier: CA certificate {}",
        state.join("ca.pem").display()
    );
    Server::builder()
        .tls_config(tls)?
        .add_service(server)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}

/// Writes `name` in `dir` with mode 0600, atomically.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Failure(format!("{}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| Failure(format!("{name}: {e}")))
}

async fn watch(url: &str, identity: &Path) -> Result<(), Failure> {
    use proto::tonic::transport::{ClientTlsConfig, Endpoint};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&identity.join("ca.pem"))?))
        .identity(Identity::from_pem(
            read(&identity.join("operator.pem"))?,
            read(&identity.join("operator-key.pem"))?,
        ));
    let channel = Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect()
        .await
        .map_err(|e| Failure(format!("cannot reach {url}: {e}")))?;
    let mut client = proto::v1::verifier_client::VerifierClient::new(channel);
    let mut stream = client
        .watch(proto::v1::WatchRequest {})
        .await
        .map_err(|s| Failure(format!("watch refused: {}", s.message())))?
        .into_inner();
    while let Some(d) = stream
        .message()
        .await
        .map_err(|s| Failure(format!("watch ended: {}", s.message())))?
    {
        println!("{}", verifier::service::decision_json(&d));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve {
            listen,
            state,
            policy,
            ca_dir,
            server_names,
            reattest_interval,
            credential_ttl,
            token_ttl,
            webhook,
        } => {
            let refs = policy.as_deref().map(load_policy).transpose()?;
            let config = Config {
                refs,
                trusted_roots: trusted_roots(&ca_dir)?,
                credential_ttl_secs: credential_ttl,
                token_ttl_secs: token_ttl,
                reattest_interval_secs: reattest_interval,
                evidence_dir: state.join("evidence"),
                webhook: webhook
                    .as_deref()
                    .map(verifier::webhook::Webhook::parse)
                    .transpose()?,
            };
            std::fs::create_dir_all(&state)
                .map_err(|e| Failure(format!("{}: {e}", state.display())))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(listen, state, config, server_names))
        }
        Command::Policy(PolicyCommand::Capture { state, node }) => {
            let store = SqliteStore::open(&state)?;
            let node = find_node(&store, &node)?;
            let refs = verifier::capture::capture(&state.join("evidence"), &node)?;
            println!("{}", refs.to_json_pretty());
            Ok(())
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let refs = load_policy(&file)?;
            println!("{}", refs.to_json_pretty());
            Ok(())
        }
        Command::Audit { state, node, since } => {
            let store = SqliteStore::open(&state)?;
            for d in store.decisions(node.as_deref(), since)? {
                println!("{}", serde_json::to_string(&d)?);
            }
            Ok(())
        }
        Command::Nodes { state } => {
            let store = SqliteStore::open(&state)?;
            println!("{}", serde_json::to_string_pretty(&store.nodes()?)?);
            Ok(())
        }
        Command::OperatorCert {
            state,
            name,
            out,
            ttl,
        } => {
            let ca = Authority::load_or_create(&state, unix_now())?;
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let csr =
                rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
            let issued = ca.issue_operator(csr.der(), &name, ttl, unix_now())?;
            write_private(&out, "operator-key.pem", key.serialize_pem().as_bytes())?;
            write_private(&out, "operator.pem", issued.cert_pem.as_bytes())?;
            write_private(&out, "ca.pem", ca.ca_pem().as_bytes())?;
            println!(
                "operator {name}: {} (serial {}, until {})",
                out.join("operator.pem").display(),
                issued.serial,
                issued.not_after
            );
            Ok(())
        }
        Command::Watch { verifier, identity } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(watch(&verifier, &identity))
        }
        Command::Revoke {
            state,
            node,
            reason,
        } => {
            let store = SqliteStore::open(&state)?;
            let node = find_node(&store, &node)?;
            let n = store.revoke_node(&node.node_id, &reason, unix_now())?;
            println!("revoked node {} ({n} credentials)", node.node_id);
            Ok(())
        }
        Command::Remove {
            state,
            node,
            reason,
        } => {
            let store = SqliteStore::open(&state)?;
            let node = find_node(&store, &node)?;
            store.remove_node(&node.node_id, &reason, unix_now())?;
            println!(
                "removed node {} ({}, was {}); its TPM may register again",
                node.node_id, node.name, node.state
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(m)) => {
            eprintln!("warrant-verifier: {m}");
            ExitCode::from(2)
        }
    }
}
