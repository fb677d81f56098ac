//! Checks for network values and sizes: IPv4 addresses, networks, interface addresses, MACs.

use crate::check::{err, err_hint, Check};
use crate::model::{Ipv4If, Ipv4Net, Mac};
use crate::size::parse_size;
use std::net::Ipv4Addr;

pub(crate) fn ipv4(s: &str) -> Check<Ipv4Addr> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Check::Ok(ip);
    }
    if let Some((a, p)) = s.split_once('/') {
        if a.parse::<Ipv4Addr>().is_ok() {
            return err_hint(
                format!("`{s}` has a prefix length; this field takes a plain address"),
                format!("write \"{a}\" (the prefix /{p} comes from the network)"),
            );
        }
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return err(format!(
            "`{s}` is an IPv6 address; only IPv4 is supported here"
        ));
    }
    err_hint(
        format!("`{s}` is not an IPv4 address"),
        "write four numbers 0-255 such as \"10.0.0.1\"",
    )
}

fn addr_prefix(s: &str) -> Result<(Ipv4Addr, u8), Check<()>> {
    let Some((a, p)) = s.split_once('/') else {
        return Err(err_hint(
            format!("`{s}` has no prefix length"),
            format!("add one, e.g. \"{s}/24\""),
        ));
    };
    let ip = match ipv4(a) {
        Check::Ok(ip) => ip,
        Check::Err(m, h) => return Err(Check::Err(m, h)),
        Check::Warn(..) => return Err(err("unreachable")),
    };
    match p.parse::<u8>() {
        Ok(n) if n <= 32 => Ok((ip, n)),
        _ => Err(err(format!("`/{p}` is not a prefix length (0 to 32)"))),
    }
}

pub(crate) fn cidr(s: &str) -> Check<Ipv4Net> {
    let (ip, prefix) = match addr_prefix(s) {
        Ok(v) => v,
        Err(Check::Err(m, h)) => return Check::Err(m, h),
        Err(_) => return err("invalid network"),
    };
    let net = Ipv4Net {
        addr: Ipv4Addr::from(u32::from(ip) & crate::model::prefix_mask(prefix)),
        prefix,
    };
    if net.addr != ip {
        return err_hint(
            format!("`{s}` has host bits set: it is an address, not a network"),
            format!("the network is \"{net}\""),
        );
    }
    if !(8..=29).contains(&prefix) {
        return err(format!(
            "a /{prefix} management network is not supported (use /8 to /29; /24 is usual)"
        ));
    }
    Check::Ok(net)
}

pub(crate) fn if_addr(s: &str) -> Check<Ipv4If> {
    let (addr, prefix) = match addr_prefix(s) {
        Ok(v) => v,
        Err(Check::Err(m, h)) => return Check::Err(m, h),
        Err(_) => return err("invalid address"),
    };
    if !(1..=31).contains(&prefix) {
        return err(format!("/{prefix} is not usable for an interface address"));
    }
    let net = Ipv4Net { addr, prefix };
    let base = Ipv4Addr::from(u32::from(addr) & crate::model::prefix_mask(prefix));
    if prefix < 31 && (addr == base || addr == net.broadcast()) {
        return err(format!(
            "`{s}` is the network's {} address, not a host address",
            if addr == base { "network" } else { "broadcast" }
        ));
    }
    Check::Ok(Ipv4If { addr, prefix })
}

pub(crate) fn size(s: &str) -> Check<u64> {
    match parse_size(s) {
        Ok(v) => Check::Ok(v),
        Err(m) => err_hint(
            m,
            "write e.g. \"200G\" (binary, 1024-based) or \"256GB\" (decimal)",
        ),
    }
}

pub(crate) fn mac(s: &str) -> Check<Mac> {
    let Some(m) = Mac::parse(s.trim()) else {
        return err_hint(
            format!("`{s}` is not a MAC address"),
            "write six hex pairs: \"a8:b8:e0:01:02:03\"",
        );
    };
    if m.0 == [0; 6] || m.0[0] & 1 == 1 {
        return err(format!(
            "`{s}` is a {} address, never a NIC's own MAC",
            if m.0[0] & 1 == 1 {
                "multicast/broadcast"
            } else {
                "all-zero"
            }
        ));
    }
    Check::Ok(m)
}
