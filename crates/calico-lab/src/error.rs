//! What can go wrong in a lab command, each with the words a user needs to fix it.

/// Every failure of a `calico-lab` command.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "calico-lab needs root (it creates network namespaces and runs calico-node): run it with sudo"
    )]
    NotRoot,
    #[error("a lab is already running in {dir} ({what}): run `calico-lab down` first")]
    AlreadyRunning { dir: String, what: String },
    #[error("no lab is running in {0}: start one with `calico-lab up`")]
    NoLab(String),
    #[error(
        "{name} not found next to calico-lab in {dir}: build every binary with `cargo build --release --bins`"
    )]
    MissingBinary { name: String, dir: String },
    #[error("`{0}` is not installed (scripts/install-deps.sh installs it)")]
    MissingTool(String),
    #[error("this kernel cannot {what}: {detail} (is the `{module}` module available?)")]
    KernelFeature {
        what: String,
        module: String,
        detail: String,
    },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("{0}")]
    Failed(String),
}

impl LabError {
    pub fn invalid(what: impl Into<String>, detail: impl Into<String>) -> LabError {
        LabError::Invalid {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// `map_err` helper: an I/O error with what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |e| LabError::Io(what, e)
}
