//! The lab's own etcd for `--datastore etcd`: a single-member etcd v3 daemon inside the fabric
//! namespace, listening on the bridge address `192.168.20.2:2379` (what every node reaches over
//! its `eth0`, as nodes reach a cluster's etcd over the data-centre network) and on the fabric's
//! loopback. Its data and log live in the state directory; it is started and stopped like the
//! agents (own session, PID recorded, verified through /proc before any signal).

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_netlink::NetNs;

use crate::error::{LabError, io};
use crate::state::Layout;
use crate::{agent, sys};

/// The etcd address on the fabric bridge.
pub const ADDRESS: &str = "192.168.20.2";
/// The client URL nodes use.
pub const ENDPOINT: &str = "http://192.168.20.2:2379";

/// Starts etcd in the fabric namespace and waits until `/health` answers.
pub fn start(layout: &Layout) -> Result<u32, LabError> {
    let etcd = sys::which("etcd")?;
    let fabric = layout.fabric_netns();
    sys::ip_in(
        &fabric,
        &["addr", "add", &format!("{ADDRESS}/24"), "dev", "br0"],
    )?;
    let dir = layout.etcd_dir();
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let log = File::create(dir.join("etcd.log")).map_err(io("creating the etcd log"))?;
    let log2 = log.try_clone().map_err(io("cloning the etcd log"))?;
    let mut cmd = Command::new(sys::which("setsid")?);
    cmd.arg(&etcd)
        .arg("--name")
        .arg("lab")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &format!("{ENDPOINT},http://127.0.0.1:2379"),
            "--advertise-client-urls",
            ENDPOINT,
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            "lab=http://127.0.0.1:2380",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CALICO_LAB_DIR", &layout.dir)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let ns = NetNs::open(sys::netns_path(&fabric))
        .map_err(|e| LabError::Failed(format!("opening namespace {fabric}: {e}")))?;
    let mut child = ns
        .run(move || cmd.spawn())
        .map_err(|e| LabError::Failed(format!("entering {fabric}: {e}")))?
        .map_err(io("starting etcd"))?;
    let pid = child.id();
    std::fs::write(layout.etcd_pid(), format!("{pid}\n")).map_err(io("recording etcd's PID"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(agent::http_get(&fabric, 2379, "/health"), Ok(200)) {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default();
            return Err(LabError::Failed(format!("etcd exited ({status}):\n{log}")));
        }
        if Instant::now() > deadline {
            return Err(LabError::Failed(format!(
                "etcd not healthy after 30 s; see {}",
                dir.join("etcd.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child);
    Ok(pid)
}

/// Stops the lab's etcd if it runs (found by its PID file or, after a crash, by its marker).
pub fn stop(layout: &Layout) -> Result<Vec<u32>, LabError> {
    let Ok(etcd) = sys::which("etcd") else {
        return Ok(Vec::new());
    };
    let mut pids: Vec<u32> = sys::read_pid(&layout.etcd_pid()).into_iter().collect();
    pids.extend(sys::our_processes(&etcd, &layout.dir));
    pids.sort_unstable();
    pids.dedup();
    let mut stopped = Vec::new();
    for pid in pids {
        if sys::is_our_process(pid, &etcd, &layout.dir) {
            sys::stop_process(pid, &etcd, &layout.dir, Duration::from_secs(10))?;
            stopped.push(pid);
        }
    }
    Ok(stopped)
}
