use super::*;
use calico_client::config::DatastoreType;

/// Calico's default conflist entry (install_linux.go), with our embedded datastore.
const CALICO_CONF: &str = r#"{
  "cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico",
  "log_level": "info", "datastore_type": "embedded", "nodename": "node1", "mtu": 0,
  "ipam": {"type": "calico-ipam", "assign_ipv6": "true", "ipv4_pools": ["10.244.0.0/16"]},
  "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
  "container_settings": {"allow_ip_forwarding": true},
  "some_future_field": {"x": 1}
}"#;

#[test]
fn parses_calico_fields_and_tolerates_unknown_ones() {
    let c = NetConf::parse(CALICO_CONF.as_bytes()).unwrap();
    assert_eq!(c.name, "k8s-pod-network");
    assert_eq!(c.plugin_type, "calico");
    assert_eq!(c.ipam.ipam_type, "calico-ipam");
    assert_eq!(c.ipam.ipv4_pools, vec!["10.244.0.0/16"]);
    assert_eq!(c.ipam.counts(), (1, 1));
    assert!(c.container_settings.allow_ip_forwarding);
    assert_eq!(c.kubernetes.kubeconfig, "/etc/cni/net.d/calico-kubeconfig");
    assert_eq!(c.raw["some_future_field"]["x"], 1);
    c.validate().unwrap();
}

#[test]
fn assign_flags_follow_calico_string_compare() {
    let cases = [
        (None, None, (1, 0)),
        (Some("false"), None, (0, 0)),
        (Some("true"), Some("true"), (1, 1)),
        (Some("False"), Some("TRUE"), (1, 0)), // Calico compares exactly
        (Some("false"), Some("true"), (0, 1)),
    ];
    for (v4, v6, want) in cases {
        let ipam = IpamConf {
            assign_ipv4: v4.map(String::from),
            assign_ipv6: v6.map(String::from),
            ..Default::default()
        };
        assert_eq!(ipam.counts(), want, "{v4:?} {v6:?}");
    }
}

#[test]
fn bad_json_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"name":"n","mtu":"1500"}"#, "field mtu:"),
        (
            r#"{"name":"n","ipam":{"assign_ipv4":true}}"#,
            "field ipam.assign_ipv4:",
        ),
        (
            r#"{"name":"n","ipam":{"ipv4_pools":"10.0.0.0/8"}}"#,
            "field ipam.ipv4_pools:",
        ),
        (
            r#"{"name":"n","nodename_file_optional":"yes"}"#,
            "field nodename_file_optional:",
        ),
        (
            r#"{"name":"n","cni.dev/valid-attachments":[{"ifname":"eth0"}]}"#,
            "field cni.dev/valid-attachments[0]:",
        ),
    ];
    for (text, want) in cases {
        let e = NetConf::parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE, "{text}");
        assert!(e.msg.contains(want), "{text}: {e}");
    }
    let e = NetConf::parse(b"{").unwrap_err();
    assert!(e.msg.starts_with("failed to load netconf"), "{e}");
    assert!(NetConf::parse(b"[]").is_err());
}

#[test]
fn validation_table() {
    // (config, expected code, message fragment)
    let cases: &[(&str, ErrorCode, &str)] = &[
        (r#"{}"#, ErrorCode::INVALID_NETCONF, "missing network name"),
        (
            r#"{"name":"a b"}"#,
            ErrorCode::INVALID_NETCONF,
            "invalid characters",
        ),
        (
            r#"{"name":"n","mtu":-1}"#,
            ErrorCode::INVALID_NETCONF,
            "mtu -1 is out of range",
        ),
        (
            r#"{"name":"n","device_type":"netkit"}"#,
            ErrorCode::UNSUPPORTED_FIELD,
            "device_type: \"netkit\"",
        ),
        (
            r#"{"name":"n","device_type":"bogus"}"#,
            ErrorCode::INVALID_NETCONF,
            "unknown device_type",
        ),
        (
            r#"{"name":"n","policy":{"type":"k8s"}}"#,
            ErrorCode::UNSUPPORTED_FIELD,
            "policy.type: \"k8s\"",
        ),
        (
            r#"{"name":"n","ipam":{"type":"host-local","subnet":"usePodCidr"}}"#,
            ErrorCode::UNSUPPORTED_FIELD,
            "ipam.subnet",
        ),
        (
            r#"{"name":"n","policy_setup_timeout_seconds":-3}"#,
            ErrorCode::INVALID_NETCONF,
            "invalid pod startup delay",
        ),
        (
            r#"{"name":"n","readiness_gates":["http://127.0.0.1:9099/readiness"]}"#,
            ErrorCode::UNSUPPORTED_FIELD,
            "readiness_gates",
        ),
    ];
    for (text, code, frag) in cases {
        let e = NetConf::parse(text.as_bytes())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.code, *code, "{text}");
        assert!(e.msg.contains(frag), "{text}: {e}");
    }
    for ok in [
        r#"{"name":"net_1.a-b"}"#,
        r#"{"name":"n","device_type":"veth"}"#,
    ] {
        NetConf::parse(ok.as_bytes()).unwrap().validate().unwrap();
    }
}

