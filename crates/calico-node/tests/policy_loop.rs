//! The policy loop (datastore → calculation graph → nft compiler → dataplane) against the
//! embedded datastore and a recording dataplane: what reaches the kernel, and when.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_client::Client;
use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_felix::policy::{DataplaneError, PolicyDataplane};
use calico_nft::TableShape;
use calico_node::policy::{PolicyAgent, settings_from_felix};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Records every script; `fail` makes the next applies fail (like a kernel refusing them).
#[derive(Clone, Default)]
struct Recorder {
    scripts: Arc<Mutex<Vec<String>>>,
    fail: Arc<Mutex<bool>>,
}

impl PolicyDataplane for Recorder {
    fn apply(&mut self, script: &str) -> Result<(), DataplaneError> {
        if *self.fail.lock().unwrap() {
            return Err(DataplaneError::Failed {
                command: "nft -f -".into(),
                status: "exit status: 1".into(),
                stderr: "Error: Could not process rule: No such file or directory".into(),
            });
        }
        self.scripts.lock().unwrap().push(script.to_string());
        Ok(())
    }
    fn list_table(&mut self, _table: &str) -> Result<Option<TableShape>, DataplaneError> {
        Ok(None)
    }
}

/// An initialized embedded store in `dir` holding [`WEP`], and a client of it.
async fn store_with_wep(dir: &std::path::Path) -> (Arc<dyn Datastore>, Client) {
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.join("store.db")).unwrap());
    let client = Client::new(store.clone());
    client.ensure_initialized("v3.30.0", "test").await.unwrap();
    apply(&client, WEP).await;
    (store, client)
}

async fn apply(client: &Client, yaml: &str) {
    for doc in calico_api::decode::decode_documents("test", yaml).unwrap() {
        client.apply(doc.resource).await.unwrap();
    }
}

async fn wait_until(rec: &Recorder, what: &str, f: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if f(&rec.scripts.lock().unwrap()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; scripts so far:\n{}",
            rec.scripts.lock().unwrap().join("\n----\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WEP: &str = "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n\
metadata: {name: node1-k8s-a-eth0, namespace: ns1, labels: {app: web, projectcalico.org/namespace: ns1, projectcalico.org/orchestrator: k8s}}\n\
spec: {node: node1, orchestrator: k8s, pod: a, endpoint: eth0, interfaceName: cali1234567890a, ipNetworks: [10.65.0.5/32], profiles: [kns.ns1]}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_reach_the_dataplane_and_bad_ones_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client) = store_with_wep(dir.path()).await;

    let (settings, warnings) =
        settings_from_felix("node1", None, &["cali".to_string()], &Default::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    let rec = Recorder::default();
    let mut registry = Registry::default();
    let agent = PolicyAgent::with_dataplane(
        settings,
        store.clone(),
        &mut registry,
        Box::new(rec.clone()),
    );
    let mut status = agent.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent.run(shutdown.clone()));

    // Start-up: one full replace holding the endpoint's dispatch.
    wait_until(&rec, "the first full table", |s| {
        s.first()
            .is_some_and(|t| t.contains("table inet calico") && t.contains("cali1234567890a"))
    })
    .await;
    status.wait_for(|s| s.ready).await.unwrap();

    // A policy selecting the endpoint: a diff, not a full replace, mentioning port 8080.
    apply(
        &client,
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: ns1}\n\
         spec: {selector: app == 'web', ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]}\n",
    )
    .await;
    wait_until(&rec, "the policy's diff", |s| {
        s.len() >= 2 && s.last().unwrap().contains("8080")
    })
    .await;
    let diff = rec.scripts.lock().unwrap().last().unwrap().clone();
    assert!(
        !diff.contains("delete table"),
        "an edit must not replace the table:\n{diff}"
    );

    // A broken write of the same policy (bad JSON in the store) keeps the old rules.
    let n = rec.scripts.lock().unwrap().len();
    store
        .put(
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns1/web",
            b"{not json".to_vec(),
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rec.scripts.lock().unwrap().len(),
        n,
        "a bad resource must not change the dataplane"
    );

    // The dataplane refusing a transaction: not ready, then retried until it succeeds.
    *rec.fail.lock().unwrap() = true;
    client
        .delete("NetworkPolicy", "ns1", "web", None)
        .await
        .unwrap();
    status.wait_for(|s| !s.ready).await.unwrap();
    *rec.fail.lock().unwrap() = false;
    wait_until(&rec, "the retried change", |s| s.len() > n).await;
    status.wait_for(|s| s.ready).await.unwrap();
    let last = rec.scripts.lock().unwrap().last().unwrap().clone();
    assert!(!last.contains("8080") || last.contains("delete"), "{last}");

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[test]
fn felix_settings_map_to_the_compiler() {
    let spec: calico_api::felixconfig::FelixConfigurationSpec = serde_json::from_value(serde_json::json!({
        "failsafeInboundHostPorts": [{"protocol": "TCP", "port": 22}, {"protocol": "udp", "port": 68, "net": "10.0.0.0/8"}],
        "failsafeOutboundHostPorts": [],
        "defaultEndpointToHostAction": "Accept",
        "logPrefix": "mine",
        "nftablesRefreshInterval": "30s"
    }))
    .unwrap();
    let (s, warnings) = settings_from_felix("n1", None, &["cali".into()], &spec);
    // An entry with a net is open to that net only.
    assert_eq!(s.nft.failsafe_inbound, vec![(6, 22)]);
    assert_eq!(
        s.nft.failsafe_inbound_nets,
        vec![(17, 68, "10.0.0.0/8".parse().unwrap())]
    );
    assert!(s.nft.failsafe_outbound.is_empty());
    assert_eq!(
        s.nft.endpoint_to_host_action,
        calico_nft::EndpointToHostAction::Accept
    );
    assert_eq!(s.nft.log_prefix, "mine");
    assert_eq!(s.refresh, Duration::from_secs(30));
    assert!(warnings.is_empty(), "{warnings:?}");
    // IPv6Support: true unless configured off.
    assert!(s.nft.ipv6);
    let spec: calico_api::felixconfig::FelixConfigurationSpec =
        serde_json::from_value(serde_json::json!({"ipv6Support": false})).unwrap();
    let (s, _) = settings_from_felix("n1", None, &["cali".into()], &spec);
    assert!(!s.nft.ipv6);

    let spec: calico_api::felixconfig::FelixConfigurationSpec = serde_json::from_value(
        serde_json::json!({"defaultEndpointToHostAction": "Explode", "failsafeInboundHostPorts": [{"protocol": "gre", "port": 1}, {"protocol": "TCP", "port": 2, "net": "10.0.0.0/33"}, {"protocol": "TCP", "port": 3, "net": "fd00::7"}]}),
    )
    .unwrap();
    let (s, warnings) = settings_from_felix("n1", None, &["cali".into()], &spec);
    assert_eq!(
        s.nft.endpoint_to_host_action,
        calico_nft::EndpointToHostAction::Drop
    );
    assert!(s.nft.failsafe_inbound.is_empty());
    assert_eq!(
        s.nft.failsafe_inbound_nets,
        vec![(6, 3, "fd00::7/128".parse().unwrap())]
    );
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("10.0.0.0/33")),
        "{warnings:?}"
    );
    assert_eq!(s.refresh, Duration::from_secs(90));
}

