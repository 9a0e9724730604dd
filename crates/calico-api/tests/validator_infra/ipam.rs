//! IPPool, IPReservation and IPAMConfiguration cases.

use super::{Case, Invalid, Valid, run_case, run_table};

// Values from validator_test.go: netv4_3 = 1.2.3.0/26, netv4_4 = 1.0.0.0/10,
// netv4_5 = 1.2.3.0/27, netv6_1 = aabb:aabb::ffff/128.
pub const CASES: &[Case] = &[
    // (API) Labels and Annotations, on IPPool metadata.
    (
        "should accept valid labels in metadata",
        "IPPool",
        "metadata: {name: pool.name, labels: {projectcalico.org/label: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}}\nspec: {cidr: 1.2.3.0/26}",
        Valid,
    ),
    (
        "should reject an excessively long value in labels in metadata",
        "IPPool",
        "metadata: {name: pool.name, labels: {projectcalico.org/label: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}}\nspec: {cidr: 1.2.3.0/26}",
        Invalid("metadata.labels"),
    ),
    (
        "should reject invalid labels in metadata (uppercase domain)",
        "IPPool",
        "metadata: {name: pool.name, labels: {ProjectCalico.org/label: value}}\nspec: {cidr: 1.2.3.0/26}",
        Invalid("metadata.labels"),
    ),
    (
        "should accept valid labels in metadata (uppercase name)",
        "IPPool",
        "metadata: {name: pool.name, labels: {projectcalico.org/Label: value}}\nspec: {cidr: 1.2.3.0/26}",
        Valid,
    ),
    (
        "should reject invalid annotations in metadata",
        "IPPool",
        "metadata: {name: pool.name, annotations: {projectcalico.org$label: value}}\nspec: {cidr: 1.2.3.0/26}",
        Invalid("metadata.annotations"),
    ),
    (
        "should accept valid annotations in metadata (uppercase domain and name)",
        "IPPool",
        "metadata: {name: pool.name, annotations: {ProjectCalico.org/Label: value}}\nspec: {cidr: 1.2.3.0/26}",
        Valid,
    ),
    (
        "should allow a valid nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/26, nodeSelector: 'foo == \"bar\"'}",
        Valid,
    ),
    (
        "should disallow a invalid nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/26, nodeSelector: this is not valid selector syntax}",
        Invalid("spec.nodeSelector"),
    ),
    // (API) IPPool
    (
        "should accept IP pool with IPv4 CIDR /26",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/26}",
        Valid,
    ),
    (
        "should accept IP pool with IPv4 CIDR /10",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10}",
        Valid,
    ),
    (
        "should accept IP pool with IPv6 CIDR /122",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aabb:aabb::/122', ipipMode: Never, vxlanMode: Never}",
        Valid,
    ),
    (
        "should accept IP pool with IPv6 CIDR /10",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aa00::/10', ipipMode: Never, vxlanMode: Never}",
        Valid,
    ),
    (
        "should accept a disabled IP pool with IPv4 CIDR /27",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/27, disabled: true}",
        Valid,
    ),
    (
        "should accept a disabled IP pool with IPv6 CIDR /128",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aabb:aabb::ffff/128', ipipMode: Never, vxlanMode: Never, disabled: true}",
        Valid,
    ),
    (
        "should reject IP pool with IPv4 CIDR /27",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/27}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IP pool with IPv6 CIDR /128",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aabb:aabb::ffff/128'}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IP pool with IPv4 CIDR /33",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.4/33}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IP pool with IPv6 CIDR /129",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aa:bb::/129'}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IPIPMode 'Always' for IPv6 pool",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aabb:aabb::ffff/128', ipipMode: Always, vxlanMode: Never}",
        Invalid("spec.ipipMode"),
    ),
    (
        "should reject VXLANMode 'Always' for IPv6 pool (/128 is smaller than a block)",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'aabb:aabb::ffff/128', vxlanMode: Always, ipipMode: Never}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IPv4 pool with a CIDR range overlapping with Link Local range",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 169.254.5.0/24}",
        Invalid("spec.cidr"),
    ),
    (
        "should reject IPv6 pool with a CIDR range overlapping with Link Local range",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 'fe80::/120'}",
        Invalid("spec.cidr"),
    ),
    (
        "should accept IP pool with valid allowed uses",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Workload, Tunnel]}",
        Valid,
    ),
    (
        "should reject IP pool with invalid allowed uses combination",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [LoadBalancer, Tunnel]}",
        Invalid("spec.allowedUses"),
    ),
    (
        "should reject IP pool with invalid allowed uses",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Garbage]}",
        Invalid("spec.allowedUses[0]"),
    ),
    (
        "should accept IP pool with valid AssignmentMode",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, assignmentMode: Automatic}",
        Valid,
    ),
    (
        "should reject IP pool with empty assignment mode",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, assignmentMode: ''}",
        Invalid("spec.assignmentMode"),
    ),
    (
        "should reject IP pool with LoadBlancer and disableBGPExport true",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [LoadBalancer], disableBGPExport: true}",
        Invalid("spec.disableBGPExport"),
    ),
    (
        "should reject IP pool with LoadBlancer and VXLAN mode enabled",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [LoadBalancer], vxlanMode: Always}",
        Invalid("spec.allowedUses"),
    ),
    (
        "should reject IP pool with LoadBlancer and IPIP mode enabled",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [LoadBalancer], ipipMode: Always}",
        Invalid("spec.allowedUses"),
    ),
    (
        "should reject IP pool with LoadBlancer and nodeSelector other than all()",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [LoadBalancer], nodeSelector: '!all()'}",
        Invalid("spec.nodeSelector"),
    ),
    (
        "should reject IP pool with Tunnel allowedUse and namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Tunnel], namespaceSelector: 'region == \"east\"'}",
        Invalid("spec.namespaceSelector"),
    ),
    (
        "should reject IP pool with Tunnel and Workload allowedUses and namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Workload, Tunnel], namespaceSelector: 'region == \"east\"'}",
        Invalid("spec.namespaceSelector"),
    ),
    (
        "should accept IP pool with Tunnel allowedUse and no namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Tunnel]}",
        Valid,
    ),
    (
        "should reject IP pool with invalid nodeSelector (global)",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: global()}",
        Invalid("spec.nodeSelector"),
    ),
    (
        "should accept IP pool with valid nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: 'region == \"east\"'}",
        Valid,
    ),
    (
        "should accept IP pool with complex nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: 'region == \"east\" && environment == \"production\"'}",
        Valid,
    ),
    (
        "should accept IP pool with set-based nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: 'region in {\"east\", \"west\"}'}",
        Valid,
    ),
    (
        "should accept IP pool with existence check nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: has(team)}",
        Valid,
    ),
    (
        "should accept IP pool with all() nodeSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, nodeSelector: all()}",
        Valid,
    ),
    (
        "should reject IP pool with invalid namespaceSelector (global)",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, namespaceSelector: global()}",
        Invalid("spec.namespaceSelector"),
    ),
    (
        "should accept IP pool with valid namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Workload], namespaceSelector: 'region == \"east\"'}",
        Valid,
    ),
    (
        "should accept IP pool with complex namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Workload], namespaceSelector: 'team == \"backend\" || team == \"frontend\"'}",
        Valid,
    ),
    (
        "should accept IP pool with substring namespaceSelector",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.0.0.0/10, allowedUses: [Workload], namespaceSelector: 'environment contains \"prod\"'}",
        Valid,
    ),
    // (API) IPIPMode
    (
        "should accept IPPool with no IPIP mode specified",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/24}",
        Valid,
    ),
    (
        "should accept IPIP mode Never (api)",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: Never, vxlanMode: Never}",
        Valid,
    ),
    (
        "should accept IPIP mode Never",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: Never}",
        Valid,
    ),
    (
        "should accept IPIP mode Always",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: Always}",
        Valid,
    ),
    (
        "should accept IPIP mode CrossSubnet",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: CrossSubnet}",
        Valid,
    ),
    (
        "should reject IPIP mode badVal",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: badVal}",
        Invalid("spec.ipipMode"),
    ),
    (
        "should reject IPIP mode never (lower case)",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, ipipMode: never}",
        Invalid("spec.ipipMode"),
    ),
    // (API) VXLANMode
    (
        "should reject IPIP mode and VXLAN mode",
        "IPPool",
        "metadata: {name: pool.name}\nspec: {cidr: 1.2.3.0/24, ipipMode: Always, vxlanMode: Always}",
        Invalid("spec.vxlanMode"),
    ),
    (
        "should accept VXLAN mode Always",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, vxlanMode: Always}",
        Valid,
    ),
    (
        "should accept VXLAN mode CrossSubnet",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, vxlanMode: CrossSubnet}",
        Valid,
    ),
    (
        "should accept VXLAN mode Never",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, vxlanMode: Never}",
        Valid,
    ),
    (
        "should reject VXLAN mode never",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, vxlanMode: never}",
        Invalid("spec.vxlanMode"),
    ),
    (
        "should reject VXLAN mode badVal",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 1.2.3.0/24, vxlanMode: badVal}",
        Invalid("spec.vxlanMode"),
    ),
    // crd_validation_test.go TestCRDValidation_IPPool
    (
        "valid ipipMode passes",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, ipipMode: Always}",
        Valid,
    ),
    (
        "invalid ipipMode fails enum",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, ipipMode: BadMode}",
        Invalid("spec.ipipMode"),
    ),
    (
        "invalid vxlanMode fails enum",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, vxlanMode: BadMode}",
        Invalid("spec.vxlanMode"),
    ),
    // Further IPPool rules (CEL markers and clientv3/ippool.go).
    (
        "rejects a pool without a CIDR",
        "IPPool",
        "metadata: {name: p}\nspec: {natOutgoing: true}",
        Invalid("spec.cidr"),
    ),
    (
        "rejects a bare IP as pool CIDR (clientv3 uses net.ParseCIDR)",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0}",
        Invalid("spec.cidr"),
    ),
    (
        "rejects a pool CIDR that is not strictly masked",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.1/16}",
        Invalid("spec.cidr"),
    ),
    (
        "rejects a pool containing 169.254.0.0",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 169.0.0.0/8}",
        Invalid("spec.cidr"),
    ),
    (
        "rejects a pool containing fe80::",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 'fe00::/8'}",
        Invalid("spec.cidr"),
    ),
    (
        "rejects an IPv4 block size below 20",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 19}",
        Invalid("spec.blockSize"),
    ),
    (
        "accepts an IPv4 block size of 20",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 20}",
        Valid,
    ),
    (
        "accepts an IPv4 block size of 32",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 32}",
        Valid,
    ),
    (
        "rejects an IPv4 block size of 33",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 33}",
        Invalid("spec.blockSize"),
    ),
    (
        "rejects an IPv6 block size of 115",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 'fd00::/48', blockSize: 115}",
        Invalid("spec.blockSize"),
    ),
    (
        "accepts an IPv6 block size of 116",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 'fd00::/48', blockSize: 116}",
        Valid,
    ),
    (
        "rejects a block size over 128",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 'fd00::/48', blockSize: 129}",
        Invalid("spec.blockSize"),
    ),
    (
        "rejects a negative block size",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: -1}",
        Invalid("spec.blockSize"),
    ),
    (
        "rejects a pool smaller than its explicit block size",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/25, blockSize: 24}",
        Invalid("spec.cidr"),
    ),
    (
        "accepts a pool exactly one block big",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/24, blockSize: 24}",
        Valid,
    ),
    (
        "accepts a LoadBalancer pool",
        "IPPool",
        "metadata: {name: lb}\nspec: {cidr: 10.10.0.0/16, allowedUses: [LoadBalancer]}",
        Valid,
    ),
    (
        "rejects duplicate allowed uses",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: [Workload, Workload]}",
        Invalid("spec.allowedUses[1]"),
    ),
    (
        "rejects assignment mode manual (lower case)",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/16, assignmentMode: manual}",
        Invalid("spec.assignmentMode"),
    ),
    (
        "accepts assignment mode Manual",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/16, assignmentMode: Manual}",
        Valid,
    ),
    (
        "accepts an empty ipipMode (defaulted to Never)",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMode: ''}",
        Valid,
    ),
    (
        "rejects an unknown spec field",
        "IPPool",
        "metadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipip: {enabled: true}}",
        Invalid("spec"),
    ),
    (
        "rejects a bad pool name",
        "IPPool",
        "metadata: {name: Bad_Name}\nspec: {cidr: 10.0.0.0/16}",
        Invalid("metadata.name"),
    ),
    // (API) IPReservation
    (
        "should accept IPReservation with an IP",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [10.0.0.1]}",
        Valid,
    ),
    (
        "should accept IPReservation with a CIDR",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [10.0.1.0/24]}",
        Valid,
    ),
    (
        "should accept IPReservation IP and a CIDR",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [10.0.1.0/24, 192.168.0.34]}",
        Valid,
    ),
    (
        "should reject IPReservation with bad CIDR",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [garbage]}",
        Invalid("spec.reservedCIDRs[0]"),
    ),
    (
        "should reject IPReservation with too-long CIDR",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [10.0.1.0/33]}",
        Invalid("spec.reservedCIDRs[0]"),
    ),
    (
        "should accept IPReservation with an IPv6",
        "IPReservation",
        "metadata: {name: ip-reservation.name}\nspec: {reservedCIDRs: [10.0.0.1, 'cafe::1', 'cafe:f00d::/96']}",
        Valid,
    ),
    (
        "accepts an unmasked reservation CIDR (cidrs, not net)",
        "IPReservation",
        "metadata: {name: r}\nspec: {reservedCIDRs: [10.0.1.7/24]}",
        Valid,
    ),
    (
        "rejects a duplicate reservation",
        "IPReservation",
        "metadata: {name: r}\nspec: {reservedCIDRs: [10.0.1.0/24, 10.0.1.0/24]}",
        Invalid("spec.reservedCIDRs[1]"),
    ),
    // IPAMConfiguration (CRD schema bounds and clientv3 naming rule).
    (
        "accepts the default IPAM configuration",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {strictAffinity: false, autoAllocateBlocks: true}",
        Valid,
    ),
    (
        "accepts maxBlocksPerHost with strict affinity",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {strictAffinity: true, maxBlocksPerHost: 1000000, autoAllocateBlocks: true}",
        Valid,
    ),
    (
        "rejects maxBlocksPerHost over 1000000",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {strictAffinity: true, maxBlocksPerHost: 1000001, autoAllocateBlocks: true}",
        Invalid("spec.maxBlocksPerHost"),
    ),
    (
        "rejects negative maxBlocksPerHost",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {maxBlocksPerHost: -1, autoAllocateBlocks: true}",
        Invalid("spec.maxBlocksPerHost"),
    ),
    (
        "accepts ipCooldownSeconds 1200",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {autoAllocateBlocks: true, ipCooldownSeconds: 1200}",
        Valid,
    ),
    (
        "rejects ipCooldownSeconds 1201",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {autoAllocateBlocks: true, ipCooldownSeconds: 1201}",
        Invalid("spec.ipCooldownSeconds"),
    ),
    (
        "accepts kubeVirtVMAddressPersistence Disabled",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {autoAllocateBlocks: true, kubeVirtVMAddressPersistence: Disabled}",
        Valid,
    ),
    (
        "rejects kubeVirtVMAddressPersistence disabled (lower case)",
        "IPAMConfiguration",
        "metadata: {name: default}\nspec: {autoAllocateBlocks: true, kubeVirtVMAddressPersistence: disabled}",
        Invalid("spec.kubeVirtVMAddressPersistence"),
    ),
    (
        "rejects an IPAM configuration not named default",
        "IPAMConfiguration",
        "metadata: {name: other}\nspec: {autoAllocateBlocks: true}",
        Invalid("metadata.name"),
    ),
    // crd_validation_test.go TestCRDValidation_IPPool_CrossField
    (
        "IPIP and VXLAN both enabled fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, ipipMode: Always, vxlanMode: Always}",
        Invalid("spec.vxlanMode"),
    ),
    (
        "LoadBalancer use with IPIP enabled fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, ipipMode: Always, allowedUses: [LoadBalancer]}",
        Invalid("spec.allowedUses"),
    ),
    (
        "LoadBalancer combined with Workload use fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, allowedUses: [LoadBalancer, Workload]}",
        Invalid("spec.allowedUses"),
    ),
    (
        "IPv6 CIDR with IPIP mode fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 'fd00::/120', ipipMode: Always}",
        Invalid("spec.ipipMode"),
    ),
    (
        "valid IPv4 with IPIP passes",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, ipipMode: Always}",
        Valid,
    ),
    (
        "LB pool with disableBGPExport fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, allowedUses: [LoadBalancer], disableBGPExport: true, nodeSelector: all()}",
        Invalid("spec.disableBGPExport"),
    ),
    (
        "LB pool with wrong nodeSelector fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, allowedUses: [LoadBalancer], nodeSelector: has(node-role)}",
        Invalid("spec.nodeSelector"),
    ),
    (
        "LB pool with correct config passes",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, allowedUses: [LoadBalancer], nodeSelector: all()}",
        Valid,
    ),
    (
        "Tunnel pool with namespaceSelector fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, allowedUses: [Tunnel], namespaceSelector: has(ns-label)}",
        Invalid("spec.namespaceSelector"),
    ),
    (
        "nodeSelector with global() fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, nodeSelector: global()}",
        Invalid("spec.nodeSelector"),
    ),
    (
        "namespaceSelector with global() fails",
        "IPPool",
        "metadata: {name: test-pool}\nspec: {cidr: 10.0.0.0/24, namespaceSelector: global()}",
        Invalid("spec.namespaceSelector"),
    ),
];

