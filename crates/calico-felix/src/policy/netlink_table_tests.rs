//! Unit tests of the plan encoder: byte-for-byte against what nft 1.0.6 sends, validation,
//! error naming. No root needed.

use calico_nft::bytecode::{AnonElement, PayloadBase};
use calico_nft::{Element, ElementOp};

use super::super::netlink_elements::NLM_F_ACK;
use super::*;

/// Captured with (nft 1.0.6, kernel 6.18, x86_64):
/// `unshare --net sh -c 'nft -f skeleton.nft && strace -e trace=sendmsg -e write=all nft -f capA.nft'`
/// skeleton: `add table inet t; add chain inet t c; add chain inet t d; add chain inet t e;
/// add set inet t a4 { type ipv4_addr; }; add map inet t m { type ifname : verdict; };
/// add rule inet t e accept`. capA.nft: `add chain inet t x`,
/// `add set inet t s4 { type ipv4_addr; }`,
/// `add set inet t p6 { type ipv6_addr . inet_proto . inet_service; }`,
/// `add set inet t n6 { type ipv6_addr; flags interval; }`,
/// `add set inet t pp { type inet_proto . inet_service; }`,
/// `add element inet t s4 { 10.0.0.1, 10.0.0.2 }`, `flush chain inet t e`,
/// `delete chain inet t d`, `delete set inet t a4`.
#[rustfmt::skip]
const CAPTURE_A: &str = concat!(
    "140000001000010000000000000000000000000a24000000030a01040100000000000000010000000600010074000000",
    "060003007800000050000000090a01040200000000000000010000000600010074000000070002007334000008000300",
    "000000000800040000000007080005000000000408000a00000000010a000d00000402000000000058000000090a0104",
    "030000000000000001000000060001007400000007000200703600000800030000000000080004000000830d08000500",
    "0000001808000a000000000214000d00000400000000030800040d000000010050000000090a01040400000000000000",
    "010000000600010074000000070002006e36000008000300000000040800040000000008080005000000001008000a00",
    "000000030a000d00000402000000000058000000090a0104050000000000000001000000060001007400000007000200",
    "707000000800030000000000080004000000030d080005000000000808000a000000000414000d000004000000000308",
    "00040d0000000100500000000c0a01040600000000000000010000000600010074000000070002007334000008000400",
    "0000000124000380100001800c000180080001000a000001100002800c000180080001000a00000224000000080a0100",
    "0700000000000000010000000600010074000000060002006500000024000000050a0100080000000000000001000000",
    "06000100740000000600030064000000240000000b0a0100090000000000000001000000060001007400000007000200",
    "6134000014000000110001000a000000000000000000000a",
);

