//! [`IpamAgent`] over calico-ipam-rpc's synchronous client (Contract 2).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use calico_ipam_rpc::{IpamAgentClient, RpcError};

use crate::plugin::{AgentError, AssignIpsRequest, AssignRequest, Assigned, IpamAgent};

/// How long one call may take: Calico gives an assignment 90 s after taking its host lock.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(90);

/// calico-node's IPAM service at a socket path.
pub struct RpcAgent {
    client: IpamAgentClient,
}

impl RpcAgent {
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> RpcAgent {
        RpcAgent {
            client: IpamAgentClient::new(path, timeout),
        }
    }
}

/// Agent errors as the plugin sees them: an agent that is not there (or too slow) is
/// "unreachable", a refusal keeps the agent's code.
pub fn map_rpc(e: RpcError) -> AgentError {
    match e {
        RpcError::Unreachable { .. } | RpcError::Timeout => AgentError::Unreachable(e.to_string()),
        RpcError::Remote { code, message } => AgentError::Remote { code, message },
        RpcError::Protocol(_) => AgentError::Other(e.to_string()),
    }
}

impl IpamAgent for RpcAgent {
    fn ping(&self) -> Result<String, AgentError> {
        self.client.ping().map_err(map_rpc)
    }

    fn assign(&self, req: &AssignRequest) -> Result<Assigned, AgentError> {
        let r = calico_ipam_rpc::AssignRequest {
            node: req.node.clone(),
            handle_id: req.handle_id.clone(),
            num4: req.num4,
            num6: req.num6,
            ipv4_pools: req.ipv4_pools.clone(),
            ipv6_pools: req.ipv6_pools.clone(),
            attrs: req.attrs.clone(),
            namespace_labels: None,
        };
        let a = self.client.assign(&r).map_err(map_rpc)?;
        Ok(Assigned {
            ipv4: a.ipv4,
            ipv6: a.ipv6,
        })
    }

    fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, AgentError> {
        let r = calico_ipam_rpc::AssignIpsRequest {
            node: req.node.clone(),
            handle_id: req.handle_id.clone(),
            ips: req.ips.clone(),
            attrs: req.attrs.clone(),
        };
        let a = self.client.assign_ips(&r).map_err(map_rpc)?;
        Ok(Assigned {
            ipv4: a.ipv4,
            ipv6: a.ipv6,
        })
    }

    fn release_handle(&self, node: &str, handle_id: &str) -> Result<usize, AgentError> {
        self.client.release_handle(node, handle_id).map_err(map_rpc)
    }

    fn release_ips(
        &self,
        node: &str,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, AgentError> {
        self.client
            .release_ips(node, ips, handle_id)
            .map_err(map_rpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_agent_maps_to_unreachable() {
        let d = tempfile::tempdir().unwrap();
        let a = RpcAgent::new(d.path().join("none.sock"), Duration::from_millis(200));
        match a.ping() {
            Err(AgentError::Unreachable(m)) => assert!(m.contains("none.sock"), "{m}"),
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert_eq!(
            map_rpc(RpcError::Remote {
                code: "pool_exhausted".into(),
                message: "full".into()
            }),
            AgentError::Remote {
                code: "pool_exhausted".into(),
                message: "full".into()
            }
        );
    }
}
