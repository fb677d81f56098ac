//! Network interfaces: `/sys/class/net` and the udev database.

use super::parse::{attr, basename, read_udev};
use super::root::SysRoot;
use crate::inventory::{LinkState, Nic};

/// `IFF_UP` in `sys/class/net/X/flags`: the interface is administratively up.
const IFF_UP: u32 = 0x1;

/// Every interface `ip link` lists, sorted by name.
pub(crate) fn probe_nics(root: &dyn SysRoot) -> Vec<Nic> {
    let mut nics: Vec<Nic> = root
        .read_dir("sys/class/net")
        .unwrap_or_default()
        .into_iter()
        .map(|name| probe_nic(root, name))
        .collect();
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    nics
}

fn probe_nic(root: &dyn SysRoot, name: String) -> Nic {
    let base = format!("sys/class/net/{name}");
    let get = |file: &str| attr(root, &format!("{base}/{file}"));
    let mac = get("address").unwrap_or_default();
    // addr_assign_type 0 (NET_ADDR_PERM): the current address is the burnt-in one.
    let permanent_mac = (get("addr_assign_type").as_deref() == Some("0")
        && !mac.is_empty()
        && mac != "00:00:00:00:00:00")
        .then(|| mac.clone());
    let device = root.read_link(&format!("{base}/device")).ok();
    let driver = device
        .as_ref()
        .and_then(|_| root.read_link(&format!("{base}/device/driver")).ok())
        .map(|t| basename(&t).to_string());
    let pci = match device.as_deref().map(basename) {
        Some(b) if is_pci_address(b) => Some(b.to_string()),
        // virtio-net's `device` is `virtio2`, a child of the PCI function: take the component
        // before it, from the device link or (real sysfs, where that link is `../../../virtio2`)
        // from the interface's own link.
        Some(b) if b.starts_with("virtio") => {
            pci_before_virtio(device.as_deref().unwrap_or_default()).or_else(|| {
                let own = root.read_link(&base).ok()?;
                pci_before_virtio(&own)
            })
        }
        // USB adapters and the like have no PCI function of their own.
        _ => None,
    };
    let link = link_state(
        get("carrier").as_deref(),
        get("operstate").as_deref(),
        get("flags").as_deref(),
    );
    let speed_mbps = if link == LinkState::Up {
        get("speed")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .and_then(|s| u32::try_from(s).ok())
    } else {
        None
    };
    let udev = get("ifindex")
        .map(|i| read_udev(root, &format!("n{i}")).props)
        .unwrap_or_default();
    Nic {
        name,
        mac,
        permanent_mac,
        driver,
        pci,
        physical: device.is_some(),
        link,
        speed_mbps,
        udev,
    }
}

/// `carrier` cannot be read while the interface is administratively down (EINVAL), and a
/// capture of such an interface has no `carrier` file at all: both fall back to operstate.
fn link_state(carrier: Option<&str>, operstate: Option<&str>, flags: Option<&str>) -> LinkState {
    match carrier {
        Some("1") => return LinkState::Up,
        Some("0") => return LinkState::Down,
        _ => {}
    }
    let admin_up = flags
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & IFF_UP != 0);
    match operstate {
        Some("up") => LinkState::Up,
        Some("lowerlayerdown") => LinkState::Down,
        Some("down") if admin_up => LinkState::Down,
        _ => LinkState::Unknown,
    }
}

/// `../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0` -> `0000:00:03.0`.
fn pci_before_virtio(text: &str) -> Option<String> {
    let comps: Vec<&str> = text.split('/').collect();
    comps.windows(2).find_map(|w| {
        (w[1].starts_with("virtio") && is_pci_address(w[0])).then(|| w[0].to_string())
    })
}

/// `0000:01:00.0`: domain, bus, device.function, in hex.
fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [dom, bus, devfn] => {
            hex(dom, 4)
                && hex(bus, 2)
                && devfn
                    .split_once('.')
                    .is_some_and(|(d, f)| hex(d, 2) && f.len() == 1 && hex(f, 1))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        assert!(is_pci_address("0000:01:00.0"));
        assert!(is_pci_address("0000:00:1f.6"));
        assert!(!is_pci_address("virtio2"));
        assert!(!is_pci_address("0000:01:00"));
        assert!(!is_pci_address("usb1"));
        assert_eq!(
            pci_before_virtio("../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0").as_deref(),
            Some("0000:00:03.0")
        );
        assert_eq!(pci_before_virtio("../../../virtio2"), None);
    }

    #[test]
    fn link_states() {
        assert_eq!(link_state(Some("1"), Some("up"), None), LinkState::Up);
        assert_eq!(
            link_state(Some("0"), Some("down"), Some("0x1003")),
            LinkState::Down
        );
        // Admin-down: carrier unreadable, nothing known about the cable.
        assert_eq!(
            link_state(None, Some("down"), Some("0x1002")),
            LinkState::Unknown
        );
        assert_eq!(
            link_state(None, Some("down"), Some("0x1003")),
            LinkState::Down
        );
        assert_eq!(link_state(None, Some("up"), None), LinkState::Up);
        assert_eq!(link_state(None, None, None), LinkState::Unknown);
    }
}