/// Captured like [`CAPTURE_A`]; skeleton: `add table inet t; add chain inet t c;
/// add chain inet t d` (no set: nft numbers the sets in its cache too, after those it creates). capB.nft:
/// `add set inet t s4 { type ipv4_addr; }` and, each `add rule inet t c …`:
/// 1. `meta mark & 0x10 == 0x10 ip saddr @s4 ip daddr != @s4 meta l4proto udp th sport != 1-1023 accept`
/// 2. `ip saddr { 10.0.0.0/8, 1.2.3.4 } meta l4proto . th dport { tcp . 80, udp . 53 } log prefix "hello " level info notrack jump d`
/// 3. `meta mark set meta mark | 0x10 fib saddr . mark . iif oif 0 drop`
/// 4. `iifname "cali*" oifname "eth0" tcp dport 1000-2000 return`
/// 5. `ip daddr . meta l4proto . th dport { 10.0.0.1 . tcp . 80 } goto d`
/// 6. `ct state established,related accept`
#[rustfmt::skip]
const CAPTURE_B: &str = concat!(
    "140000001000010000000000000000000000000a50000000090a01040100000000000000010000000600010074000000",
    "070002007334000008000300000000000800040000000007080005000000000408000a00000000010a000d0000040200",
    "00000000cc020000060a010c02000000000000000100000006000100740000000600020063000000a802048024000180",
    "090001006d6574610000000014000280080002000000000308000100000000014c0001800c0001006269747769736500",
    "3c00028008000100000000010800020000000001080006000000000008000300000000040c0004800800010010000000",
    "0c00058008000100000000002c00018008000100636d700020000280080001000000000108000200000000000c000380",
    "080001001000000024000180090001006d6574610000000014000280080002000000000f08000100000000012c000180",
    "08000100636d700020000280080001000000000108000200000000000c0003800500010002000000340001800c000100",
    "7061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000042c000180",
    "0b0001006c6f6f6b757000001c000280080002000000000107000100733400000800040000000001340001800c000100",
    "7061796c6f61640024000280080001000000000108000200000000010800030000000010080004000000000434000180",
    "0b0001006c6f6f6b75700000240002800800020000000001070001007334000008000400000000010800050000000001",
    "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d7000",
    "20000280080001000000000108000200000000000c0003800500010011000000340001800c0001007061796c6f616400",
    "2400028008000100000000010800020000000002080003000000000008000400000000023c0001800a00010072616e67",
    "650000002c000280080001000000000108000200000000010c00038006000100000100000c0004800600010003ff0000",
    "300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001",
    "7c000000090a010403000000000000000100000006000100740000000c0002005f5f7365742564000800030000000007",
    "0800040000000007080005000000000408000a00000000020c000980080001000000000526000d000004020000000204",
    "010000000314000407000000010c00040c00000001040b00000000009c0000000c0a0104040000000000000001000000",
    "06000100740000000c0002005f5f73657425640008000400000000026c0003801800018008000300000000010c000180",
    "0800010000000000100002800c00018008000100010203041800038008000300000000010c0001800800010001020305",
    "100004800c000180080001000a0000001800058008000300000000010c000180080001000b00000090000000090a0104",
    "05000000000000000100000006000100740000000c0002005f5f7365742564000800030000000003080004000000030d",
    "080005000000000808000a00000000030c00098008000100000000023a000d00000400000000032e00040d0000000126",
    "000e00040900000001060004100000000114000407000000010c00040b00000001040200000000005c0000000c0a0104",
    "06000000000000000100000006000100740000000c0002005f5f73657425640008000400000000032c00038014000180",
    "100001800c000100060000000050000014000280100001800c0001001100000000350000d0010000060a010c07000000",
    "000000000100000006000100740000000600020063000000ac01048024000180090001006d6574610000000014000280",
    "080002000000000f08000100000000012c00018008000100636d70002000028008000100000000010800020000000000",
    "0c0003800500010002000000340001800c0001007061796c6f6164002400028008000100000000010800020000000001",
    "080003000000000c0800040000000004300001800b0001006c6f6f6b757000002000028008000200000000010c000100",
    "5f5f736574256400080004000000000224000180090001006d6574610000000014000280080002000000001008000100",
    "00000001340001800c0001007061796c6f61640024000280080001000000000908000200000000020800030000000002",
    "0800040000000002300001800b0001006c6f6f6b757000002000028008000200000000010c0001005f5f736574256400",
    "080004000000000324000180080001006c6f6700180002800b00020068656c6c6f200000080005000000000610000180",
    "0c0001006e6f747261636b00380001800e000100696d6d65646961746500000024000280080001000000000018000280",
    "1400028008000100fffffffd060002006400000040010000060a010c0800000000000000010000000600010074000000",
    "06000200630000001c01048024000180090001006d657461000000001400028008000200000000030800010000000001",
    "4c0001800c00010062697477697365003c00028008000100000000010800020000000001080006000000000008000300",
    "000000040c00048008000100efffffff0c000580080001001000000024000180090001006d6574610000000014000280",
    "080002000000000308000300000000012800018008000100666962001c000280080003000000000d0800020000000001",
    "08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c00038008000100",
    "00000000300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c00028008000100",
    "00000000e0010000060a010c09000000000000000100000006000100740000000600020063000000bc01048024000180",
    "090001006d6574610000000014000280080002000000000608000100000000012c00018008000100636d700020000280",
    "080001000000000108000200000000000c0003800800010063616c6924000180090001006d6574610000000014000280",
    "080002000000000708000100000000013800018008000100636d70002c00028008000100000000010800020000000000",
    "18000380140001006574683000000000000000000000000024000180090001006d657461000000001400028008000200",
    "0000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380",
    "0500010006000000340001800c0001007061796c6f616400240002800800010000000001080002000000000208000300",
    "0000000208000400000000022c00018008000100636d700020000280080001000000000108000200000000050c000380",
    "0600010003e800002c00018008000100636d700020000280080001000000000108000200000000030c00038006000100",
    "07d00000300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c00028008000100",
    "fffffffba4000000090a01040a000000000000000100000006000100740000000c0002005f5f73657425640008000300",
    "00000003080004000000730d080005000000000c08000a00000000040c000980080001000000000150000d0000040000",
    "0000034400040d000000013c0014000407000000010c00040c00000001040c000000010e000409000000010600041000",
    "00000214000407000000010c00040b0000000104020000004c0000000c0a01040b000000000000000100000006000100",
    "740000000c0002005f5f73657425640008000400000000041c0003801800018014000180100001000a00000106000000",
    "005000006c010000060a010c0c0000000000000001000000060001007400000006000200630000004801048024000180",
    "090001006d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280",
    "080001000000000108000200000000000c0003800500010002000000340001800c0001007061796c6f61640024000280",
    "080001000000000108000200000000010800030000000010080004000000000424000180090001006d65746100000000",
    "1400028008000200000000100800010000000009340001800c0001007061796c6f61640024000280080001000000000a",
    "080002000000000208000300000000020800040000000002300001800b0001006c6f6f6b757000002000028008000200",
    "000000010c0001005f5f7365742564000800040000000004380001800e000100696d6d65646961746500000024000280",
    "0800010000000000180002801400028008000100fffffffc0600020064000000e8000000060a010c0d00000000000000",
    "0100000006000100740000000600020063000000c4000480200001800700010063740000140002800800020000000000",
    "0800010000000001440001800c0001006269747769736500340002800800010000000001080002000000000108000300",
    "000000040c00048008000100060000000c00058008000100000000002c00018008000100636d70002000028008000100",
    "0000000108000200000000010c0003800800010000000000300001800e000100696d6d6564696174650000001c000280",
    "0800010000000000100002800c000280080001000000000114000000110001000e000000000000000000000a",
);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The messages of a batch, each as its bytes.
fn split(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let len = u32_at(b, off) as usize;
        out.push(b[off..off + len].to_vec());
        off += len;
    }
    out
}

