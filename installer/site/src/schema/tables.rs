//! The tables of the site file, as data. Kept in the compact one-field-per-call form
//! (`rustfmt::skip`) so the whole schema reads like the reference it generates.

use super::*;
use Dflt::{Computed, Lit, Optional, Required};
use StrKind as K;

const fn f(key: &'static str, ty: Ty, default: Dflt, doc: &'static str, ex: &'static str) -> Field {
    Field {
        key,
        ty,
        default,
        doc,
        example: ex,
    }
}

#[rustfmt::skip]
const KERNEL_KEYS: [Refused; 4] = [
    Refused { key: "device", message: KERNEL_NAME_WHY, hint: KERNEL_NAME_HINT },
    Refused { key: "path", message: KERNEL_NAME_WHY, hint: KERNEL_NAME_HINT },
    Refused { key: "dev", message: KERNEL_NAME_WHY, hint: KERNEL_NAME_HINT },
    Refused { key: "name", message: KERNEL_NAME_WHY, hint: KERNEL_NAME_HINT },
];

const NO_PASSWORD: &str = "the site file never holds a clear-text password";
const HASH_INSTEAD: &str = "store a hash instead: root-password-hash = \"...\" from \
    `openssl passwd -6` or `mkpasswd -m yescrypt`";
const NIC_NOT_PATH: &str = "NICs are not named by device paths";
const NIC_KEYS: &str = "use { mac = \"...\" }, { pci = \"0000:01:00.0\" }, { name = \"enp1s0\" } \
    or { port = \"ETH1\" }";

/// `[site]`
#[rustfmt::skip]
pub static SITE: Table = Table {
    title: "[site]",
    doc: "Names and locale of the whole site.",
    refused: &[],
    fields: &[
        f("name", Ty::Str(K::SiteName), Required,
          "Short machine-friendly site name: lower-case letters, digits and `-`, starting with a letter.",
          "\"acme-hq\""),
        f("domain", Ty::Str(K::DnsName), Required,
          "The organisation's public DNS domain.", "\"acme.example\""),
        f("internal-domain", Ty::Str(K::DnsName), Lit("\"mgmt.internal\""),
          "DNS domain of the management network; node N is `tappaasN.<internal-domain>`.", ""),
        f("admin-email", Ty::Str(K::Email), Required,
          "Where Proxmox sends mail for root (updates, failed backups, ZFS events).",
          "\"it@acme.example\""),
        f("timezone", Ty::Str(K::Timezone), Lit("\"UTC\""),
          "IANA time zone, `Area/City`, or `UTC`.", "\"Europe/Copenhagen\""),
        f("keyboard", Ty::Str(K::Keyboard), Lit("\"us\""),
          "Console keyboard layout (XKB name such as `us`, `dk`, `de`, `de-ch`).", "\"dk\""),
        f("country", Ty::Str(K::Country), Lit("\"us\""),
          "Two-letter country code (ISO 3166-1).", "\"dk\""),
    ],
};

/// `[credentials]`
#[rustfmt::skip]
pub static CREDENTIALS: Table = Table {
    title: "[credentials]",
    doc: "How root logs in. The site file never holds a clear-text password: make the hash \
          with `openssl passwd -6` or `mkpasswd -m yescrypt`.",
    refused: &[
        Refused { key: "root-password", message: NO_PASSWORD, hint: HASH_INSTEAD },
        Refused { key: "password", message: NO_PASSWORD, hint: HASH_INSTEAD },
    ],
    fields: &[
        f("root-password-hash", Ty::Str(K::CryptHash), Required,
          "crypt(3) hash of the root password: `$y$` (yescrypt), `$6$` (SHA-512), `$5$` or `$2b$`.",
          "\"$6$...\""),
        f("ssh-keys", Ty::List(&Ty::Str(K::SshKey)), Lit("[]"),
          "OpenSSH public keys for root, one line each (`ssh-ed25519 AAAA... comment`).",
          "[\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... admin@laptop\"]"),
    ],
};