/// FelixConfiguration changes reach the table while the loop runs (Felix restarts itself for
/// them): the global `default` changes the inbound failsafe ports, then the node's own
/// `node.node1` overrides them, and the environment layer wins over both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn felix_configuration_changes_apply_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client) = store_with_wep(dir.path()).await;

    let (settings, _) =
        settings_from_felix("node1", None, &["cali".to_string()], &Default::default());
    // The environment sets the outbound failsafes only.
    let env: calico_api::felixconfig::FelixConfigurationSpec = serde_json::from_value(
        serde_json::json!({"failsafeOutboundHostPorts": [{"protocol": "UDP", "port": 53}]}),
    )
    .unwrap();
    let rec = Recorder::default();
    let mut registry = Registry::default();
    let agent = PolicyAgent::with_dataplane(
        settings.with_live_config(env),
        store.clone(),
        &mut registry,
        Box::new(rec.clone()),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent.run(shutdown.clone()));
    // The environment's outbound failsafes are in force from the start (the start-up
    // settings given here had Felix's defaults).
    wait_until(&rec, "the first table", |s| !s.is_empty()).await;
    let out_set = |script: &str| -> Option<String> {
        script
            .lines()
            .find(|l| l.contains("set failsafe-out "))
            .map(str::to_string)
    };
    let first = rec.scripts.lock().unwrap()[0].clone();
    let out = out_set(&first).expect("a failsafe-out set");
    assert!(
        out.contains("udp . 53") && !out.contains("tcp . 179"),
        "{out}"
    );

    apply(
        &client,
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\n\
         spec: {failsafeInboundHostPorts: [{protocol: TCP, port: 2222}], failsafeOutboundHostPorts: [{protocol: TCP, port: 9}]}\n",
    )
    .await;
    wait_until(&rec, "the global failsafe change", |s| {
        s.last().is_some_and(|l| l.contains("tcp . 2222"))
    })
    .await;
    let last = rec.scripts.lock().unwrap().last().unwrap().clone();
    assert!(!last.contains("tcp . 9"), "the environment wins:\n{last}");

    apply(
        &client,
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.node1}\n\
         spec: {failsafeInboundHostPorts: [{protocol: TCP, port: 3333}]}\n",
    )
    .await;
    wait_until(&rec, "the node's failsafe override", |s| {
        s.last().is_some_and(|l| {
            l.contains("tcp . 3333")
                && !l.contains("add element inet calico failsafe-in { tcp . 2222")
        })
    })
    .await;
    // Another node's configuration changes nothing here.
    let n = rec.scripts.lock().unwrap().len();
    apply(
        &client,
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.node2}\n\
         spec: {failsafeInboundHostPorts: [{protocol: TCP, port: 4444}]}\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rec.scripts.lock().unwrap().len(), n);

    // Deleting the node's layer brings back the global one.
    client
        .delete("FelixConfiguration", "", "node.node1", None)
        .await
        .unwrap();
    wait_until(&rec, "the global layer again", |s| {
        s.len() > n && s.last().is_some_and(|l| l.contains("tcp . 2222"))
    })
    .await;

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