/// A readable dump of one message's attributes (nested ones recursively), for diffs.
fn dump(m: &[u8]) -> String {
    fn walk(b: &[u8], depth: usize, out: &mut String) {
        let mut at = 0;
        while at + 4 <= b.len() {
            let len = usize::from(u16_at(b, at));
            let kind = u16_at(b, at + 2);
            let payload = &b[at + 4..at + len.max(4)];
            out.push_str(&format!(
                "{}[{} len {len}]",
                "  ".repeat(depth),
                kind & 0x3fff
            ));
            if kind & 0x8000 != 0 {
                out.push('\n');
                walk(payload, depth + 1, out);
            } else {
                out.push_str(&format!(" {payload:02x?}\n"));
            }
            at += (len.max(4) + 3) & !3;
        }
    }
    let mut s = format!(
        "type {:#06x} flags {:#x} seq {}\n",
        u16_at(m, 4),
        u16_at(m, 6),
        u32_at(m, 8)
    );
    walk(&m[20..], 0, &mut s);
    s
}

/// Compares message by message (nft asks for no ack; we ask on the last message).
fn assert_same_as_nft(ours: &[u8], nft: &[u8]) {
    let mut ours = split(ours);
    let nft = split(nft);
    assert_eq!(ours.len(), nft.len(), "message count");
    let last = ours.len() - 2;
    let flags = u16_at(&ours[last], 6);
    assert_ne!(flags & NLM_F_ACK, 0, "the last message asks for an ack");
    ours[last][6..8].copy_from_slice(&(flags & !NLM_F_ACK).to_ne_bytes());
    for (i, (o, n)) in ours.iter().zip(&nft).enumerate() {
        assert_eq!(dump(o), dump(n), "message {i}");
        assert_eq!(o, n, "message {i}");
    }
}

fn elem(set: &str, v4: &str) -> TableOp {
    TableOp::Element(ElementOp {
        set: set.into(),
        add: true,
        element: v4.into(),
        value: Element::Addr(v4.parse().unwrap()),
    })
}