/// `[network.upstream]`
#[rustfmt::skip]
pub static UPSTREAM: Table = Table {
    title: "[network.upstream]",
    doc: "How the firewall's WAN side reaches the internet.",
    refused: &[],
    fields: &[
        f("mode", Ty::Enum(&["dhcp", "static"]), Lit("\"dhcp\""),
          "`dhcp`: the upstream router hands out an address. `static`: use the keys below.", ""),
        f("address", Ty::IfAddr, Optional,
          "The WAN address with prefix (required with `mode = \"static\"`).",
          "\"192.168.1.50/24\""),
        f("gateway", Ty::Ipv4, Optional,
          "The upstream router (required with `mode = \"static\"`).", "\"192.168.1.1\""),
        f("dns", Ty::List(&Ty::Ipv4), Computed("`[gateway]`"),
          "Upstream DNS servers (only with `mode = \"static\"`).", "[\"9.9.9.9\"]"),
    ],
};

/// `[network]`
#[rustfmt::skip]
pub static NETWORK: Table = Table {
    title: "[network]",
    doc: "The management network: untagged on the LAN bridge, routed by the OPNsense firewall.",
    refused: &[],
    fields: &[
        f("management", Ty::Cidr, Lit("\"10.0.0.0/24\""),
          "Management network in CIDR notation, host bits zero, /8 to /29.", ""),
        f("firewall", Ty::Ipv4, Computed("the first address of `management` (`10.0.0.1`)"),
          "The firewall's LAN address, and the nodes' gateway.", ""),
        f("dns", Ty::List(&Ty::Ipv4), Computed("`[firewall]`"),
          "DNS servers the nodes use.", ""),
        f("lan-bridge", Ty::Str(K::IfName), Lit("\"lan\""),
          "Name of the VLAN-aware LAN bridge.", ""),
        f("wan-bridge", Ty::Str(K::IfName), Lit("\"wan\""), "Name of the WAN bridge.", ""),
        f("upstream", Ty::Table(&UPSTREAM), Computed("DHCP"), "See below.", ""),
    ],
};

/// `[cluster]`
#[rustfmt::skip]
pub static CLUSTER: Table = Table {
    title: "[cluster]",
    doc: "The Proxmox cluster the nodes form.",
    refused: &[],
    fields: &[
        f("name", Ty::Str(K::ClusterName), Lit("\"TAPPaaS\""),
          "Cluster name: letters, digits and `-`, at most 15 characters (a Proxmox rule).", ""),
        f("join-secret", Ty::Str(K::JoinSecret), Optional,
          "One-time secret the other nodes join the primary's cluster with (at least 16 \
           characters). The primary makes it root's password only while nodes join, then \
           restores the `root-password-hash`; the members forget it. Needed when the site \
           has more than one node (without it `validate` warns: the nodes would stop at \
           their first boot). See docs/first-boot.md.", "\"q9V1x...\""),
        f("primary-fingerprint", Ty::Str(K::Fingerprint), Optional,
          "SHA-256 fingerprint of the primary's API certificate, pinned by every node that \
           joins. `tappaas-bootstrap fingerprint` prints it on the primary. Needed when the \
           site has more than one node, unless `primary-certificate` is given (then it is \
           computed from it, and when both are given they must agree).", "\"AB:01:...\""),
        f("primary-certificate", Ty::Str(K::Certificate), Optional,
          "The primary's API certificate, made in advance (`tappaas-installer join-keys` \
           prints it with `primary-key` and a `join-secret`): one PEM `CERTIFICATE` block. \
           The installer copies it to the primary, which serves it from its first boot, and \
           every joining node pins its fingerprint. Give both or neither of \
           `primary-certificate` and `primary-key`.",
          "\"-----BEGIN CERTIFICATE-----\\nMIIB...\\n-----END CERTIFICATE-----\\n\""),
        f("primary-key", Ty::Str(K::PrivateKey), Optional,
          "The private key of `primary-certificate`: one unencrypted PEM private key block; a \
           PKCS#8 key (what `join-keys` and `openssl genpkey` write) is checked to belong to \
           the certificate. A \
           secret, as sensitive as `join-secret`: written only to the primary (0600), never \
           logged, and removed there once Proxmox has installed it. See docs/first-boot.md.",
          "\"-----BEGIN PRIVATE KEY-----\\nMIIB...\\n-----END PRIVATE KEY-----\\n\""),
        f("join-wait-minutes", Ty::Int { min: 1, max: 10080 }, Lit("120"),
          "How long a node waits for the primary's cluster before it reports a failure (it \
           keeps retrying after that), and how long the primary keeps the join window open.", ""),
    ],
};

