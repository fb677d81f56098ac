//! Invalid site files, each with the exact diagnostics it must produce: severity, path, line,
//! column (0 = not checked) and a phrase of the message (and of the hint, when given).
//!
//! Line numbers are part of the contract: the helpers below build files whose layout is fixed
//! (`doc` puts the optional `[site]` extra lines from line 6 on), so every expectation can be
//! read off the source.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use tappaas_site::{parse_with_warnings, render_all, Diagnostic, ParseOptions, Severity};

const HASH: &str = "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/";

/// Lines 1-5: version and [site]; then `site_extra`; then [credentials] (2 lines); then `rest`.
fn doc(site_extra: &str, rest: &str) -> String {
    format!(
        "version = 1\n[site]\nname = \"acme\"\ndomain = \"acme.example\"\n\
         admin-email = \"it@acme.example\"\n{site_extra}[credentials]\n\
         root-password-hash = \"{HASH}\"\n{rest}"
    )
}

/// A valid site from lines 1-7 and `rest` from line 8.
fn with(rest: &str) -> String {
    doc("", rest)
}

/// A valid single primary node: 6 lines (8-13 when it comes first).
const P: &str = "[[node]]\nrole = \"primary\"\n[node.boot]\ndisks = [{ serial = \"B1\" }]\n\
                 [node.tank1]\ndisks = [{ serial = \"T1\" }, { serial = \"T2\" }]\n";

/// A primary node whose `[[node]]` table has the extra lines `extra` (from line 10), then
/// [node.boot] with `boot`, then [node.tank1] with `tank1`.
fn pnode(extra: &str, boot: &str, tank1: &str) -> String {
    format!("[[node]]\nrole = \"primary\"\n{extra}[node.boot]\n{boot}\n[node.tank1]\n{tank1}\n")
}

const B1: &str = "disks = [{ serial = \"B1\" }]";
const T12: &str = "disks = [{ serial = \"T1\" }, { serial = \"T2\" }]";

/// A node with a profile (so no disks needed): `[[node]]`, role, profile, `extra`, then
/// [node.tank1] (or [node.tank2] for a backup). 4 lines plus `extra`.
fn node(role: &str, extra: &str) -> String {
    let pool = if role == "backup" { "tank2" } else { "tank1" };
    format!("[[node]]\nrole = \"{role}\"\nprofile = \"p\"\n{extra}[node.{pool}]\n")
}

/// Three valid nodes with extras: primary from line 8.
fn trio(e0: &str, e1: &str, e2: &str) -> String {
    with(&format!(
        "{}{}{}",
        node("primary", e0),
        node("member", e1),
        node("backup", e2)
    ))
}

/// A test-only certificate and its key (made with openssl; never used outside the tests).
const CERT: &str = include_str!("data/primary.pem");
const KEY: &str = include_str!("data/primary.key");
/// The certificate's fingerprint, as `openssl x509 -noout -fingerprint -sha256` prints it.
const CERT_FP: &str = "FB:12:6F:27:0B:78:B5:B3:65:62:84:0E:81:22:E9:93:D7:B5:20:F5:F8:39:A0:91:22:15:07:85:CB:C2:FA:24";

/// `s` as a one-line TOML string (newlines escaped), so the file's line numbers stay fixed.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\n', "\\n"))
}

struct Want {
    sev: Severity,
    path: &'static str,
    line: u32,
    col: u32,
    phrase: &'static str,
    hint: &'static str,
}

fn e(path: &'static str, line: u32, col: u32, phrase: &'static str) -> Want {
    Want {
        sev: Severity::Error,
        path,
        line,
        col,
        phrase,
        hint: "",
    }
}

fn w(path: &'static str, line: u32, col: u32, phrase: &'static str) -> Want {
    Want {
        sev: Severity::Warning,
        path,
        line,
        col,
        phrase,
        hint: "",
    }
}

/// What a site of several nodes without `[cluster]` `join-secret` also draws (at line 1 when
/// the file has no `[cluster]` table).
fn no_join_secret() -> Want {
    w("cluster.join-secret", 1, 1, "no join-secret").hint("join-keys")
}

