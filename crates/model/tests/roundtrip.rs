//! Property tests: every codec prints what it parses back to an equal value,
//! and printing a parsed value again gives the same text.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use pvefleet_model::drive::{CacheMode, Discard, DiskFormat, Media};
use pvefleet_model::net::NicModel;
use pvefleet_model::{
    Boot, Drive, DriveFile, ImportSource, IpConfig, Ipv4Config, Ipv6Config, MacAddr, Net,
    StorageId, VolId,
};

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

/// Items no codec types, so they land in `other`.
fn other() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("x-[a-z]{1,5}", "[a-z0-9.;]{1,6}", 0..3)
}

fn mac() -> impl Strategy<Value = MacAddr> {
    (any::<[u8; 6]>(), any::<bool>()).prop_map(|(b, lower)| {
        let text = b.map(|x| format!("{x:02X}")).join(":");
        let text = if lower { text.to_lowercase() } else { text };
        MacAddr::parse(&text).expect("six hex pairs")
    })
}

fn storage() -> impl Strategy<Value = StorageId> {
    "[a-z][a-z0-9-]{0,6}[a-z0-9]".prop_map(|s| StorageId::parse(&s).expect("valid id"))
}

fn volid() -> impl Strategy<Value = VolId> {
    (storage(), 100u32..2000, 0u8..4)
        .prop_map(|(s, id, n)| VolId::new(&s, &format!("vm-{id}-disk-{n}")).expect("valid volid"))
}

fn net() -> impl Strategy<Value = Net> {
    (
        pick(NicModel::ALL),
        proptest::option::of(mac()),
        proptest::option::of("vmbr[0-9]{1,2}"),
        proptest::option::of(1u16..=4094),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(1u32..=65520),
        proptest::option::of(0u8..=64),
        other(),
    )
        .prop_map(|(model, mac, bridge, tag, fw, down, mtu, queues, other)| {
            let mut n = Net::new(model);
            n.macaddr = mac;
            n.bridge = bridge;
            n.tag = tag;
            n.firewall = fw;
            n.link_down = down;
            n.mtu = mtu;
            n.queues = queues;
            n.other = other;
            n
        })
}

fn drive_file() -> impl Strategy<Value = DriveFile> {
    prop_oneof![
        (proptest::option::of(storage()), "[0-9]{1,3}(\\.[0-9])?")
            .prop_map(|(storage, gib)| DriveFile::New { storage, gib }),
        storage().prop_map(DriveFile::CloudInit),
        volid().prop_map(DriveFile::Volume),
        Just(DriveFile::Empty),
        Just(DriveFile::HostCdrom),
        "/dev/sd[a-z]".prop_map(DriveFile::Path),
    ]
}

fn drive() -> impl Strategy<Value = Drive> {
    (
        drive_file(),
        proptest::option::of(pick(Media::ALL)),
        proptest::option::of((1u64..4096).prop_map(|m| m << 20)),
        proptest::option::of(pick(DiskFormat::ALL)),
        proptest::option::of(pick(CacheMode::ALL)),
        proptest::option::of(pick(Discard::ALL)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            volid().prop_map(ImportSource::Volume),
            "/var/lib/vz/import/[a-z]{1,5}\\.qcow2".prop_map(ImportSource::Path),
        ]),
        other(),
    )
        .prop_map(
            |(file, media, size, format, cache, discard, ssd, backup, import, other)| {
                let mut d = Drive::new(file);
                d.media = media;
                d.size = size;
                d.format = format;
                d.cache = cache;
                d.discard = discard;
                d.ssd = ssd;
                d.backup = backup;
                d.import_from = import;
                d.other = other;
                d
            },
        )
}

fn ipconfig() -> impl Strategy<Value = IpConfig> {
    let v4 = prop_oneof![
        Just(Ipv4Config::Dhcp),
        Just(Ipv4Config::Manual),
        (any::<u32>(), 8u8..=32).prop_map(|(a, prefix)| Ipv4Config::Static {
            address: Ipv4Addr::from(a),
            prefix
        }),
    ];
    let v6 = prop_oneof![
        Just(Ipv6Config::Dhcp),
        Just(Ipv6Config::Auto),
        Just(Ipv6Config::Manual),
        (any::<u128>(), 8u8..=128).prop_map(|(a, prefix)| Ipv6Config::Static {
            address: Ipv6Addr::from(a),
            prefix
        }),
    ];
    (
        proptest::option::of((v4, proptest::option::of(any::<u32>()))),
        proptest::option::of((v6, proptest::option::of(any::<u128>()))),
        other(),
    )
        .prop_map(|(ip, ip6, other)| {
            let mut c = IpConfig::new();
            if let Some((ip, gw)) = ip {
                c.ip = Some(ip);
                c.gw = gw.map(Ipv4Addr::from);
            }
            if let Some((ip6, gw6)) = ip6 {
                c.ip6 = Some(ip6);
                c.gw6 = gw6.map(Ipv6Addr::from);
            }
            c.other = other;
            c
        })
}

fn boot() -> impl Strategy<Value = Boot> {
    (
        proptest::option::of(proptest::collection::vec(
            "(scsi|ide|net|virtio)[0-9]",
            1..4,
        )),
        proptest::option::of("[acdn]{1,4}"),
        other(),
    )
        .prop_map(|(order, legacy, other)| {
            let mut b = match order {
                Some(devices) => Boot::with_order(devices),
                None => Boot::default(),
            };
            b.legacy = legacy;
            b.other = other;
            b
        })
}

/// parse(print(v)) == v, and printing that again gives the same text.
fn check<T, E>(value: &T, parse: impl Fn(&str) -> Result<T, E>) -> Result<(), TestCaseError>
where
    T: std::fmt::Display + std::fmt::Debug + PartialEq,
    E: std::fmt::Display,
{
    let text = value.to_string();
    let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
    prop_assert_eq!(&back, value, "{}", text);
    prop_assert_eq!(back.to_string(), text);
    Ok(())
}

proptest! {
    #[test]
    fn net_round_trips(n in net()) {
        check(&n, Net::parse)?;
    }

    #[test]
    fn drive_round_trips(d in drive()) {
        check(&d, Drive::parse)?;
    }

    #[test]
    fn ipconfig_round_trips(c in ipconfig()) {
        check(&c, IpConfig::parse)?;
    }

    #[test]
    fn boot_round_trips(b in boot()) {
        check(&b, Boot::parse)?;
    }

    /// Item order never changes what a value means (CONTRACT §18).
    #[test]
    fn net_order_does_not_matter(n in net(), seed in any::<u64>()) {
        let text = n.to_string();
        let mut items: Vec<&str> = text.split(',').collect();
        let first = items.remove(0);
        let len = items.len().max(1);
        items.rotate_left((seed as usize) % len);
        let shuffled = [vec![first], items].concat().join(",");
        prop_assert_eq!(Net::parse(&shuffled).ok(), Some(n));
    }
}