/// `[storage.rpool]`, `[storage.tank1]`, `[storage.tank2]`
#[rustfmt::skip]
pub static POOL: Table = Table {
    title: "[storage.rpool] / [storage.tank1] / [storage.tank2]",
    doc: "Pool name and the properties the pool is created with; the same on every node. \
          `rpool` is Proxmox's root pool on the boot disks, `tank1` the redundant VM pool \
          (replicated between nodes), `tank2` the bulk pool (backups, services that bring \
          their own redundancy).",
    refused: &[],
    fields: &[
        f("name", Ty::Str(K::PoolName), Computed("the table's key: `rpool`, `tank1`, `tank2`"),
          "Pool name. The three names must differ.", "\"tanka1\""),
        f("ashift", Ty::Int { min: 9, max: 16 }, Lit("12"),
          "log2 of the sector size ZFS writes; 12 (4 KiB) suits every current disk.", ""),
        f("compression", Ty::Str(K::Compression), Lit("\"lz4\""),
          "`lz4`, `zstd`, `zstd-1`..`zstd-19`, `gzip`, `gzip-1`..`gzip-9`, `zle`, `on`, `off`.", ""),
        f("atime", Ty::Bool, Lit("false"), "Record access times (costs writes).", ""),
        f("xattr", Ty::Enum(&["sa", "on", "dir", "off"]), Lit("\"sa\""),
          "Where extended attributes live; `sa` is fastest.", ""),
        f("autotrim", Ty::Bool, Lit("true"), "TRIM freed blocks on SSDs automatically.", ""),
        f("compatibility", Ty::Str(K::Compatibility), Lit("\"openzfs-2.1-linux\""),
          "Feature set, so older ZFS (rescue systems) can still import the pool.", ""),
    ],
};

/// `[storage]`
#[rustfmt::skip]
pub static STORAGE: Table = Table {
    title: "[storage]",
    doc: "The three pools every node may carry.",
    refused: &[],
    fields: &[
        f("rpool", Ty::Table(&POOL), Computed("defaults"), "Root pool.", ""),
        f("tank1", Ty::Table(&POOL), Computed("defaults"), "Redundant VM pool.", ""),
        f("tank2", Ty::Table(&POOL), Computed("defaults"), "Bulk / backup pool.", ""),
    ],
};

/// `identify = { ... }`
#[rustfmt::skip]
pub static IDENTIFY: Table = Table {
    title: "identify",
    doc: "How a booted machine recognises that it is this node. Give exactly one of `mac`, \
          `dmi-serial` or `profile`. Without `identify`, only `--node NAME` (or the TUI, or \
          `tappaas.node=NAME` on the kernel command line) selects the node.",
    refused: &[],
    fields: &[
        f("mac", Ty::Mac, Optional, "The machine has a NIC with this permanent MAC.",
          "\"a8:b8:e0:01:02:03\""),
        f("dmi-serial", Ty::Str(K::DmiSerial), Optional,
          "The DMI system serial (`/sys/class/dmi/id/product_serial`) equals this.",
          "\"QTM2309A0042\""),
        f("profile", Ty::Str(K::ProfileId), Optional,
          "The machine matches this hardware profile.", "\"qotom-q20300g9\""),
        f("index", Ty::Int { min: 1, max: 9 }, Computed("1 (only with `profile`)"),
          "Which of the site's nodes with this profile it is; picked by `tappaas.index=N` on \
           the kernel command line.", "2"),
    ],
};

/// `{ wan = { ... } }`: one NIC.
#[rustfmt::skip]
pub static NIC: Table = Table {
    title: "NIC selector",
    doc: "Picks one NIC. Give exactly one key.",
    refused: &[
        Refused { key: "device", message: NIC_NOT_PATH, hint: NIC_KEYS },
        Refused { key: "path", message: NIC_NOT_PATH, hint: NIC_KEYS },
    ],
    fields: &[
        f("mac", Ty::Mac, Optional, "Permanent MAC address.", "\"a8:b8:e0:01:02:03\""),
        f("name", Ty::Str(K::IfName), Optional,
          "Kernel interface name; predictable names such as `enp1s0` are stable per model, \
           `ethN` names are not.", "\"enp1s0\""),
        f("pci", Ty::Str(K::Pci), Optional, "PCI address.", "\"0000:01:00.0\""),
        f("port", Ty::Str(K::Port), Optional,
          "The hardware profile's port label (needs a profile).", "\"ETH1\""),
    ],
};