impl Want {
    fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }
    fn matches(&self, d: &Diagnostic) -> bool {
        d.severity == self.sev
            && d.path == self.path
            && d.pos.line == self.line
            && (self.col == 0 || d.pos.col == self.col)
            && d.message.contains(self.phrase)
            && (self.hint.is_empty() || d.hint.as_deref().is_some_and(|h| h.contains(self.hint)))
    }
    fn show(&self) -> String {
        format!(
            "{}:{}: {:?}: {}: ..{}.. hint ..{}..",
            self.line, self.col, self.sev, self.path, self.phrase, self.hint
        )
    }
}

struct Case {
    name: &'static str,
    src: String,
    opts: ParseOptions,
    want: Vec<Want>,
}

fn case(name: &'static str, src: String, want: Vec<Want>) -> Case {
    Case {
        name,
        src,
        opts: ParseOptions::default(),
        want,
    }
}

fn cases() -> Vec<Case> {
    [file_cases(), network_cases(), storage_cases(), node_cases()]
        .into_iter()
        .flatten()
        .collect()
}

/// Cases: syntax, version, keys, credentials and [site] values.
fn file_cases() -> Vec<Case> {
    let hash_cut = &HASH[..HASH.len() - 10];
    vec![
        // --- TOML syntax: all errors, with positions -------------------------------------------
        case("syntax: unclosed string", with(P).replace("name = \"acme\"", "name = \"acme"),
            vec![e("", 3, 13, "TOML syntax").hint("close the string")]),
        case("syntax: two errors on two lines",
            with(P).replace("name = \"acme\"", "name = \"acme").replace("role = \"primary\"", "role = primary"),
            vec![e("", 3, 13, "TOML syntax"), e("", 9, 8, "TOML syntax").hint("quotes")]),
        case("syntax: table defined twice", with(&format!("[site]\nx = 1\n{P}")),
            vec![e("", 8, 2, "duplicate key `site`")]),
        // --- version ------------------------------------------------------------------------------
        case("version 2", with(P).replacen("version = 1", "version = 2", 1),
            vec![e("version", 1, 11, "unsupported site file version 2")]),
        case("version missing", with(P).replacen("version = 1", "#", 1),
            vec![e("version", 1, 1, "missing required key `version`").hint("version = 1")]),
        case("version as string", with(P).replacen("version = 1", "version = \"1\"", 1),
            vec![e("version", 1, 11, "expected an integer, found a string").hint("write 1 without quotes")]),
        // --- unknown and misplaced keys ------------------------------------------------------------
        case("unknown top-level table", with(&format!("{P}[clustr]\nname = \"x\"\n")),
            vec![e("clustr", 14, 2, "unknown key `clustr` at the top level").hint("did you mean `cluster`?")]),
        case("typo in [site]", with(P).replace("domain =", "domian ="),
            vec![e("site.domain", 2, 1, "missing required key `domain`"),
                 e("site.domian", 4, 1, "unknown key `domian` in [site]").hint("did you mean `domain`?")]),
        case("snake_case key", with(P).replace("admin-email", "admin_email"),
            vec![e("site.admin-email", 2, 1, "missing required key `admin-email`"),
                 e("site.admin_email", 5, 1, "unknown key").hint("kebab-case: did you mean `admin-email`?")]),
        case("key in the wrong table", with(&format!("[network]\ntimezone = \"UTC\"\n{P}")),
            vec![e("network.timezone", 9, 1, "unknown key `timezone` in [network]").hint("belongs in [site]")]),
        case("unknown key in a disk selector",
            with(&pnode("", "disks = [{ serail = \"B1\" }]", T12)),
            vec![e("node[0].boot.disks[0].serail", 11, 12, "unknown key").hint("did you mean `serial`?")]),
        case("hostname instead of name", with(&node("primary", "hostname = \"tappaas1\"\n")),
            vec![e("node[0].hostname", 11, 1, "host name is `name`")]),
        // --- credentials -----------------------------------------------------------------------------
        case("missing [credentials]",
            format!("version = 1\n[site]\nname = \"acme\"\ndomain = \"acme.example\"\nadmin-email = \"it@acme.example\"\n{P}"),
            vec![e("credentials", 1, 1, "missing table [credentials]")]),
        case("clear-text password", with(P).replace(HASH, "hunter2"),
            vec![e("credentials.root-password-hash", 7, 22, "clear-text password").hint("openssl passwd -6")]),
        case("root-password key", with(P).replace(&format!("root-password-hash = \"{HASH}\""), "root-password = \"x\""),
            vec![e("credentials.root-password-hash", 6, 1, "missing required key"),
                 e("credentials.root-password", 7, 1, "never holds a clear-text password").hint("mkpasswd -m yescrypt")]),
        case("truncated hash", with(P).replace(HASH, hash_cut),
            vec![e("credentials.root-password-hash", 7, 22, "malformed $6$ hash").hint("openssl passwd -6")]),
        case("unknown hash scheme", with(P).replace(HASH, "$9$abc$def"),
            vec![e("credentials.root-password-hash", 7, 22, "unknown hash scheme $9$")]),
        case("truncated ssh key", with(&format!("ssh-keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICs4Fy8p\"]\n{P}")),
            vec![e("credentials.ssh-keys[0]", 8, 13, "wrong length")]),
        case("private key pasted", with(&format!("ssh-keys = [\"-----BEGIN OPENSSH PRIVATE KEY-----\"]\n{P}")),
            vec![e("credentials.ssh-keys[0]", 8, 13, "PRIVATE key").hint(".pub")]),
        case("ssh-keys as a string", with(&format!("ssh-keys = \"ssh-ed25519 AAAA\"\n{P}")),
            vec![e("credentials.ssh-keys", 8, 12, "expected an array, found a string").hint("[\"ssh-ed25519 AAAA\"]")]),
        // --- [site] values ------------------------------------------------------------------------
        case("bad e-mail", with(P).replace("it@acme.example", "it-at-acme"),
            vec![e("site.admin-email", 5, 15, "not an e-mail address")]),
        case("time zone abbreviation", doc("timezone = \"CET\"\n", P),
            vec![e("site.timezone", 6, 12, "`CET` is not a time zone").hint("Area/City")]),
        case("time zone area in lower case", doc("timezone = \"europe/Copenhagen\"\n", P),
            vec![e("site.timezone", 6, 12, "unknown area `europe`").hint("did you mean \"Europe/Copenhagen\"?")]),
        case("site name with capitals", with(P).replace("name = \"acme\"", "name = \"Acme\""),
            vec![e("site.name", 3, 8, "upper-case").hint("write \"acme\"")]),
        case("country uk", doc("country = \"uk\"\n", P),
            vec![e("site.country", 6, 11, "not an ISO 3166 country code").hint("\"gb\"")]),
        case("domain without a dot", with(P).replace("acme.example\"\nadmin", "acme\"\nadmin"),
            vec![e("site.domain", 4, 10, "not a DNS domain")]),
    ]
}

