//! Where configuration is read from: the process environment, the host name and the
//! node-name file, behind a trait so parsing stays pure and table-testable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What [`super::NodeConfig::from_env`] reads.
pub trait Environment {
    /// One variable (`None` when unset).
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable, for the `FELIX_*` overrides.
    fn vars(&self) -> Vec<(String, String)>;
    /// The host name (`os.Hostname`), when it can be read.
    fn hostname(&self) -> Option<String>;
    /// A small file's contents (the node-name file), `None` when absent or unreadable.
    fn read_file(&self, path: &Path) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn hostname(&self) -> Option<String> {
        // The kernel's UTS name of the calling process, which is what Go's os.Hostname reads.
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// A fixed environment (tests, and callers that assemble the configuration themselves).
#[derive(Debug, Clone, Default)]
pub struct MapEnv {
    pub vars: BTreeMap<String, String>,
    pub hostname: Option<String>,
    pub files: BTreeMap<PathBuf, String>,
}

impl MapEnv {
    /// An environment holding `pairs`.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        MapEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            hostname: None,
            files: BTreeMap::new(),
        }
    }

    pub fn with_hostname(mut self, h: &str) -> Self {
        self.hostname = Some(h.to_string());
        self
    }

    pub fn with_file(mut self, path: impl Into<PathBuf>, contents: &str) -> Self {
        self.files.insert(path.into(), contents.to_string());
        self
    }
}

impl Environment for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn hostname(&self) -> Option<String> {
        self.hostname.clone()
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }
}