fn plan_a() -> Vec<TableOp> {
    vec![
        TableOp::AddChain { name: "x".into() },
        TableOp::AddSet {
            name: "s4".into(),
            kind: NamedSetKind::Addr(4),
        },
        TableOp::AddSet {
            name: "p6".into(),
            kind: NamedSetKind::AddrProtoPort(6),
        },
        TableOp::AddSet {
            name: "n6".into(),
            kind: NamedSetKind::Net(6),
        },
        TableOp::AddSet {
            name: "pp".into(),
            kind: NamedSetKind::ProtoPort,
        },
        elem("s4", "10.0.0.1"),
        elem("s4", "10.0.0.2"),
        TableOp::FlushChain { name: "e".into() },
        TableOp::DeleteChain { name: "d".into() },
        TableOp::DeleteSet { name: "a4".into() },
    ]
}

#[test]
fn sets_chains_and_elements_are_sent_as_nft_sends_them() {
    let b = encode_plan("t", &plan_a(), 0).unwrap();
    assert_same_as_nft(&b.bytes, &hex(CAPTURE_A));
    assert_eq!(b.begin_seq, 0);
    assert_eq!(b.last_seq, Some(9));
    assert_eq!(b.seqs_used(), 11);
}

fn meta(key: MetaKey, dreg: u32) -> Expr {
    Expr::MetaLoad { key, dreg }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        op,
        sreg: 1,
        data: data.to_vec(),
    }
}

fn payload(base: PayloadBase, offset: u32, len: u32, dreg: u32) -> Expr {
    Expr::Payload {
        base,
        offset,
        len,
        dreg,
    }
}

fn lookup(set: SetRef, invert: bool) -> Expr {
    Expr::Lookup {
        sreg: 1,
        set,
        dreg: None,
        invert,
    }
}

fn bitwise(mask: [u8; 4], xor: [u8; 4]) -> Expr {
    Expr::Bitwise {
        sreg: 1,
        dreg: 1,
        mask: mask.to_vec(),
        xor: xor.to_vec(),
    }
}

fn key(bytes: &[u8], interval_end: bool) -> AnonElement {
    AnonElement {
        key: bytes.to_vec(),
        interval_end,
    }
}