/// Cases: network, addresses, duplicates, roles.
fn network_cases() -> Vec<Case> {
    vec![
        // --- network --------------------------------------------------------------------------------
        case("management with host bits", with(&format!("[network]\nmanagement = \"10.0.0.5/24\"\n{P}")),
            vec![e("network.management", 9, 14, "host bits set").hint("\"10.0.0.0/24\"")]),
        case("firewall outside the network", with(&format!("[network]\nfirewall = \"10.0.1.1\"\n{P}")),
            vec![e("network.firewall", 9, 12, "outside the management network 10.0.0.0/24")]),
        case("firewall is the network address", with(&format!("[network]\nfirewall = \"10.0.0.0\"\n{P}")),
            vec![e("network.firewall", 9, 12, "the network address")]),
        case("firewall as IPv6", with(&format!("[network]\nfirewall = \"fd00::1\"\n{P}")),
            vec![e("network.firewall", 9, 12, "IPv6")]),
        case("empty dns list", with(&format!("[network]\ndns = []\n{P}")),
            vec![e("network.dns", 9, 7, "no DNS servers")]),
        case("same bridge twice", with(&format!("[network]\nwan-bridge = \"lan\"\n{P}")),
            vec![e("network.wan-bridge", 9, 14, "same name")]),
        case("static upstream without gateway",
            with(&format!("[network.upstream]\nmode = \"static\"\naddress = \"192.168.1.50/24\"\n{P}")),
            vec![e("network.upstream.gateway", 9, 8, "needs `gateway`")]),
        case("static keys with dhcp",
            with(&format!("[network.upstream]\nmode = \"dhcp\"\ngateway = \"192.168.1.1\"\n{P}")),
            vec![e("network.upstream.gateway", 10, 11, "only applies with mode = \"static\"")]),
        case("upstream overlaps management",
            with(&format!("[network.upstream]\nmode = \"static\"\naddress = \"10.0.0.200/16\"\ngateway = \"10.0.0.1\"\n{P}")),
            vec![e("network.upstream.address", 10, 11, "overlaps the management network")]),
        case("upstream mode typo", with(&format!("[network.upstream]\nmode = \"statik\"\n{P}")),
            vec![e("network.upstream.mode", 9, 8, "not one of").hint("did you mean \"static\"?")]),
        // --- node addresses -------------------------------------------------------------------------
        case("node address outside the network", with(&pnode("address = \"10.1.0.10\"\n", B1, T12)),
            vec![e("node[0].address", 10, 11, "outside the management network")]),
        case("node address is the broadcast address", with(&pnode("address = \"10.0.0.255\"\n", B1, T12)),
            vec![e("node[0].address", 10, 11, "the broadcast address")]),
        case("node address is the firewall", with(&pnode("address = \"10.0.0.1\"\n", B1, T12)),
            vec![e("node[0].address", 10, 11, "the firewall's address")]),
        case("no default address in a small network",
            with(&format!("[network]\nmanagement = \"10.0.0.0/28\"\n{}", node("primary", "id = 9\n"))),
            vec![e("node[0].address", 10, 1, "no default address").hint("set address")]),
        // --- duplicates -------------------------------------------------------------------------------
        case("duplicate names", trio("name = \"a\"\n", "name = \"a\"\n", ""),
            vec![no_join_secret(), e("node[1].name", 16, 8, "duplicate node name `a`: node[0].name has it too (line 11)")]),
        case("duplicate ids (one by default)", trio("id = 2\n", "", ""),
            vec![no_join_secret(), e("node[1].id", 13, 1, "duplicate node id 2 (by default)")]),
        case("duplicate addresses", trio("", "address = \"10.0.0.10\"\n", ""),
            vec![no_join_secret(), e("node[1].address", 15, 11, "duplicate address 10.0.0.10")]),
        case("duplicate MAC across nodes",
            trio("identify = { mac = \"a8:b8:e0:01:02:03\" }\n", "nics = { wan = { mac = \"A8:B8:E0:01:02:03\" } }\n", ""),
            vec![no_join_secret(), e("node[1].nics.wan.mac", 16, 24, "duplicate MAC a8:b8:e0:01:02:03")]),
        case("duplicate identify profile and index",
            trio("identify = { profile = \"p\" }\n", "identify = { profile = \"p\" }\n", ""),
            vec![no_join_secret(), e("node[1].identify", 16, 12, "duplicate identify (profile `p`, index 1)").hint("tappaas.index")]),
        // --- roles and node count -----------------------------------------------------------------------
        case("no primary", with(&format!("{}{}{}", node("member", ""), node("member", ""), node("backup", ""))),
            vec![no_join_secret(), e("node[0].role", 8, 1, "no node has role = \"primary\"")]),
        case("two primaries", with(&format!("{}{}{}", node("primary", ""), node("primary", ""), node("backup", ""))),
            vec![no_join_secret(), e("node[1].role", 13, 8, "a second primary: node[0] (tappaas1, line 8) is already the primary")]),
        case("two backups", with(&format!("{}{}{}", node("primary", ""), node("backup", ""), node("backup", ""))),
            vec![no_join_secret(), e("node[2].role", 17, 8, "a second backup node: node[1] (tappaas2, line 12)")]),
        case("role missing", with("[[node]]\nprofile = \"p\"\n[node.tank1]\n"),
            vec![e("node[0].role", 8, 1, "missing required key `role`")]),
        case("role typo", with(&node("primery", "")),
            vec![e("node[0].role", 9, 8, "not one of").hint("did you mean \"primary\"?")]),
        case("[node] instead of [[node]]", with("[node]\nrole = \"primary\"\n"),
            vec![e("node", 8, 1, "expected an array of tables, found a table").hint("double brackets")]),
        case("empty node array", with("").replacen("version = 1\n", "version = 1\nnode = []\n", 1),
            vec![e("node", 2, 8, "the site has no nodes")]),
        case("top-level key after a table", with(&format!("{P}cluster-name = \"x\"\n")),
            vec![e("node[0].tank1.cluster-name", 14, 1, "unknown key `cluster-name` in [node.tank1] / [node.tank2]")]),
        case("no nodes at all", with(""),
            vec![e("node", 1, 1, "no [[node]] entries")]),
        case("ten nodes", with(&format!("{}{}{}", node("primary", ""), node("member", "").repeat(8), node("backup", ""))),
            vec![no_join_secret(), e("node[9]", 44, 1, "10 nodes: a site has at most 9")]),
        case("id out of range", with(&node("primary", "id = 0\n")),
            vec![e("node[0].id", 11, 6, "0 is out of range: must be 1 to 9")]),
        case("id as a string", with(&node("primary", "id = \"2\"\n")),
            vec![e("node[0].id", 11, 6, "expected an integer").hint("write 2 without quotes")]),
        case("node name with underscore", with(&node("primary", "name = \"tappaas_1\"\n")),
            vec![e("node[0].name", 11, 8, "not a valid host name")]),
    ]
}

