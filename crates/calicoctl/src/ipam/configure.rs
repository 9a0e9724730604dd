//! `calicoctl ipam configure` (`commands/ipam/configure.go` + `ipam.SetIPAMConfig`): updates
//! the fields given on the command line and keeps the rest of the stored record (including
//! fields this build does not model, such as KubeVirt address persistence).

use anyhow::{anyhow, bail};
use calico_ipam::model::{self, IpamConfigRecord};

use super::show::load_config_record;
use super::{ConfigureArgs, Ctx};

/// The flags of one `configure` call, parsed (`nil` = not given).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub strict_affinity: Option<bool>,
    pub max_blocks: Option<i64>,
    pub persistence: Option<String>,
    pub ip_cooldown_seconds: Option<i64>,
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `ConfigureIPAM`'s flag parsing, with calicoctl's messages.
pub fn parse_changes(a: &ConfigureArgs) -> anyhow::Result<Changes> {
    let mut c = Changes::default();
    if !a.strictaffinity.is_empty() {
        c.strict_affinity =
            Some(parse_go_bool(&a.strictaffinity).ok_or_else(|| {
                anyhow!("invalid value. Use true or false to set strictaffinity")
            })?);
    }
    if !a.max_blocks_per_host.is_empty() {
        c.max_blocks = Some(
            a.max_blocks_per_host
                .parse::<i64>()
                .map_err(|_| anyhow!("invalid value for maxblockhost. Use a valid number"))?,
        );
    }
    if !a.kubevirt_ip_persistence.is_empty() {
        match a.kubevirt_ip_persistence.as_str() {
            "Enabled" | "Disabled" => c.persistence = Some(a.kubevirt_ip_persistence.clone()),
            _ => bail!("invalid value for --kubevirt-ip-persistence. Use Enabled or Disabled"),
        }
    }
    if a.ip_cooldown_seconds >= 0 {
        c.ip_cooldown_seconds = Some(a.ip_cooldown_seconds);
    }
    if c == Changes::default() {
        bail!("at least one configuration option must be specified");
    }
    Ok(c)
}

/// Applies `c` to `current` with `SetIPAMConfig`'s rules. `Ok(None)` when nothing changes.
pub fn apply_changes(
    current: &IpamConfigRecord,
    c: &Changes,
) -> Result<Option<IpamConfigRecord>, String> {
    let mut next = current.clone();
    if let Some(v) = c.strict_affinity {
        next.strict_affinity = v;
    }
    if let Some(v) = c.max_blocks {
        next.max_blocks_per_host = v;
    }
    if let Some(v) = &c.persistence {
        next.kube_virt_vm_address_persistence = Some(v.clone());
    }
    if let Some(v) = c.ip_cooldown_seconds {
        next.ip_cooldown_seconds = v;
    }
    if next == *current {
        return Ok(None);
    }
    if !next.strict_affinity && !next.auto_allocate_blocks {
        return Err(
            "Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time".into(),
        );
    }
    // MaxBlocksPerHost always takes effect before StrictAffinity, so Calico requires the
    // user to be explicit.
    if next.max_blocks_per_host > 0 && !next.strict_affinity {
        return Err("MaxBlocksPerHost requires StrictAffinity to be enabled".into());
    }
    Ok(Some(next))
}

pub async fn configure(ctx: &Ctx, a: &ConfigureArgs) -> anyhow::Result<()> {
    let changes = parse_changes(a)?;
    let (current, rev) = load_config_record(ctx)
        .await
        .map_err(|e| anyhow!("error: {e}"))?;
    match apply_changes(&current, &changes).map_err(|e| anyhow!("error: {e}"))? {
        None => {}
        Some(next) => {
            let ds = ctx.client.datastore();
            let value = model::encode(&next);
            // Written against the revision read, so a concurrent change is not overwritten.
            let res = match rev {
                Some(r) => ds.update(model::CONFIG_KEY, value, r, None).await,
                None => ds.create(model::CONFIG_KEY, value, None).await,
            };
            res.map_err(|e| anyhow!("error: {e}"))?;
        }
    }
    if let Some(v) = changes.strict_affinity {
        println!("Successfully set StrictAffinity to: {v}");
    }
    if let Some(v) = changes.max_blocks {
        println!("Successfully set MaxBlocksPerHost to: {v}");
    }
    if let Some(v) = &changes.persistence {
        println!("Successfully set KubeVirtVMAddressPersistence to: {v}");
    }
    if let Some(v) = changes.ip_cooldown_seconds {
        println!("Successfully set IPCooldownSeconds to: {v}");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(sa: &str, mb: &str) -> ConfigureArgs {
        ConfigureArgs {
            config: String::new(),
            strictaffinity: sa.into(),
            max_blocks_per_host: mb.into(),
            kubevirt_ip_persistence: String::new(),
            ip_cooldown_seconds: -1,
        }
    }

    fn defaults() -> IpamConfigRecord {
        IpamConfigRecord {
            auto_allocate_blocks: true,
            kube_virt_vm_address_persistence: Some("Enabled".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flag_parsing_messages() {
        let e = parse_changes(&args("", "")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at least one configuration option must be specified"
        );
        let e = parse_changes(&args("yes", "")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value. Use true or false to set strictaffinity"
        );
        let e = parse_changes(&args("", "x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for maxblockhost. Use a valid number"
        );
        let c = parse_changes(&args("T", "3")).unwrap();
        assert_eq!(c.strict_affinity, Some(true));
        assert_eq!(c.max_blocks, Some(3));
    }

    #[test]
    fn calico_rules() {
        let c = parse_changes(&args("", "4")).unwrap();
        assert_eq!(
            apply_changes(&defaults(), &c).unwrap_err(),
            "MaxBlocksPerHost requires StrictAffinity to be enabled"
        );
        let c = parse_changes(&args("true", "4")).unwrap();
        let next = apply_changes(&defaults(), &c).unwrap().unwrap();
        assert!(next.strict_affinity);
        assert_eq!(next.max_blocks_per_host, 4);
        assert_eq!(
            next.kube_virt_vm_address_persistence.as_deref(),
            Some("Enabled")
        );
        // Turning strict affinity off while a block limit is set is refused.
        let c = parse_changes(&args("false", "")).unwrap();
        assert!(apply_changes(&next, &c).is_err());
        let mut no_auto = defaults();
        no_auto.auto_allocate_blocks = false;
        no_auto.strict_affinity = true;
        assert_eq!(
            apply_changes(&no_auto, &c).unwrap_err(),
            "Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time"
        );
        // No change: nothing to write.
        let c = parse_changes(&args("false", "")).unwrap();
        assert_eq!(apply_changes(&defaults(), &c).unwrap(), None);
    }
}