#[test]
fn result_version_defaults_to_0_2_0() {
    assert_eq!(
        NetConf::parse(br#"{"name":"n"}"#).unwrap().result_version(),
        "0.2.0"
    );
    assert_eq!(
        NetConf::parse(br#"{"name":"n","cniVersion":"0.4.0"}"#)
            .unwrap()
            .result_version(),
        "0.4.0"
    );
}

#[test]
fn nodename_resolution_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodename");
    std::fs::write(&file, "node-from-file\n").unwrap();
    let missing = dir.path().join("absent");
    let host = || Ok("HostName".to_string());

    let conf = |extra: &str, f: &std::path::Path| {
        NetConf::parse(
            format!(r#"{{"name":"n","nodename_file":{:?}{extra}}}"#, f.display()).as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(
        conf(r#","nodename":"cfg""#, &file).nodename(host).unwrap(),
        "cfg"
    );
    assert_eq!(conf("", &file).nodename(host).unwrap(), "node-from-file");
    assert_eq!(
        conf(r#","hostname":"legacy""#, &missing)
            .nodename(host)
            .unwrap(),
        "legacy"
    );
    assert_eq!(conf("", &missing).nodename(host).unwrap(), "hostname");
    assert!(
        conf("", &missing)
            .nodename(|| Err(std::io::Error::other("no uts")))
            .unwrap_err()
            .msg
            .contains("no uts")
    );

    // The file is required unless optional.
    conf("", &file).require_nodename_file().unwrap();
    let e = conf("", &missing).require_nodename_file().unwrap_err();
    assert!(
        e.msg
            .contains("check that the calico/node container is running"),
        "{e}"
    );
    conf(r#","nodename_file_optional":true"#, &missing)
        .require_nodename_file()
        .unwrap();
}

#[test]
fn mtu_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let with_file = HostPaths {
        mtu_file: dir.path().join("mtu"),
    };
    let without = HostPaths {
        mtu_file: dir.path().join("absent"),
    };
    std::fs::write(&with_file.mtu_file, "1450\n").unwrap();
    let c = |t: &str| NetConf::parse(t.as_bytes()).unwrap();
    assert_eq!(
        c(r#"{"name":"n"}"#).effective_mtu(&with_file).unwrap(),
        1450
    );
    assert_eq!(
        c(r#"{"name":"n","mtu":9000}"#)
            .effective_mtu(&with_file)
            .unwrap(),
        9000
    );
    assert_eq!(c(r#"{"name":"n"}"#).effective_mtu(&without).unwrap(), 1500);
    let e = c(r#"{"name":"n","require_mtu_file":true}"#)
        .effective_mtu(&without)
        .unwrap_err();
    assert!(e.msg.contains("failed to read MTU file"), "{e}");
    std::fs::write(&with_file.mtu_file, "big").unwrap();
    assert!(
        c(r#"{"name":"n","mtu":1400}"#)
            .effective_mtu(&with_file)
            .is_err()
    );
}

#[test]
fn agent_socket_resolution() {
    let c = NetConf::parse(br#"{"name":"n"}"#).unwrap();
    assert_eq!(
        c.agent_socket(|_| None),
        PathBuf::from(DEFAULT_AGENT_SOCKET)
    );
    assert_eq!(
        c.agent_socket(|k| (k == ENV_AGENT_SOCKET).then(|| "/tmp/x.sock".to_string())),
        PathBuf::from("/tmp/x.sock")
    );
    let c = NetConf::parse(br#"{"name":"n","ipam":{"agent_socket":"/run/a.sock"}}"#).unwrap();
    assert_eq!(
        c.agent_socket(|_| Some("/tmp/x.sock".into())),
        PathBuf::from("/run/a.sock")
    );
}

#[test]
fn datastore_config_overrides_environment() {
    let c =
        NetConf::parse(br#"{"name":"n","datastore_type":"embedded","datastore_path":"/tmp/c.db"}"#)
            .unwrap();
    let api = c
        .api_config(|k| (k == "DATASTORE_TYPE").then(|| "etcdv3".to_string()))
        .unwrap();
    assert_eq!(api.datastore_type, DatastoreType::Embedded);
    assert_eq!(api.embedded_path(), PathBuf::from("/tmp/c.db"));

    // Nothing configured: the environment decides; nothing there either: embedded at the default.
    let c = NetConf::parse(br#"{"name":"n"}"#).unwrap();
    let api = c.api_config(|_| None).unwrap();
    assert_eq!(api.datastore_type, DatastoreType::Embedded);
    assert_eq!(
        api.embedded_path(),
        PathBuf::from("/var/lib/calico/calico.db")
    );
    let api = c
        .api_config(|k| (k == "ETCD_ENDPOINTS").then(|| "http://127.0.0.1:2379".to_string()))
        .unwrap();
    assert_eq!(api.datastore_type, DatastoreType::EtcdV3);

    let c = NetConf::parse(br#"{"name":"n","datastore_type":"zookeeper"}"#).unwrap();
    assert_eq!(
        c.api_config(|_| None).unwrap_err().code,
        ErrorCode::INVALID_NETCONF
    );
}

#[test]
fn prev_result_and_gc_attachments() {
    let c = NetConf::parse(
        br#"{"name":"n","cniVersion":"1.1.0",
             "prevResult":{"ips":[{"address":"10.0.0.5/32","interface":1}]},
             "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
    )
    .unwrap();
    let prev = c.prev_result().unwrap().unwrap();
    assert_eq!(prev.ips[0].interface, Some(1));
    assert_eq!(
        c.valid_attachments.unwrap(),
        vec![GcAttachment {
            container_id: "c1".into(),
            ifname: "eth0".into()
        }]
    );
    assert_eq!(
        NetConf::parse(br#"{"name":"n"}"#)
            .unwrap()
            .prev_result()
            .unwrap(),
        None
    );
}