/// Cases: cluster, pools, layouts and disk selectors.
fn storage_cases() -> Vec<Case> {
    vec![
        // --- cluster and pools ----------------------------------------------------------------------------
        case("cluster name too long", with(&format!("{P}[cluster]\nname = \"this-name-is-too-long\"\n")),
            vec![e("cluster.name", 15, 8, "at most 15")]),
        case("cluster name with underscore", with(&format!("{P}[cluster]\nname = \"my_cluster\"\n")),
            vec![e("cluster.name", 15, 8, "not a valid cluster name")]),
        case("pool names clash", with(&format!("{P}[storage.tank2]\nname = \"tank1\"\n")),
            vec![e("storage.tank2.name", 15, 8, "also the name of tank1")]),
        case("reserved pool name", with(&format!("{P}[storage.tank1]\nname = \"mirror\"\n")),
            vec![e("storage.tank1.name", 15, 8, "reserved by ZFS")]),
        case("pool name starting with a digit", with(&format!("{P}[storage.tank1]\nname = \"1tank\"\n")),
            vec![e("storage.tank1.name", 15, 8, "not a ZFS pool name")]),
        case("pool name c0", with(&format!("{P}[storage.tank2]\nname = \"c0d1\"\n")),
            vec![e("storage.tank2.name", 15, 8, "reserved by ZFS")]),
        case("ashift out of range", with(&format!("{P}[storage.rpool]\nashift = 20\n")),
            vec![e("storage.rpool.ashift", 15, 10, "must be 9 to 16")]),
        // --- layouts ---------------------------------------------------------------------------------------
        case("mirror with one disk", with(&pnode("", "disks = [{ serial = \"B1\" }]\nlayout = \"mirror\"", T12)),
            vec![e("node[0].boot.layout", 12, 10, "layout mirror needs at least 2 disks, but 1 is given")]),
        case("raidz1 with a filter of two", with(&pnode("", B1, "disks = [{ transport = \"nvme\", count = 2 }]\nlayout = \"raidz1\"")),
            vec![e("node[0].tank1.layout", 14, 10, "raidz1 needs at least 3 disks, but 2 are given")]),
        case("three disks without a layout", with(&pnode("", B1, "disks = [{ transport = \"nvme\", count = 3 }]")),
            vec![e("node[0].tank1.layout", 13, 9, "3 disks and no layout").hint("raidz1")]),
        case("tank1 stripe", with(&pnode("", B1, "disks = [{ serial = \"T1\" }, { serial = \"T2\" }]\nlayout = \"single\"")),
            vec![e("node[0].tank1.layout", 14, 10, "make a stripe")]),
        case("boot raidz1", with(&pnode("", "disks = [{ serial = \"B1\" }]\nlayout = \"raidz1\"", T12)),
            vec![e("node[0].boot.layout", 12, 10, "not one of \"single\", \"mirror\"")]),
        case("three boot disks", with(&pnode("", "disks = [{ serial = \"B1\" }, { serial = \"B2\" }, { serial = \"B3\" }]\nlayout = \"mirror\"", T12)),
            vec![e("node[0].boot.layout", 12, 10, "one disk or a mirror of two, not 3")]),
        // --- disk selectors ---------------------------------------------------------------------------------
        case("same serial in two roles", with(&pnode("", B1, "disks = [{ serial = \"B1\" }, { serial = \"T2\" }]")),
            vec![e("node[0].tank1.disks[0]", 13, 10, "serial `B1` is used twice on this node: node[0].boot.disks[0]")]),
        case("kernel name as a string", with(&pnode("", "disks = [\"/dev/sda\"]", T12)),
            vec![e("node[0].boot.disks[0]", 11, 10, "kernel device names").hint("by-id")]),
        case("bare kernel name", with(&pnode("", "disks = [\"nvme0n1\"]", T12)),
            vec![e("node[0].boot.disks[0]", 11, 10, "kernel device names")]),
        case("model naming a device path", with(&pnode("", "disks = [{ model = \"/dev/sda\" }]", T12)),
            vec![e("node[0].boot.disks[0].model", 11, 20, "kernel device names")]),
        case("device key", with(&pnode("", "disks = [{ device = \"/dev/sdb\" }]", T12)),
            vec![e("node[0].boot.disks[0].device", 11, 12, "kernel device names")]),
        case("by-id naming a kernel device", with(&pnode("", "disks = [{ by-id = \"/dev/nvme0n1\" }]", T12)),
            vec![e("node[0].boot.disks[0].by-id", 11, 20, "kernel device names")]),
        case("by-id naming a partition", with(&pnode("", "disks = [{ by-id = \"ata-X-part1\" }]", T12)),
            vec![e("node[0].boot.disks[0].by-id", 11, 20, "names a partition").hint("\"ata-X\"")]),
        case("selector as a plain string", with(&pnode("", "disks = [\"ata-Samsung_X\"]", T12)),
            vec![e("node[0].boot.disks[0]", 11, 10, "expected a table, found a string").hint("{ by-id = \"ata-Samsung_X\" }")]),
        case("empty disk list", with(&pnode("", "disks = []", T12)),
            vec![e("node[0].boot.disks", 11, 9, "empty disk list")]),
        case("no boot disks and no profile", with("[[node]]\nrole = \"primary\"\n[node.tank1]\ndisks = [{ serial = \"T1\" }, { serial = \"T2\" }]\n"),
            vec![e("node[0].boot.disks", 8, 1, "no boot disks, and the node has no hardware profile")]),
        case("bad size suffix", with(&pnode("", "disks = [{ min-size = \"200X\" }]", T12)),
            vec![e("node[0].boot.disks[0].min-size", 11, 23, "unknown size suffix `X`")]),
        case("min-size above max-size", with(&pnode("", "disks = [{ min-size = \"2T\", max-size = \"1T\" }]", T12)),
            vec![e("node[0].boot.disks[0].max-size", 11, 40, "max-size 1T is smaller than min-size 2T")]),
        case("count with by-id", with(&pnode("", "disks = [{ by-id = \"ata-X\", count = 2 }]", T12)),
            vec![e("node[0].boot.disks[0]", 11, 10, "cannot be combined with filters (count)")]),
        case("by-id and wwn together", with(&pnode("", "disks = [{ by-id = \"ata-X\", wwn = \"0x5000\" }]", T12)),
            vec![e("node[0].boot.disks[0]", 11, 10, "by-id and wwn together")]),
        case("transport ssd", with(&pnode("", "disks = [{ transport = \"ssd\" }]", T12)),
            vec![e("node[0].boot.disks[0].transport", 11, 24, "not a transport").hint("rotational = false")]),
        case("unclosed glob", with(&pnode("", "disks = [{ model = \"WD[\" }]", T12)),
            vec![e("node[0].boot.disks[0].model", 11, 20, "never closed")]),
        case("boolean as a string", with(&pnode("", "disks = [{ serial = \"B1\" }]\nwipe = \"yes\"", T12)),
            vec![e("node[0].boot.wipe", 12, 8, "expected a boolean, found a string").hint("write true")]),
        case("wwn with by-id prefix", with(&pnode("", "disks = [{ wwn = \"wwn-0x5000c500a1b2c3d4\" }]", T12)),
            vec![e("node[0].boot.disks[0].wwn", 11, 18, "is a by-id name, not a WWN")]),
    ]
}

