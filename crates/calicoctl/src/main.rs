//! `calicoctl`: the command line for Calico's `projectcalico.org/v3` resources, with calicoctl's
//! commands, flags, messages and output formats (`calicoctl/calicoctl/commands/*.go`).
//!
//! It owns argument parsing, reading resource files and printing; everything about resources
//! and the datastore is `calico-client`'s. It must not depend on any dataplane crate.
//!
//! Files may also hold Kubernetes `networking.k8s.io/v1` NetworkPolicy and `v1` Namespace /
//! ServiceAccount documents: they are converted with `calico-k8s` and stored as
//! calico-kube-controllers stores them in an etcd-mode cluster (`knp.default.<name>` policies,
//! `kns.<ns>` and `ksa.<ns>.<sa>` profiles; see the `k8s` module).
//!
//! The datastore is chosen as calicoctl chooses it (`-c/--config`, default
//! `/etc/calico/calicoctl.cfg`, else the environment: `DATASTORE_TYPE`, `ETCD_ENDPOINTS`,
//! `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`), plus our `embedded` datastore type —
//! the default when nothing is configured — whose file is `CALICO_DATASTORE_PATH` or the config's
//! `spec.embeddedPath` (default `/var/lib/calico/calico.db`).

mod commands;
mod input;
mod ipam;
mod k8s;
mod node;
mod output;
mod table;

use clap::{Args, Parser, Subcommand};

const DEFAULT_CONFIG: &str = calico_client::config::DEFAULT_CONFIG_PATH;

const DATASTORE_HELP: &str = "\
Datastore selection (as calicoctl):
  -c/--config FILE (default /etc/calico/calicoctl.cfg): apiVersion: projectcalico.org/v3,
  kind: CalicoAPIConfig, spec: {datastoreType, etcdEndpoints, etcdCACertFile, etcdCertFile,
  etcdKeyFile, etcdUsername, etcdPassword, embeddedPath}. Without that file, the environment:
  DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE,
  ETCD_USERNAME, ETCD_PASSWORD (each also read as CALICO_<NAME>), CALICO_DATASTORE_PATH.
  datastoreType is etcdv3 or embedded; it defaults to etcdv3 when etcd endpoints are set and
  to embedded (a single SQLite file, default /var/lib/calico/calico.db) otherwise.";

#[derive(Parser, Debug)]
#[command(
    name = "calicoctl",
    after_help = DATASTORE_HELP,
    about = "Calico CLI tool for managing Calico resources",
    long_about = "The calicoctl command line tool is used to manage Calico network and security \
                  policy, to view and manage endpoint configuration, and to manage a Calico node \
                  instance."
)]
struct Cli {
    /// Set the log level (panic, fatal, error, warn, info, debug).
    #[arg(
        short = 'l',
        long = "log-level",
        default_value = "panic",
        global = true
    )]
    log_level: String,
    /// The name of the kubeconfig context to use (accepted for compatibility; unused).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Allow client and cluster versions mismatch (accepted for compatibility).
    #[arg(long = "allow-version-mismatch", global = true)]
    allow_version_mismatch: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Flags shared by the file-driven commands (`addCRUDFlags`).