/// The rules of [`CAPTURE_B`], as `calico_nft` compiles them.
fn rules_b() -> Vec<RuleCode> {
    use CmpOp::*;
    use MetaKey::*;
    use PayloadBase::*;
    let ipv4 = || [meta(Nfproto, 1), cmp(Eq, &[2])];
    let r1 = RuleCode {
        exprs: vec![
            meta(Mark, 1),
            bitwise([0x10, 0, 0, 0], [0; 4]),
            cmp(Eq, &[0x10, 0, 0, 0]),
            meta(Nfproto, 1),
            cmp(Eq, &[2]),
            payload(Network, 12, 4, 1),
            lookup(SetRef::Named("s4".into()), false),
            payload(Network, 16, 4, 1),
            lookup(SetRef::Named("s4".into()), true),
            meta(L4proto, 1),
            cmp(Eq, &[17]),
            payload(Transport, 0, 2, 1),
            Expr::Range {
                op: Neq,
                sreg: 1,
                from: vec![0, 1],
                to: vec![3, 0xff],
            },
            Expr::Verdict(VerdictCode::Accept),
        ],
        anon_sets: vec![],
    };
    let mut e2 = ipv4().to_vec();
    e2.extend([
        payload(Network, 12, 4, 1),
        lookup(SetRef::Anonymous(0), false),
        meta(L4proto, 1),
        payload(Transport, 2, 2, 9),
        lookup(SetRef::Anonymous(1), false),
        Expr::Log {
            prefix: "hello ".into(),
            level: 6,
        },
        Expr::Notrack,
        Expr::Verdict(VerdictCode::Jump("d".into())),
    ]);
    let r2 = RuleCode {
        exprs: e2,
        anon_sets: vec![
            AnonSet {
                key_type: 7,
                key_len: 4,
                concat: vec![],
                interval: true,
                elements: vec![
                    key(&[0, 0, 0, 0], true),
                    key(&[1, 2, 3, 4], false),
                    key(&[1, 2, 3, 5], true),
                    key(&[10, 0, 0, 0], false),
                    key(&[11, 0, 0, 0], true),
                ],
            },
            AnonSet {
                key_type: 0x30d,
                key_len: 8,
                concat: vec![1, 2],
                interval: false,
                elements: vec![
                    key(&[6, 0, 0, 0, 0, 80, 0, 0], false),
                    key(&[17, 0, 0, 0, 0, 53, 0, 0], false),
                ],
            },
        ],
    };
    let r3 = RuleCode {
        exprs: vec![
            meta(Mark, 1),
            bitwise([0xef, 0xff, 0xff, 0xff], [0x10, 0, 0, 0]),
            Expr::MetaSet { key: Mark, sreg: 1 },
            Expr::FibSaddrMarkIifOif { dreg: 1 },
            cmp(Eq, &[0, 0, 0, 0]),
            Expr::Verdict(VerdictCode::Drop),
        ],
        anon_sets: vec![],
    };
    let mut eth0 = b"eth0".to_vec();
    eth0.resize(16, 0);
    let r4 = RuleCode {
        exprs: vec![
            meta(Iifname, 1),
            cmp(Eq, b"cali"),
            meta(Oifname, 1),
            cmp(Eq, &eth0),
            meta(L4proto, 1),
            cmp(Eq, &[6]),
            payload(Transport, 2, 2, 1),
            cmp(Gte, &[0x03, 0xe8]),
            cmp(Lte, &[0x07, 0xd0]),
            Expr::Verdict(VerdictCode::Return),
        ],
        anon_sets: vec![],
    };
    let mut e5 = ipv4().to_vec();
    e5.extend([
        payload(Network, 16, 4, 1),
        meta(L4proto, 9),
        payload(Transport, 2, 2, 10),
        lookup(SetRef::Anonymous(0), false),
        Expr::Verdict(VerdictCode::Goto("d".into())),
    ]);
    let r5 = RuleCode {
        exprs: e5,
        anon_sets: vec![AnonSet {
            key_type: 0x730d,
            key_len: 12,
            concat: vec![4, 1, 2],
            interval: false,
            elements: vec![key(&[10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0], false)],
        }],
    };
    let r6 = RuleCode {
        exprs: vec![
            Expr::CtState { dreg: 1 },
            bitwise([6, 0, 0, 0], [0; 4]),
            cmp(Neq, &[0, 0, 0, 0]),
            Expr::Verdict(VerdictCode::Accept),
        ],
        anon_sets: vec![],
    };
    vec![r1, r2, r3, r4, r5, r6]
}

fn plan_b() -> Vec<TableOp> {
    let mut ops = vec![TableOp::AddSet {
        name: "s4".into(),
        kind: NamedSetKind::Addr(4),
    }];
    ops.extend(rules_b().into_iter().map(|rule| TableOp::AddRule {
        chain: "c".into(),
        rule,
    }));
    ops
}

/// Removes the `NFTA_BITWISE_OP` attribute (8 bytes) from a message, fixing the lengths of
/// the message and of the nests around it: nft leaves it out for a flag match.
fn without_bitwise_op(m: &[u8]) -> Vec<u8> {
    let needle: Vec<u8> = [8u16.to_ne_bytes(), NFTA_BITWISE_OP.to_ne_bytes()]
        .concat()
        .into_iter()
        .chain(NFT_BITWISE_BOOL.to_be_bytes())
        .collect();
    let at = m.windows(8).position(|w| w == needle.as_slice()).unwrap();
    let mut out = m.to_vec();
    out.drain(at..at + 8);
    let len = u32_at(&out, 0) - 8;
    out[0..4].copy_from_slice(&len.to_ne_bytes());
    // Every nest enclosing `at` shrinks by 8: walk down from the message's attributes.
    let mut start = 20;
    let mut end = out.len();
    while start + 4 <= end {
        let alen = usize::from(u16_at(&out, start));
        let kind = u16_at(&out, start + 2);
        if at > start && at < start + alen {
            let fixed = u16::try_from(alen - 8).unwrap();
            out[start..start + 2].copy_from_slice(&fixed.to_ne_bytes());
            if kind & 0x8000 == 0 {
                break;
            }
            end = start + alen - 8;
            start += 4;
        } else {
            start += (alen + 3) & !3;
        }
    }
    out
}