/// Cases: profiles, identify, NICs, the primary's certificate, several problems, warnings.
fn node_cases() -> Vec<Case> {
    let profiles = ParseOptions {
        known_profiles: vec!["qotom-q20300g9".into(), "lenovo-m720q".into()],
    };
    vec![
        // --- profiles, identify, NICs -------------------------------------------------------------------------
        Case { opts: profiles.clone(), ..case("unknown profile", with(&node("primary", "").replace("\"p\"", "\"qotom-q20300g8\"")),
            vec![e("node[0].profile", 10, 11, "unknown hardware profile `qotom-q20300g8`").hint("did you mean \"qotom-q20300g9\"?")]) },
        case("identify index 0", with(&node("primary", "identify = { profile = \"p\", index = 0 }\n")),
            vec![e("node[0].identify.index", 11, 37, "0 is out of range")]),
        case("identify with two kinds", with(&node("primary", "identify = { mac = \"a8:b8:e0:01:02:03\", dmi-serial = \"X1\" }\n")),
            vec![e("node[0].identify", 11, 12, "not mac and dmi-serial")]),
        case("identify index without profile", with(&node("primary", "identify = { mac = \"a8:b8:e0:01:02:03\", index = 2 }\n")),
            vec![e("node[0].identify.index", 11, 49, "only applies with `profile`")]),
        case("identify and profile disagree", with(&node("primary", "identify = { profile = \"q\" }\n")),
            vec![e("node[0].identify.profile", 11, 12, "identify names profile `q` but the node's profile is `p`")]),
        case("multicast MAC", with(&node("primary", "identify = { mac = \"01:00:5e:00:00:01\" }\n")),
            vec![e("node[0].identify.mac", 11, 20, "multicast")]),
        case("port without profile", with(&pnode("nics = { wan = { port = \"ETH1\" } }\n", B1, T12)),
            vec![e("node[0].nics.wan.port", 10, 25, "come from a hardware profile")]),
        case("wan and lan the same", with(&node("primary", "nics = { wan = { name = \"enp1s0\" }, lan = { name = \"enp1s0\" } }\n")),
            vec![e("node[0].nics.lan", 11, 43, "wan and lan name the same NIC")]),
        case("NIC with two keys", with(&node("primary", "nics = { wan = { name = \"enp1s0\", pci = \"0000:01:00.0\" } }\n")),
            vec![e("node[0].nics.wan", 11, 16, "not name and pci")]),
        case("NIC by device path", with(&node("primary", "nics = { lan = { device = \"/dev/eth0\" } }\n")),
            vec![e("node[0].nics.lan.device", 11, 18, "not named by device paths")]),
        case("bad PCI address", with(&node("primary", "nics = { lan = { pci = \"1:0\" } }\n")),
            vec![e("node[0].nics.lan.pci", 11, 24, "not a PCI address")]),
        // --- [cluster]: the primary's certificate and key ------------------------------------------------------
        case("certificate without key", with(&format!("[cluster]\nprimary-certificate = {}\n{P}", toml_str(CERT))),
            vec![e("cluster.primary-key", 9, 0, "primary-certificate is given without primary-key").hint("join-keys")]),
        case("key without certificate", with(&format!("[cluster]\nprimary-key = {}\n{P}", toml_str(KEY))),
            vec![e("cluster.primary-certificate", 9, 0, "primary-key is given without primary-certificate").hint("give both")]),
        case("two certificates in one", with(&format!("[cluster]\nprimary-certificate = {}\nprimary-key = {}\n{P}", toml_str(&format!("{CERT}{CERT}")), toml_str(KEY))),
            vec![e("cluster.primary-certificate", 9, 23, "the certificate holds 2 PEM blocks").hint("-----BEGIN CERTIFICATE-----")]),
        case("key pasted as the certificate", with(&format!("[cluster]\nprimary-certificate = {}\nprimary-key = {}\n{P}", toml_str(KEY), toml_str(KEY))),
            vec![e("cluster.primary-certificate", 9, 23, "is a PEM `PRIVATE KEY` block, not a `CERTIFICATE`")]),
        case("certificate pasted as the key", with(&format!("[cluster]\nprimary-certificate = {}\nprimary-key = {}\n{P}", toml_str(CERT), toml_str(CERT))),
            vec![e("cluster.primary-key", 10, 15, "the private key is a PEM `CERTIFICATE` block, not a `PRIVATE KEY`")]),
        case("certificate with broken base64", with(&format!("[cluster]\nprimary-certificate = {}\nprimary-key = {}\n{P}", toml_str(&CERT.replacen("MII", "M*I", 1)), toml_str(KEY))),
            vec![e("cluster.primary-certificate", 9, 23, "not valid base64")]),
        case("certificate without its END line", with(&format!("[cluster]\nprimary-certificate = {}\nprimary-key = {}\n{P}", toml_str(CERT.trim_end().trim_end_matches("-----END CERTIFICATE-----")), toml_str(KEY))),
            vec![e("cluster.primary-certificate", 9, 23, "does not end with `-----END CERTIFICATE-----`")]),
        case("fingerprint that is not the certificate's",
            with(&format!("[cluster]\nprimary-fingerprint = \"{}\"\nprimary-certificate = {}\nprimary-key = {}\n{P}", vec!["AB"; 32].join(":"), toml_str(CERT), toml_str(KEY))),
            vec![e("cluster.primary-fingerprint", 9, 23, CERT_FP).hint("leave primary-fingerprint out")]),
        // --- several problems at once ---------------------------------------------------------------------------
        case("three unrelated errors, all reported",
            with(&format!("[network]\nmanagement = \"10.0.0.0/33\"\n{}", node("primery", "id = 12\n"))).replace("it@acme.example", "nobody"),
            vec![e("site.admin-email", 5, 15, "not an e-mail address"),
                 e("network.management", 9, 14, "not a prefix length"),
                 e("node[0].role", 11, 8, "not one of"),
                 e("node[0].id", 13, 6, "out of range")]),
        // --- warnings -------------------------------------------------------------------------------------------
        case("tank1 on one disk (one node)", with(&pnode("", B1, "disks = [{ serial = \"T1\" }]")),
            vec![w("node[0].tank1.layout", 12, 1, "no redundancy; a failed disk loses the VMs")]),
        case("tank1 on one disk (three nodes)",
            with(&format!("{}{}{}", pnode("", B1, "disks = [{ serial = \"T1\" }]"), node("member", ""), node("backup", ""))),
            vec![no_join_secret(), w("node[0].tank1.layout", 12, 1, "replication between nodes only")]),
        case("tank2 stripe", with(&format!("{P}[node.tank2]\ndisks = [{{ serial = \"D1\" }}, {{ serial = \"D2\" }}]\nlayout = \"single\"\n")),
            vec![w("node[0].tank2.layout", 16, 10, "make a stripe")]),
        case("two nodes, no backup", with(&format!("{}{}", node("primary", ""), node("member", ""))),
            vec![no_join_secret(), w("node", 8, 1, "loses quorum")]),
        case("ethN interface name", with(&node("primary", "nics = { wan = { name = \"eth0\" } }\n")),
            vec![w("node[0].nics.wan.name", 11, 25, "probe order")]),
        case("placeholder DMI serial", with(&node("primary", "identify = { dmi-serial = \"To Be Filled By O.E.M.\" }\n")),
            vec![w("node[0].identify.dmi-serial", 11, 27, "placeholder")]),
        case("three nodes, [cluster] without join-secret", with(&format!("[cluster]\nname = \"c1\"\n{}{}{}", node("primary", ""), node("member", ""), node("backup", ""))),
            vec![w("cluster.join-secret", 8, 1, "3 nodes and no join-secret").hint("join-keys")]),
        case("backup node without tank2", with(&format!("{}{}{}", node("primary", ""), node("member", ""), "[[node]]\nrole = \"backup\"\nprofile = \"p\"\n")),
            vec![no_join_secret(), w("node[2].tank2", 16, 1, "Proxmox Backup Server has no datastore")]),
    ]
}