#[test]
fn ipam_table() {
    run_table("ipam", CASES);
}

/// Entries whose values are too large to write inline.
#[test]
fn generated_metadata_cases() {
    let limit = 256 * 1024;
    let pool = |meta: String| format!("metadata: {meta}\nspec: {{cidr: 1.2.3.0/26}}");
    let cases: Vec<(String, String, bool)> = vec![
        (
            "should allow annotations in metadata <= 256k".into(),
            pool(format!(
                "{{name: pool.name, annotations: {{key: {}}}}}",
                "x".repeat(limit - 3)
            )),
            true,
        ),
        (
            "should disallow annotations in metadata > 256k".into(),
            pool(format!(
                "{{name: pool.name, annotations: {{key: {}}}}}",
                "x".repeat(limit - 2)
            )),
            false,
        ),
        (
            "should allow a name of 253 chars".into(),
            pool(format!("{{name: {}}}", "x".repeat(253))),
            true,
        ),
        (
            "should disallow a name of 254 chars".into(),
            pool(format!("{{name: {}}}", "x".repeat(254))),
            false,
        ),
    ];
    for (desc, body, valid) in cases {
        let desc: &'static str = Box::leak(desc.into_boxed_str());
        let body: &'static str = Box::leak(body.into_boxed_str());
        let expect = if valid { Valid } else { Invalid("metadata") };
        run_case(&(desc, "IPPool", body, expect)).unwrap();
    }
}