#[test]
fn rules_and_anonymous_sets_are_sent_as_nft_sends_them() {
    let b = encode_plan("t", &plan_b(), 0).unwrap();
    let mut ours = split(&b.bytes);
    let nft = split(&hex(CAPTURE_B));
    // The ct state rule (the last before BATCH_END): nft leaves NFTA_BITWISE_OP out there.
    let ct = ours.len() - 2;
    ours[ct] = without_bitwise_op(&ours[ct]);
    assert_same_as_nft(&ours.concat(), &nft.concat());
}

#[test]
fn anonymous_set_user_data_follows_the_key_expressions() {
    use CmpOp::*;
    use MetaKey::*;
    // Captured from nft for `meta mark { 1, 2 }`, `iifname { "cali1", "eth0" }`,
    // `icmpv6 type { 130, ... }` and `ip6 daddr . meta l4proto . th dport { ... }`: host order
    // for meta keys (byte-swapped in `nft list` without it), network order for header fields.
    let set = |key_type, key_len, concat: Vec<u32>| AnonSet {
        key_type,
        key_len,
        concat,
        interval: false,
        elements: vec![],
    };
    let mark = [meta(Mark, 1), lookup(SetRef::Anonymous(0), false)];
    assert_eq!(
        anon_udata(&mark, 1, 1, &set(19, 4, vec![])),
        hex("000401000000030e0004090000000106000403000000")
    );
    let iif = [meta(Iifname, 1), lookup(SetRef::Anonymous(0), false)];
    assert_eq!(
        anon_udata(&iif, 1, 1, &set(41, 16, vec![])),
        hex("000401000000030e0004090000000106000406000000")
    );
    let icmp6 = [
        meta(L4proto, 1),
        cmp(Eq, &[58]),
        payload(PayloadBase::Transport, 0, 1, 1),
        lookup(SetRef::Anonymous(0), false),
    ];
    assert_eq!(
        anon_udata(&icmp6, 3, 1, &set(29, 1, vec![])),
        hex("0004020000000314000407000000010c00040e000000010401000000")
    );
    let ip6_concat = [
        meta(Nfproto, 1),
        cmp(Eq, &[10]),
        payload(PayloadBase::Network, 24, 16, 1),
        meta(L4proto, 2),
        payload(PayloadBase::Transport, 2, 2, 13),
        lookup(SetRef::Anonymous(0), false),
    ];
    assert_eq!(
        anon_udata(&ip6_concat, 5, 1, &set(0x830d, 24, vec![16, 1, 2])),
        hex(concat!(
            "00040000000003440004",
            "0d000000013c0014000407000000010c00040d000000010409000000",
            "010e00040900000001060004100000000214000407000000010c0004",
            "0b000000010402000000"
        ))
    );
    // No load found for the key: byte order from the key type, no typeof record.
    let bare = [lookup(SetRef::Anonymous(0), false)];
    assert_eq!(
        anon_udata(&bare, 0, 1, &set(7, 4, vec![])),
        hex("000402000000")
    );
}

fn rule(exprs: Vec<Expr>, anon_sets: Vec<AnonSet>) -> TableOp {
    TableOp::AddRule {
        chain: "c".into(),
        rule: RuleCode { exprs, anon_sets },
    }
}

fn encode_err(ops: &[TableOp]) -> DataplaneError {
    encode_plan("t", ops, 1).unwrap_err()
}

fn invalid_input(err: &DataplaneError) -> bool {
    matches!(err, DataplaneError::Netlink { source, .. }
        if source.kind() == io::ErrorKind::InvalidInput)
}