/// `[node.nics]`
#[rustfmt::skip]
pub static NICS: Table = Table {
    title: "[node.nics]",
    doc: "Which NIC is which. A role left out comes from the hardware profile's hints.",
    refused: &[],
    fields: &[
        f("wan", Ty::Table(&NIC), Computed("the profile's hint"),
          "The port to the upstream router (the firewall's WAN).", "{ port = \"ETH1\" }"),
        f("lan", Ty::Table(&NIC), Computed("the profile's hint"),
          "The port to the switch between nodes (management and VLANs).", "{ port = \"ETH2\" }"),
    ],
};

/// One disk selector.
#[rustfmt::skip]
pub static DISK: Table = Table {
    title: "disk selector",
    doc: "Picks disks, never by kernel name (`/dev/sda` changes between boots). Either one \
          identity key (`by-id`, `serial` or `wwn`), naming one disk exactly, or any mix of the \
          filter keys (`model`, `serial` with a glob, `vendor`, `transport`, `min-size`, \
          `max-size`, `rotational`, `count`), all of which must hold. A `serial` without glob \
          characters on its own is an identity; with a glob or with other filters it is a \
          filter. Globs use `*`, `?` and `[...]`, case-sensitive. A filter that matches more \
          disks than `count` is an error at plan time, never a silent choice.",
    refused: &KERNEL_KEYS,
    fields: &[
        f("by-id", Ty::Str(K::ById), Optional,
          "A `/dev/disk/by-id/` link name; the prefix may be included and is stripped.",
          "\"nvme-Samsung_SSD_980_1TB_S64ANS0T123456\""),
        f("serial", Ty::Str(K::Serial), Optional, "Serial number, exactly, or a glob.",
          "\"S64ANS0T123456\""),
        f("wwn", Ty::Str(K::Wwn), Optional, "World wide name, as udev reports it.",
          "\"0x5002538e40a1b2c3\""),
        f("model", Ty::Str(K::Glob), Optional, "Glob on the model string.", "\"Samsung*\""),
        f("vendor", Ty::Str(K::Glob), Optional, "Glob on the vendor string.", "\"ATA\""),
        f("transport", Ty::Str(K::Transport), Optional,
          "`nvme`, `sata`, `sas`, `usb`, `virtio`, `mmc`, `scsi`, or a glob over them.",
          "\"nvme\""),
        f("min-size", Ty::Size, Optional, "Smallest acceptable size.", "\"200G\""),
        f("max-size", Ty::Size, Optional, "Largest acceptable size.", "\"2T\""),
        f("rotational", Ty::Bool, Optional, "Spinning disk (`true`) or solid state (`false`).",
          "false"),
        f("count", Ty::Int { min: 1, max: 64 }, Computed("1 (filters only)"),
          "How many disks this filter must pick.", "2"),
    ],
};

/// `[node.boot]`
#[rustfmt::skip]
pub static BOOT: Table = Table {
    title: "[node.boot]",
    doc: "The boot disk(s): BIOS boot and EFI partitions plus the `rpool` partition. When \
          `[node.boot]` or its `disks` is left out, the disks come from the hardware \
          profile's hints (the node then needs a `profile`).",
    refused: &[],
    fields: &[
        f("disks", Ty::List(&Ty::Table(&DISK)), Computed("the profile's boot-disk hints"),
          "Disk selectors (see below).", "[{ transport = \"sata\", max-size = \"600G\" }]"),
        f("layout", Ty::Enum(BOOT_LAYOUTS),
          Computed("`single` for one disk, `mirror` for two"), "How the disks are combined.", ""),
        f("wipe", Ty::Bool, Lit("false"),
          "Consent to erase disks that already hold a partition table, filesystem or ZFS label.", ""),
    ],
};