#[derive(Args, Debug, Clone)]
pub struct CrudFlags {
    /// Filename to use to create/apply/replace/delete the resource. Use '-' for stdin.
    #[arg(short = 'f', long = "filename")]
    pub filename: Option<String>,
    /// Process the filename specified in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Do not error if files contain no data.
    #[arg(long = "skip-empty")]
    pub skip_empty: bool,
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// Namespace of the resource.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a resource by file, directory or stdin.
    Create {
        #[command(flatten)]
        crud: CrudFlags,
        /// Skip over resources that already exist.
        #[arg(long = "skip-exists")]
        skip_exists: bool,
    },
    /// Apply a resource by file, directory or stdin (create or update).
    Apply {
        #[command(flatten)]
        crud: CrudFlags,
    },
    /// Replace a resource by file, directory or stdin.
    Replace {
        #[command(flatten)]
        crud: CrudFlags,
    },
    /// Delete a resource by file, directory, stdin, or type and name.
    Delete {
        #[command(flatten)]
        crud: CrudFlags,
        /// Skip over resources that do not exist.
        #[arg(short = 's', long = "skip-not-exists")]
        skip_not_exists: bool,
        kind: Option<String>,
        names: Vec<String>,
    },
    /// Get a resource by file, directory, stdin, or type and name.
    Get {
        #[command(flatten)]
        crud: CrudFlags,
        /// Output format: yaml, json, ps, wide, name, custom-columns=...
        #[arg(short = 'o', long, default_value = "ps")]
        output: String,
        /// List the requested object(s) across all namespaces.
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
        #[arg(short = 'a', hide = true)]
        all_namespaces_a: bool,
        /// Strip cluster-specific information from the output.
        #[arg(long)]
        export: bool,
        kind: Option<String>,
        names: Vec<String>,
    },
    /// Patch a pre-existing resource in place.
    Patch {
        kind: String,
        name: String,
        /// Spec to use to patch the resource.
        #[arg(short = 'p', long)]
        patch: String,
        /// Format of patch type: strategic, json, or merge.
        #[arg(short = 't', long = "type", default_value = "strategic")]
        patch_type: String,
        #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
        config: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Add or update labels of resources.
    Label {
        kind: String,
        name: String,
        /// key=value, or key with --remove.
        label: String,
        /// Overwrite the value when the key is already present in labels.
        #[arg(long)]
        overwrite: bool,
        /// Remove the specified key from labels.
        #[arg(long)]
        remove: bool,
        #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
        config: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Validate a resource by file, directory or stdin without applying it.
    Validate {
        #[command(flatten)]
        crud: CrudFlags,
    },
    /// IP address management.
    Ipam {
        #[command(subcommand)]
        cmd: ipam::IpamCmd,
    },
    /// Calico node management.
    #[command(
        long_about = "Manage a Calico node instance. These commands run directly on the compute \
                      host where the node is running."
    )]
    Node {
        #[command(subcommand)]
        cmd: node::NodeCmd,
    },
    /// Display the version of this binary.
    Version {
        /// Display the client version only.
        #[arg(long)]
        client: bool,
        /// Path to the file containing connection configuration.
        #[arg(short = 'c', long)]
        config: Option<String>,
    },
}

const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
];

async fn run(cli: Cli) -> anyhow::Result<()> {
    if !LOG_LEVELS.contains(&cli.log_level.to_ascii_lowercase().as_str()) {
        anyhow::bail!(
            "unknown log level: {}, expected one of: panic, fatal, error, warn, info, debug",
            cli.log_level
        );
    }
    init_logging(&cli.log_level);
    use commands::Action;
    match cli.cmd {
        Cmd::Create { crud, skip_exists } => {
            commands::write_from_files(&crud, Action::Create { skip_exists }).await
        }
        Cmd::Apply { crud } => commands::write_from_files(&crud, Action::Apply).await,
        Cmd::Replace { crud } => commands::write_from_files(&crud, Action::Replace).await,
        Cmd::Validate { crud } => commands::write_from_files(&crud, Action::Validate).await,
        Cmd::Delete {
            crud,
            skip_not_exists,
            kind,
            names,
        } => commands::delete(&crud, skip_not_exists, kind, names).await,
        Cmd::Get {
            crud,
            output,
            all_namespaces,
            all_namespaces_a,
            export,
            kind,
            names,
        } => {
            commands::get(commands::GetArgs {
                crud,
                output,
                all_namespaces: all_namespaces || all_namespaces_a,
                export,
                kind,
                names,
            })
            .await
        }
        Cmd::Patch {
            kind,
            name,
            patch,
            patch_type,
            config,
            namespace,
        } => commands::patch(&kind, &name, &patch, &patch_type, &config, namespace).await,
        Cmd::Label {
            kind,
            name,
            label,
            overwrite,
            remove,
            config,
            namespace,
        } => commands::label(&kind, &name, &label, overwrite, remove, &config, namespace).await,
        Cmd::Ipam { cmd } => ipam::run(cmd).await,
        Cmd::Node { cmd } => node::run(cmd),
        Cmd::Version { client, config } => commands::version(client, config).await,
    }
}

/// Maps calicoctl's logrus levels onto tracing, logging to stderr (`panic`, the default, and
/// `fatal` keep the output clean).
fn init_logging(level: &str) {
    let filter = match level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" => return,
        "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        // calicoctl prints the error alone, no "Error:" prefix (`calicoctl.go main`).
        let msg = e.to_string();
        eprintln!("{}", msg.trim_end_matches('\n'));
        std::process::exit(1);
    }
}