#[test]
fn malformed_plans_are_refused_naming_the_op_and_expression() {
    let accept = || Expr::Verdict(VerdictCode::Accept);
    let ipset = |elements| AnonSet {
        key_type: 7,
        key_len: 4,
        concat: vec![],
        interval: false,
        elements,
    };
    let cases: Vec<(Vec<TableOp>, &str)> = vec![
        (
            vec![TableOp::AddChain { name: "".into() }],
            "\"\" is not a valid nft chain name",
        ),
        (
            vec![TableOp::DeleteSet {
                name: "x".repeat(256),
            }],
            "not a valid nft set name",
        ),
        (
            vec![rule(vec![meta(MetaKey::Mark, 5), accept()], vec![])],
            "append rule #1 to chain c: expression 0 `[ meta load mark => reg 5 ]`: 5 is not a data register",
        ),
        (
            vec![rule(vec![meta(MetaKey::Iifname, 23), accept()], vec![])],
            "16 bytes do not fit register 23",
        ),
        (
            vec![rule(vec![cmp(CmpOp::Eq, &[0; 17]), accept()], vec![])],
            "data of 17 bytes",
        ),
        (
            vec![rule(
                vec![lookup(SetRef::Anonymous(1), false), accept()],
                vec![ipset(vec![key(&[1, 2, 3, 4], false)])],
            )],
            "anonymous set 1 of a rule with 1",
        ),
        (
            vec![rule(
                vec![lookup(SetRef::Anonymous(0), false), accept()],
                vec![ipset(vec![key(&[1, 2, 3], false)])],
            )],
            "anonymous set 0: element key of 3 bytes in a set of 4-byte keys",
        ),
        (
            vec![rule(
                vec![lookup(SetRef::Anonymous(0), false), accept()],
                vec![ipset(vec![])],
            )],
            "anonymous set 0: an anonymous set has elements",
        ),
        (
            vec![rule(
                vec![accept()],
                vec![ipset(vec![key(&[1, 2, 3, 4], false)])],
            )],
            "anonymous set 0 is not looked up",
        ),
        (
            vec![rule(
                vec![Expr::Verdict(VerdictCode::Jump("a\0b".into()))],
                vec![],
            )],
            "is not a valid chain name",
        ),
        (
            vec![rule(
                vec![Expr::Log {
                    prefix: "p".repeat(128),
                    level: 6,
                }],
                vec![],
            )],
            "a log prefix is at most 127 bytes",
        ),
        (
            vec![rule(
                vec![Expr::MetaSet {
                    key: MetaKey::L4proto,
                    sreg: 1,
                }],
                vec![],
            )],
            "only the mark can be set",
        ),
        (
            vec![rule(
                vec![Expr::Lookup {
                    sreg: 1,
                    set: SetRef::Named("m".into()),
                    dreg: Some(0),
                    invert: true,
                }],
                vec![],
            )],
            "an inverted lookup has no destination",
        ),
        (vec![rule(vec![], vec![])], "at least one expression"),
        (
            vec![TableOp::AddSet {
                name: "s".into(),
                kind: NamedSetKind::Addr(5),
            }],
            "address family 5",
        ),
    ];
    for (ops, expected) in cases {
        let err = encode_err(&ops);
        assert!(invalid_input(&err), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{err} lacks {expected:?}"
        );
    }
    // The rule number counts the rules added to that chain (after a flush, from 1 again).
    let ops = vec![
        rule(vec![accept()], vec![]),
        TableOp::FlushChain { name: "c".into() },
        rule(vec![accept()], vec![]),
        rule(vec![meta(MetaKey::Mark, 0), accept()], vec![]),
    ];
    assert!(
        encode_err(&ops)
            .to_string()
            .contains("append rule #2 to chain c")
    );
}

#[test]
fn what_the_encoder_cannot_write_has_no_netlink_path() {
    // Ranges of a concatenation need NFTA_SET_ELEM_KEY_END elements.
    let concat_ranges = rule(
        vec![
            payload(PayloadBase::Network, 12, 4, 1),
            payload(PayloadBase::Transport, 2, 2, 9),
            lookup(SetRef::Anonymous(0), false),
            Expr::Verdict(VerdictCode::Accept),
        ],
        vec![AnonSet {
            key_type: (7 << 6) | 13,
            key_len: 8,
            concat: vec![4, 2],
            interval: true,
            elements: vec![key(&[10, 0, 0, 0, 0, 80, 0, 0], false)],
        }],
    );
    let err = encode_err(&[concat_ranges]);
    assert!(
        matches!(&err, DataplaneError::NoNetlinkPath { what } if what.contains("key-end")),
        "{err:?}"
    );
    // More than one netlink send holds.
    let chains: Vec<TableOp> = (0..100_000)
        .map(|i| TableOp::AddChain {
            name: format!("chain-{i}"),
        })
        .collect();
    let err = encode_err(&chains);
    assert!(
        matches!(&err, DataplaneError::NoNetlinkPath { what } if what.contains("larger than one netlink send")),
        "{err:?}"
    );
    assert!(encode_plan("t", &chains[..2000], 1).is_ok());
}

