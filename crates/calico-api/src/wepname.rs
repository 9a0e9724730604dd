//! WorkloadEndpoint names (`libcalico-go/lib/names/workloadendpoint.go`): a WEP's name is built
//! from its identifiers, `<node>-<orchestrator>-<pod|containerID|orchestrator|workload>-<endpoint>`
//! depending on the orchestrator, with `-` inside each segment doubled (`node-1` → `node--1`)
//! so the name can be split again. Calico's client assigns the name when it is empty and rejects
//! a name that does not match the identifiers.

use std::fmt;

/// The identifying fields of a workload endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadEndpointIdentifiers {
    pub node: String,
    pub orchestrator: String,
    pub endpoint: String,
    pub workload: String,
    pub pod: String,
    pub container_id: String,
}

/// A problem with one identifier; `field` is its JSON name in the WEP spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for NameError {}

impl WorkloadEndpointIdentifiers {
    /// The segments making up the name, in order, as (JSON field name, value).
    fn segments(&self) -> Result<[(&'static str, &str); 4], NameError> {
        if self.node.is_empty() {
            return Err(NameError {
                field: "node",
                message: "field should be assigned".into(),
            });
        }
        let node = ("node", self.node.as_str());
        let orch = ("orchestrator", self.orchestrator.as_str());
        let third = match self.orchestrator.as_str() {
            "k8s" => ("pod", self.pod.as_str()),
            "cni" => ("containerID", self.container_id.as_str()),
            // libnetwork repeats the orchestrator in the workload position.
            "libnetwork" => orch,
            _ => ("workload", self.workload.as_str()),
        };
        Ok([node, orch, third, ("endpoint", self.endpoint.as_str())])
    }

    /// Calico `CalicoWorkloadEndpointName`: the full name, or with `allow_prefix` the prefix up
    /// to (and including the `-` before) the first unset segment.
    pub fn calculate_name(&self, allow_prefix: bool) -> Result<String, NameError> {
        let mut parts: Vec<String> = Vec::new();
        for (field, value) in self.segments()? {
            if value.is_empty() {
                if !allow_prefix {
                    return Err(NameError {
                        field,
                        message: "field should be assigned".into(),
                    });
                }
                return Ok(format!("{}-", parts.join("-")));
            }
            parts.push(escape_dashes(field, value)?);
        }
        Ok(parts.join("-"))
    }

    /// Calico `NameMatches`: whether `name` splits into the right number of segments and every
    /// identifier that is set equals its segment.
    pub fn name_matches(&self, name: &str) -> Result<bool, NameError> {
        let segments = self.segments()?;
        let Some(parts) = extract_dash_separated_params(name, segments.len()) else {
            return Ok(false);
        };
        Ok(segments
            .iter()
            .zip(parts.iter())
            .all(|((_, want), got)| want.is_empty() || want == got))
    }
}

fn escape_dashes(field: &'static str, value: &str) -> Result<String, NameError> {
    if value.starts_with('-') {
        return Err(NameError {
            field,
            message: "field must not begin with a '-'".into(),
        });
    }
    if value.ends_with('-') {
        return Err(NameError {
            field,
            message: "field must not end with a '-'".into(),
        });
    }
    Ok(value.replace('-', "--"))
}

/// Splits a name at single dashes (a doubled dash is an escaped dash inside a segment).
fn extract_parts(name: &str) -> Vec<String> {
    let b = name.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0usize;
    let mut i = 1usize;
    while i < b.len() {
        if b[i] != b'-' {
            i += 1;
            continue;
        }
        if i + 1 < b.len() && b[i + 1] == b'-' {
            i += 2;
            continue;
        }
        parts.push(name[start..i].replace("--", "-"));
        start = i + 1;
        i += 1;
    }
    parts.push(name.get(start..).unwrap_or("").replace("--", "-"));
    parts
}

/// Calico `ExtractDashSeparatedParms`: exactly `n` segments, or `None`.
pub fn extract_dash_separated_params(name: &str, n: usize) -> Option<Vec<String>> {
    if name.len() < 2 * n - 1 {
        return None;
    }
    let parts = extract_parts(name);
    (parts.len() == n).then_some(parts)
}

/// Why a name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNameError {
    #[error("cannot parse an empty workload endpoint name")]
    Empty,
    #[error("error parsing {0}, verify that WorkloadEndpoint name is correct")]
    TooManySegments(String),
}

/// Calico `ParseWorkloadEndpointName`: the identifiers a (possibly partial) name encodes.
pub fn parse_workload_endpoint_name(
    name: &str,
) -> Result<WorkloadEndpointIdentifiers, ParseNameError> {
    if name.is_empty() {
        return Err(ParseNameError::Empty);
    }
    let parts = extract_parts(name);
    let mut ids = WorkloadEndpointIdentifiers {
        node: parts[0].clone(),
        ..Default::default()
    };
    let Some(orch) = parts.get(1) else {
        return Ok(ids);
    };
    ids.orchestrator = orch.clone();
    let rest = &parts[2..];
    if rest.len() > 2 {
        return Err(ParseNameError::TooManySegments(name.to_string()));
    }
    for (i, part) in rest.iter().enumerate() {
        let slot = match (ids.orchestrator.as_str(), i) {
            ("k8s", 0) => &mut ids.pod,
            ("cni", 0) => &mut ids.container_id,
            ("libnetwork", 0) => &mut ids.orchestrator,
            (_, 0) => &mut ids.workload,
            _ => &mut ids.endpoint,
        };
        *slot = part.clone();
    }
    Ok(ids)
}
