//! BGPFilter cases: validator_test.go, crd_validation_test.go and
//! api/pkg/apis/projectcalico/v3/bgpfilter_test.go (CEL rules and community patterns).

use super::{Case, Invalid, Valid, run_table};

macro_rules! filter {
    ($spec:literal) => {
        concat!("metadata: {name: test-filter}\nspec: ", $spec)
    };
}

pub const FILTER_CASES: &[Case] = &[
    (
        "should reject invalid BGPFilter rule-v4 interface - 1",
        "BGPFilter",
        filter!("{exportV4: [{interface: eth&, action: Reject}]}"),
        Invalid("spec.exportV4[0].interface"),
    ),
    (
        "should reject invalid BGPFilter rule-v4 interface - 2",
        "BGPFilter",
        filter!("{exportV4: [{interface: '%face', action: Reject}]}"),
        Invalid("spec.exportV4[0].interface"),
    ),
    (
        "should reject invalid BGPFilter rule-v4 interface - 3",
        "BGPFilter",
        filter!("{exportV4: [{interface: '\"ace', action: Reject}]}"),
        Invalid("spec.exportV4[0].interface"),
    ),
    (
        "should reject invalid BGPFilter rule-v6 interface - 1",
        "BGPFilter",
        filter!("{exportV6: [{interface: $cali, action: Reject}]}"),
        Invalid("spec.exportV6[0].interface"),
    ),
    (
        "should reject invalid BGPFilter rule-v6 interface - 2",
        "BGPFilter",
        filter!("{exportV6: [{interface: 'eth#', action: Reject}]}"),
        Invalid("spec.exportV6[0].interface"),
    ),
    (
        "should reject invalid BGPFilter rule-v6 interface - 3",
        "BGPFilter",
        filter!("{exportV6: [{interface: '\"face', action: Reject}]}"),
        Invalid("spec.exportV6[0].interface"),
    ),
    (
        "should accept valid BGPFilter rule-v4 interface - 1",
        "BGPFilter",
        filter!(
            "{exportV4: [{interface: ethx, source: RemotePeers, cidr: 192.168.0.0/26, matchOperator: In, action: Accept}]}"
        ),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v4 interface - 2",
        "BGPFilter",
        filter!(
            "{exportV4: [{interface: '*.calico', cidr: 192.168.0.0/26, matchOperator: In, action: Accept}]}"
        ),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v4 interface - 3",
        "BGPFilter",
        filter!("{exportV4: [{interface: 'eth*', source: RemotePeers, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v6 interface - 1",
        "BGPFilter",
        filter!(
            "{exportV6: [{interface: ethx, source: RemotePeers, cidr: 'ffee::/64', matchOperator: In, action: Accept}]}"
        ),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v6 interface - 2",
        "BGPFilter",
        filter!(
            "{exportV6: [{interface: '*.calico', cidr: 'ee2::dddd/128', matchOperator: In, action: Accept}]}"
        ),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v6 interface - 3",
        "BGPFilter",
        filter!("{exportV6: [{interface: '*.calico', source: RemotePeers, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter with only rule-v4 interface - 1",
        "BGPFilter",
        filter!("{exportV4: [{interface: ethx, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter with only rule-v4 interface - 2",
        "BGPFilter",
        filter!("{exportV4: [{interface: 'eth*', action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter with only rule-v6 interface - 1",
        "BGPFilter",
        filter!("{exportV6: [{interface: ethx., action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter with only rule-v6 interface - 2",
        "BGPFilter",
        filter!("{exportV6: [{interface: '*.calico', action: Accept}]}"),
        Valid,
    ),
    (
        "should reject invalid BGPFilter rule-v4 source",
        "BGPFilter",
        filter!("{exportV4: [{source: xyz, action: Reject}]}"),
        Invalid("spec.exportV4[0].source"),
    ),
    (
        "should reject invalid BGPFilter rule-v6 source",
        "BGPFilter",
        filter!("{exportV6: [{source: xyz, action: Reject}]}"),
        Invalid("spec.exportV6[0].source"),
    ),
    (
        "should accept valid BGPFilter rule-v4 source",
        "BGPFilter",
        filter!(
            "{importV4: [{source: RemotePeers, cidr: 192.168.0.0/26, matchOperator: In, action: Reject}]}"
        ),
        Valid,
    ),
    (
        "should accept valid BGPFilter rule-v6 source",
        "BGPFilter",
        filter!(
            "{importV6: [{source: RemotePeers, cidr: 'ffee::/64', matchOperator: In, action: Reject}]}"
        ),
        Valid,
    ),
    (
        "should accept BGPFilter rule with only source set - 1",
        "BGPFilter",
        filter!("{exportV4: [{source: RemotePeers, action: Reject}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with only source set - 2",
        "BGPFilter",
        filter!("{exportV6: [{source: RemotePeers, action: Reject}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with valid IPv4 CIDR",
        "BGPFilter",
        filter!("{importV4: [{cidr: 192.168.0.0/26, matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with valid IPv6 CIDR",
        "BGPFilter",
        filter!("{importV6: [{cidr: 'ffee::/64', matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "should reject BGPFilter rule with invalid IPv4 CIDR - 1",
        "BGPFilter",
        filter!("{importV4: [{cidr: x.x.x.x/26, matchOperator: In, action: Accept}]}"),
        Invalid("spec.importV4[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with invalid IPv4 CIDR - 2",
        "BGPFilter",
        filter!("{importV4: [{cidr: 'ffee::/64', matchOperator: In, action: Accept}]}"),
        Invalid("spec.importV4[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with invalid IPv6 CIDR - 1",
        "BGPFilter",
        filter!("{importV6: [{cidr: 'xxxx::/64', matchOperator: In, action: Accept}]}"),
        Invalid("spec.importV6[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with invalid IPv6 CIDR - 2",
        "BGPFilter",
        filter!("{importV6: [{cidr: 10.0.10.0/32, matchOperator: In, action: Accept}]}"),
        Invalid("spec.importV6[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with invalid operator - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: fancyOperator, action: Accept}]}"),
        Invalid("spec.exportV4[0].matchOperator"),
    ),
    (
        "should reject BGPFilter rule with invalid operator - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: fancyOperator, action: Accept}]}"),
        Invalid("spec.exportV6[0].matchOperator"),
    ),
    (
        "should accept BGPFilter rule with In operator - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with In operator - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with NotIn operator - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: NotIn, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with NotIn operator - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: NotIn, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with Equal operator - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: Equal, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with Equal operator - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: Equal, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with NotEqual operator - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: NotEqual, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with NotEqual operator - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: NotEqual, action: Accept}]}"),
        Valid,
    ),
    (
        "should reject BGPFilter rule with no CIDR when MatchOperator is set - 1",
        "BGPFilter",
        filter!("{exportV4: [{matchOperator: NotEqual, action: Reject}]}"),
        Invalid("spec.exportV4[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with no CIDR when MatchOperator is set - 2",
        "BGPFilter",
        filter!("{exportV6: [{matchOperator: NotEqual, action: Reject}]}"),
        Invalid("spec.exportV6[0].cidr"),
    ),
    (
        "should reject BGPFilter rule with no MatchOperator when CIDR is set - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, action: Reject}]}"),
        Invalid("spec.exportV4[0].matchOperator"),
    ),
    (
        "should reject BGPFilter rule with no MatchOperator when CIDR is set - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', action: Reject}]}"),
        Invalid("spec.exportV6[0].matchOperator"),
    ),
    (
        "should reject BGPFilter rule with invalid Action - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: NotEqual, action: ActionX}]}"),
        Invalid("spec.exportV4[0].action"),
    ),
    (
        "should reject BGPFilter rule with invalid action - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: NotEqual, action: ActionX}]}"),
        Invalid("spec.exportV6[0].action"),
    ),
    (
        "should accept BGPFilter rule with Accept action - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: NotEqual, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with Accept action - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: NotEqual, action: Accept}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with Reject action - 1",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.10.0/32, matchOperator: NotEqual, action: Reject}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with Reject action - 2",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'ffff::/128', matchOperator: NotEqual, action: Reject}]}"),
        Valid,
    ),
    (
        "should reject BGPFilter rule with no action - 1",
        "BGPFilter",
        filter!("{exportV4: [{matchOperator: NotEqual, cidr: 10.0.10.0/32}]}"),
        Invalid("spec.exportV4[0].action"),
    ),
    (
        "should reject BGPFilter rule with no action - 2",
        "BGPFilter",
        filter!("{exportV6: [{matchOperator: NotEqual, cidr: 'ffff::/128'}]}"),
        Invalid("spec.exportV6[0].action"),
    ),
    (
        "should accept BGPFilter rule with just an action - 1",
        "BGPFilter",
        filter!("{exportV4: [{action: Reject}]}"),
        Valid,
    ),
    (
        "should accept BGPFilter rule with just an action - 2",
        "BGPFilter",
        filter!("{exportV6: [{action: Reject}]}"),
        Valid,
    ),
    (
        "should accept BGPFilterV4 rule with PrefixLength Min set",
        "BGPFilter",
        filter!(
            "{exportV4: [{cidr: 10.0.10.0/24, matchOperator: In, action: Reject, prefixLength: {min: 25}}]}"
        ),
        Valid,
    ),
    (
        "should accept BGPFilterV4 rule with PrefixLength Max set",
        "BGPFilter",
        filter!(
            "{exportV4: [{cidr: 10.0.10.0/24, matchOperator: In, action: Reject, prefixLength: {max: 30}}]}"
        ),
        Valid,
    ),
    (
        "should reject BGPFilterV4 rule with PrefixLength Max is out-of-bounds",
        "BGPFilter",
        filter!(
            "{exportV4: [{cidr: 10.0.10.0/24, matchOperator: In, action: Reject, prefixLength: {max: 64}}]}"
        ),
        Invalid("spec.exportV4[0].prefixLength.max"),
    ),
    (
        "should reject BGPFilterV4 rule with PrefixLength populated and CIDR missing",
        "BGPFilter",
        filter!("{exportV4: [{interface: ethx., action: Reject, prefixLength: {min: 16}}]}"),
        Invalid("spec.exportV4[0].prefixLength"),
    ),
    (
        "should accept BGPFilterV6 rule with PrefixLength Min set",
        "BGPFilter",
        filter!(
            "{exportV6: [{cidr: 'ffff::/128', matchOperator: In, action: Reject, prefixLength: {min: 65}}]}"
        ),
        Valid,
    ),
    (
        "should accept BGPFilterV6 rule with PrefixLength Max set",
        "BGPFilter",
        filter!(
            "{exportV6: [{cidr: 'ffff::/128', matchOperator: In, action: Reject, prefixLength: {max: 96}}]}"
        ),
        Valid,
    ),
    (
        "should reject BGPFilterV6 rule with PrefixLength Min is negative",
        "BGPFilter",
        filter!(
            "{exportV6: [{cidr: 'ffff::/128', matchOperator: In, action: Reject, prefixLength: {min: -16}}]}"
        ),
        Invalid("spec.exportV6[0].prefixLength.min"),
    ),
    (
        "should reject BGPFilterV6 rule with PrefixLength populated and CIDR missing",
        "BGPFilter",
        filter!("{exportV6: [{interface: '*.calico', action: Reject, prefixLength: {min: 120}}]}"),
        Invalid("spec.exportV6[0].prefixLength"),
    ),
    (
        "should accept BGPFilterOperation with AddCommunity set",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}}]}]}"
        ),
        Valid,
    ),
    (
        "should accept BGPFilterOperation with PrependASPath set",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{prependASPath: {prefix: [65000]}}]}]}"),
        Valid,
    ),
    (
        "should accept BGPFilterOperation with SetPriority set",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{setPriority: {value: 256}}]}]}"),
        Valid,
    ),
    (
        "should reject BGPFilterOperation with no fields set",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{}]}]}"),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "should reject BGPFilterOperation with two fields set",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}, setPriority: {value: 256}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "should reject BGPFilterOperation with all fields set",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}, prependASPath: {prefix: [65000]}, setPriority: {value: 256}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "should accept BGPFilterRuleV4 with single operation",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{setPriority: {value: 256}}]}]}"),
        Valid,
    ),
    (
        "should accept BGPFilterRuleV4 with multiple operations",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}}, {prependASPath: {prefix: [65000]}}]}]}"
        ),
        Valid,
    ),
    (
        "should reject BGPFilterRuleV4 with empty operation",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{}]}]}"),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    // crd_validation_test.go TestCRDValidation_BGPFilter
    (
        "V4 CIDR without matchOperator fails",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.0.0/8, action: Accept}]}"),
        Invalid("spec.exportV4[0]"),
    ),
    (
        "V4 matchOperator without CIDR fails",
        "BGPFilter",
        filter!("{exportV4: [{matchOperator: In, action: Accept}]}"),
        Invalid("spec.exportV4[0]"),
    ),
    (
        "V4 prefixLength without CIDR fails",
        "BGPFilter",
        filter!("{exportV4: [{prefixLength: {min: 16}, action: Accept}]}"),
        Invalid("spec.exportV4[0].prefixLength"),
    ),
    (
        "V4 both CIDR and matchOperator passes",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.0.0/8, matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "V6 CIDR without matchOperator fails",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'fd00::/48', action: Accept}]}"),
        Invalid("spec.exportV6[0]"),
    ),
    (
        "V6 matchOperator without CIDR fails",
        "BGPFilter",
        filter!("{exportV6: [{matchOperator: Equal, action: Accept}]}"),
        Invalid("spec.exportV6[0]"),
    ),
    (
        "V6 both CIDR and matchOperator passes",
        "BGPFilter",
        filter!("{exportV6: [{cidr: 'fd00::/48', matchOperator: Equal, action: Accept}]}"),
        Valid,
    ),
    (
        "operation with no fields set fails minProperties",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{}]}]}"),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "operation with two fields set fails maxProperties",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:1'}, prependASPath: {prefix: [65000]}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "operation with single field passes",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{setPriority: {value: 100}}]}]}"),
        Valid,
    ),
    // api/pkg/apis/projectcalico/v3/bgpfilter_test.go (CEL and schema)
    (
        "basic valid BGPFilter",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.0.0/24, matchOperator: In, action: Accept}]}"),
        Valid,
    ),
    (
        "invalid BGPFilter with bad action",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.0.0/24, action: InvalidAction}]}"),
        Invalid("spec.exportV4[0].action"),
    ),
    (
        "invalid BGPFilter with bad CIDR",
        "BGPFilter",
        filter!("{importV4: [{cidr: invalid-cidr, action: Accept}]}"),
        Invalid("spec.importV4[0].cidr"),
    ),
    (
        "invalid BGPFilter with matchOperator",
        "BGPFilter",
        filter!(
            "{exportV6: [{cidr: 'fd00:1234:abcd::/64', matchOperator: InvalidOperator, action: Reject}]}"
        ),
        Invalid("spec.exportV6[0].matchOperator"),
    ),
    (
        "valid operations with Accept action",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{setPriority: {value: 100}}]}]}"),
        Valid,
    ),
    (
        "invalid operations with Reject action (V4)",
        "BGPFilter",
        filter!("{exportV4: [{action: Reject, operations: [{setPriority: {value: 100}}]}]}"),
        Invalid("spec.exportV4[0].operations"),
    ),
    (
        "invalid operations with Reject action (V6)",
        "BGPFilter",
        filter!(
            "{importV6: [{action: Reject, operations: [{addCommunity: {value: '65000:100'}}]}]}"
        ),
        Invalid("spec.importV6[0].operations"),
    ),
    (
        "valid operation with exactly one field (addCommunity)",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}}]}]}"
        ),
        Valid,
    ),
    (
        "invalid operation with two fields set",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}, setPriority: {value: 100}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "invalid operation with all three fields set",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100'}, prependASPath: {prefix: [65000]}, setPriority: {value: 100}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0]"),
    ),
    (
        "valid source on export rule",
        "BGPFilter",
        filter!("{exportV4: [{source: RemotePeers, action: Accept}]}"),
        Valid,
    ),
    (
        "valid standard community in match",
        "BGPFilter",
        filter!("{importV4: [{action: Accept, communities: {values: ['65000:100']}}]}"),
        Valid,
    ),
    (
        "valid large community in match",
        "BGPFilter",
        filter!("{importV4: [{action: Accept, communities: {values: ['65000:100:200']}}]}"),
        Valid,
    ),
    (
        "invalid standard community with value > 65535",
        "BGPFilter",
        filter!("{importV4: [{action: Accept, communities: {values: ['70000:100']}}]}"),
        Invalid("spec.importV4[0].communities.values[0]"),
    ),
    (
        "invalid community with bad format",
        "BGPFilter",
        filter!("{importV4: [{action: Accept, communities: {values: [not-a-community]}}]}"),
        Invalid("spec.importV4[0].communities.values[0]"),
    ),
    (
        "valid standard community in AddCommunity operation",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{addCommunity: {value: '100:200'}}]}]}"),
        Valid,
    ),
    (
        "valid large community in AddCommunity operation",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65000:100:200'}}]}]}"
        ),
        Valid,
    ),
    (
        "invalid AddCommunity with standard community value > 65535",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65536:100'}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0].addCommunity.value"),
    ),
    (
        "invalid AddCommunity with bad format",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{addCommunity: {value: garbage}}]}]}"),
        Invalid("spec.exportV4[0].operations[0].addCommunity.value"),
    ),
    (
        "standard community 0:0 (minimum)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['0:0']}}]}"),
        Valid,
    ),
    (
        "standard community 65535:65535 (maximum)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['65535:65535']}}]}"),
        Valid,
    ),
    (
        "standard community 1:1 (single digit)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['1:1']}}]}"),
        Valid,
    ),
    (
        "standard community 9999:9999 (4-digit)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['9999:9999']}}]}"),
        Valid,
    ),
    (
        "standard community 59999:59999 (upper mid range)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['59999:59999']}}]}"),
        Valid,
    ),
    (
        "standard community 65535:0 (max:min)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['65535:0']}}]}"),
        Valid,
    ),
    (
        "invalid standard community 65536:0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['65536:0']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid standard community 0:65536",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['0:65536']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid standard community 99999:0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['99999:0']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid standard community 100000:0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['100000:0']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid standard community with leading zero 01:02",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['01:02']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "large community 0:0:0 (minimum)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['0:0:0']}}]}"),
        Valid,
    ),
    (
        "large community maximum",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, communities: {values: ['4294967295:4294967295:4294967295']}}]}"
        ),
        Valid,
    ),
    (
        "large community 1:1:1 (single digit)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['1:1:1']}}]}"),
        Valid,
    ),
    (
        "large community 9-digit",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, communities: {values: ['999999999:999999999:999999999']}}]}"
        ),
        Valid,
    ),
    (
        "invalid large community 4294967296:0:0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['4294967296:0:0']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid large community 0:4294967296:0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['0:4294967296:0']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid large community 0:0:4294967296",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['0:0:4294967296']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid large community with leading zero 01:02:03",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['01:02:03']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: empty string",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: single number",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['12345']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: four colons",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['1:2:3:4']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: non-numeric",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['abc:def']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: negative number",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['-1:100']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: spaces",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['100 : 200']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "invalid community: trailing colon",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['100:200:']}}]}"),
        Invalid("spec.exportV4[0].communities.values[0]"),
    ),
    (
        "AddCommunity with max standard community 65535:65535",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65535:65535'}}]}]}"
        ),
        Valid,
    ),
    (
        "AddCommunity with max large community",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '4294967295:4294967295:4294967295'}}]}]}"
        ),
        Valid,
    ),
    (
        "invalid AddCommunity 65536:65536 (over 16-bit)",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '65536:65536'}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0].addCommunity.value"),
    ),
    (
        "invalid AddCommunity 4294967296:0:0 (over 32-bit)",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '4294967296:0:0'}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0].addCommunity.value"),
    ),
    (
        "invalid AddCommunity with leading zero",
        "BGPFilter",
        filter!(
            "{exportV4: [{action: Accept, operations: [{addCommunity: {value: '0100:200'}}]}]}"
        ),
        Invalid("spec.exportV4[0].operations[0].addCommunity.value"),
    ),
    // Further schema rules.
    (
        "rejects two community match values",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, communities: {values: ['1:1', '2:2']}}]}"),
        Invalid("spec.exportV4[0].communities.values"),
    ),
    (
        "rejects peerType ebgp (lower case)",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, peerType: ebgp}]}"),
        Invalid("spec.exportV4[0].peerType"),
    ),
    (
        "accepts peerType iBGP and an AS path prefix",
        "BGPFilter",
        filter!("{importV4: [{action: Reject, peerType: iBGP, asPathPrefix: [65000, '1.10']}]}"),
        Valid,
    ),
    (
        "rejects priority 0",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, priority: 0}]}"),
        Invalid("spec.exportV4[0].priority"),
    ),
    (
        "rejects setPriority 2147483647",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{setPriority: {value: 2147483647}}]}]}"),
        Invalid("spec.exportV4[0].operations[0].setPriority.value"),
    ),
    (
        "rejects an empty prependASPath",
        "BGPFilter",
        filter!("{exportV4: [{action: Accept, operations: [{prependASPath: {prefix: []}}]}]}"),
        Invalid("spec.exportV4[0].operations[0].prependASPath.prefix"),
    ),
    (
        "rejects an unmasked filter CIDR",
        "BGPFilter",
        filter!("{exportV4: [{cidr: 10.0.0.1/8, matchOperator: In, action: Accept}]}"),
        Invalid("spec.exportV4[0].cidr"),
    ),
];

#[test]
fn bgp_filter_table() {
    run_table("bgpfilter", FILTER_CASES);
}