#[test]
fn renumbering_equals_encoding_at_that_sequence_number() {
    let mut b = encode_plan("t", &plan_b(), 1).unwrap();
    let direct = encode_plan("t", &plan_b(), 0xffff_fff0).unwrap();
    b.renumber(0xffff_fff0);
    assert_eq!(b.bytes, direct.bytes);
    assert_eq!(b.begin_seq, direct.begin_seq);
    assert_eq!(b.last_seq, direct.last_seq);
    assert_eq!(b.seqs_used(), 15);
    let seqs = |p: &PlanBatch| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&b), seqs(&direct));
    // An empty plan: begin and end only, nothing to acknowledge.
    let empty = encode_plan("t", &[], 5).unwrap();
    assert_eq!(empty.last_seq, None);
    assert_eq!(split(&empty.bytes).len(), 2);
}

#[test]
fn only_sets_created_in_the_batch_are_looked_up_by_id() {
    let ops = vec![
        TableOp::AddSet {
            name: "new".into(),
            kind: NamedSetKind::Addr(4),
        },
        elem("new", "10.0.0.1"),
        elem("old", "10.0.0.2"),
        rule(
            vec![
                payload(PayloadBase::Network, 12, 4, 1),
                lookup(SetRef::Named("new".into()), false),
                lookup(SetRef::Named("old".into()), false),
            ],
            vec![],
        ),
    ];
    let b = encode_plan("t", &ops, 0).unwrap();
    let m = split(&b.bytes);
    let id1 = [8u8, 0, NFTA_SET_ELEM_LIST_SET_ID as u8, 0, 0, 0, 0, 1];
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(has(&m[2], &id1), "elements of the new set name its id");
    assert!(!has(&m[3][20..], &[8, 0, 4, 0]), "the old set's have none");
    let lookup_id = [8u8, 0, NFTA_LOOKUP_SET_ID as u8, 0, 0, 0, 0, 1];
    let rule_msg = &m[4];
    assert_eq!(
        rule_msg
            .windows(8)
            .filter(|w| *w == lookup_id.as_slice())
            .count(),
        1
    );
}

#[test]
fn refusals_name_the_op_the_rule_expression_and_the_element() {
    let ops = plan_b();
    let b = encode_plan("t", &ops, 100).unwrap();
    // The ct state rule's message: the kernel points at its second expression (bitwise).
    let m = b.messages.last().unwrap();
    assert_eq!(m.op, 6);
    let ack = |seq, offset| Ack {
        seq,
        errno: 22,
        offset,
        message: Some("bad".into()),
    };
    let err = describe(
        &b,
        &ack(m.seq, Some(m.exprs[1].start as u32 + 8)),
        "t",
        &ops,
    );
    let text = err.to_string();
    assert!(
        text.contains("append rule #6 to chain c (op 6 of the plan) in table inet t, expression 1 `[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]` (bad)"),
        "{text}"
    );
    assert!(
        matches!(&err, DataplaneError::Netlink { source, .. } if source.raw_os_error() == Some(22))
    );
    // An anonymous set of rule 2.
    let anon = b
        .messages
        .iter()
        .find(|m| m.what.starts_with("create anonymous set 1"))
        .unwrap();
    let err = describe(&b, &ack(anon.seq, None), "t", &ops);
    assert!(
        err.to_string()
            .contains("create anonymous set 1 of rule #2 appended to chain c (op 2 of the plan)"),
        "{err}"
    );
    // The named set, and the batch as a whole.
    let err = describe(&b, &ack(101, None), "t", &ops);
    assert!(
        matches!(&err, DataplaneError::Netlink { set: Some(s), .. } if s == "s4"),
        "{err:?}"
    );
    assert!(err.to_string().contains("add set s4"), "{err}");
    let err = describe(&b, &ack(100, None), "t", &ops);
    assert!(err.to_string().contains("commit of the batch"), "{err}");
    // Element messages name the element, as apply_elements does.
    let plan = plan_a();
    let b = encode_plan("t", &plan, 0).unwrap();
    let em = &b.elements[0];
    let second = em.elements[1].0.start as u32 + 4;
    let err = describe(&b, &ack(em.seq, Some(second)), "t", &plan);
    assert!(
        matches!(&err, DataplaneError::Netlink { set: Some(s), element: Some(e), .. }
            if s == "s4" && e == "10.0.0.2"),
        "{err:?}"
    );
}