#[test]
fn invalid_site_files_report_exact_diagnostics() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (site, diags) = parse_with_warnings(&c.src, &c.opts);
        let errors_expected = c.want.iter().any(|w| w.sev == Severity::Error);
        let mut problems = Vec::new();
        if site.is_some() == errors_expected {
            problems.push(format!(
                "valid = {}, expected {}",
                site.is_some(),
                !errors_expected
            ));
        }
        if diags.len() != c.want.len() {
            problems.push(format!(
                "{} diagnostics, expected {}",
                diags.len(),
                c.want.len()
            ));
        }
        for (i, want) in c.want.iter().enumerate() {
            if !diags.get(i).is_some_and(|d| want.matches(d)) {
                problems.push(format!("expected #{i}: {}", want.show()));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "--- {}:\n  {}\n  got:\n{}",
                c.name,
                problems.join("\n  "),
                render_all(&diags, "site.toml")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn clear_text_password_is_never_echoed() {
    let src = with(P).replace(HASH, "correct horse battery staple");
    let diags = tappaas_site::parse(&src, &ParseOptions::default()).unwrap_err();
    let all = render_all(&diags, "site.toml");
    assert!(!all.contains("horse"), "{all}");
}

#[test]
fn rendering_has_file_line_col_path_message_and_hint() {
    let src = with(P).replace("it@acme.example", "nobody");
    let diags = tappaas_site::parse(&src, &ParseOptions::default()).unwrap_err();
    assert_eq!(
        diags[0].render("site.toml"),
        "site.toml:5:15: error: site.admin-email: `nobody` is not an e-mail address\n  hint: write e.g. \"it@acme.example\""
    );
}