/// `[node.tank1]`, `[node.tank2]`
#[rustfmt::skip]
pub static DATA: Table = Table {
    title: "[node.tank1] / [node.tank2]",
    doc: "Disks of the node's data pools. Leave the table out for no such pool on this node; \
          give the table without `disks` to take the disks from the profile's hints.",
    refused: &[],
    fields: &[
        f("disks", Ty::List(&Ty::Table(&DISK)), Computed("the profile's hints"),
          "Disk selectors (see below).", "[{ transport = \"nvme\", min-size = \"900G\" }]"),
        f("layout", Ty::Enum(DATA_LAYOUTS),
          Computed("`single` for one disk, `mirror` for two; required for more"),
          "`single` (one disk; several disks stripe: refused for tank1, a warning for tank2), \
           `mirror` (2+), `raidz1` (3+), `raidz2` (4+). Filters count `count` disks each.",
          "\"mirror\""),
        f("wipe", Ty::Bool, Lit("false"),
          "Consent to erase disks that already hold a partition table, filesystem or ZFS label.", ""),
    ],
};

/// `[[node]]`
#[rustfmt::skip]
pub static NODE: Table = Table {
    title: "[[node]]",
    doc: "One machine of the site; 1 to 9 of them. Exactly one is the `primary` (it creates \
          the cluster and runs the firewall); at most one is the `backup`. A 3-node site is a \
          primary, a member and a backup.",
    refused: &[Refused { key: "hostname", message: "the node's host name is `name`",
        hint: "write name = \"tappaas1\"" }],
    fields: &[
        f("name", Ty::Str(K::Hostname), Computed("`tappaas<id>`"),
          "Host name: lower-case letters, digits and `-`.", "\"tappaas1\""),
        f("id", Ty::Int { min: 1, max: 9 }, Computed("the node's position in the file, from 1"),
          "Node number: corosync node id and the default address.", "1"),
        f("role", Ty::Enum(ROLES), Required,
          "`primary` creates the cluster and runs the firewall and platform VMs; `member` \
           joins it; `backup` is the small quorum node running Proxmox Backup Server on tank2.",
          "\"primary\""),
        f("profile", Ty::Str(K::ProfileId), Computed("the `identify` profile, if any"),
          "Hardware profile id: enables the profile's NIC and disk hints.", "\"qotom-q20300g9\""),
        f("address", Ty::Ipv4, Computed("management network + 9 + id (`10.0.0.10` for id 1)"),
          "Management address.", "\"10.0.0.10\""),
        f("replace", Ty::Bool, Lit("false"),
          "This machine replaces a failed node of the same name and rejoins the cluster. A \
           replaced primary joins through a surviving node, which needs `api-fingerprint`. \
           See docs/first-boot.md.", ""),
        f("api-fingerprint", Ty::Str(K::Fingerprint), Optional,
          "SHA-256 fingerprint of this node's API certificate (public). A replacement primary \
           joins the cluster through the first other node, by `id`, that has one, and sends the \
           join secret only to a server with that certificate. \
           `tappaas-bootstrap join-window open` on that node prints the line to add. On the \
           primary it must equal the cluster's pinned fingerprint (`primary-fingerprint`, or \
           that of `primary-certificate`) when both are given.", "\"AB:01:...\""),
        f("identify", Ty::Table(&IDENTIFY), Computed("none: chosen by `--node NAME`"),
          "How the machine recognises itself (see below).", "{ mac = \"a8:b8:e0:01:02:03\" }"),
        f("nics", Ty::Table(&NICS), Computed("the profile's hints"), "See below.", ""),
        f("boot", Ty::Table(&BOOT), Computed("the profile's hints"), "See below.", ""),
        f("tank1", Ty::Table(&DATA), Optional, "See below. Left out: no tank1 on this node.", ""),
        f("tank2", Ty::Table(&DATA), Optional, "See below. Left out: no tank2 on this node.", ""),
    ],
};

/// The whole file.
#[rustfmt::skip]
pub static ROOT: Table = Table {
    title: "top level",
    doc: "",
    refused: &[],
    fields: &[
        f("version", Ty::Int { min: 0, max: 1_000_000 }, Required,
          "Site-file format version; only `1` exists.", "1"),
        f("site", Ty::Table(&SITE), Required, "See below.", ""),
        f("credentials", Ty::Table(&CREDENTIALS), Required, "See below.", ""),
        f("network", Ty::Table(&NETWORK), Computed("defaults"), "See below.", ""),
        f("cluster", Ty::Table(&CLUSTER), Computed("defaults"), "See below.", ""),
        f("storage", Ty::Table(&STORAGE), Computed("defaults"), "See below.", ""),
        f("node", Ty::Tables(&NODE), Required, "See below.", ""),
    ],
};
