//! Network interfaces: `sys/class/net`, the devices they hang off in `sys/devices`, and the
//! udev database entries `n<ifindex>` (net_id, hwdb, 75-net-description.rules).

use super::spec::{NicBus, NicSpec};
use super::{Ctx, SynthError};

/// systemd's naming scheme of the live system (`ID_NET_NAMING_SCHEME`).
const NAMING_SCHEME: &str = "v257";
/// Where systemd's default .link file lives on the NixOS live system.
const LINK_FILE: &str =
    "/nix/store/7kxz2w1hs3pcyl0f4m6g9dnb8rjvq5ai-systemd-257.9/lib/systemd/network/99-default.link";

fn mac_ok(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        // The first octet must be unicast (bit 0 clear).
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// `pci0000:00` for a function on domain 0000, bus 00.
fn pci_root(pci: &str) -> String {
    let domain = pci.split(':').next().unwrap_or("0000");
    format!("pci{domain}:00")
}

/// `lo`: always ifindex 1, no device.
pub(super) fn render_lo(ctx: &mut Ctx) {
    let t = &mut ctx.tree;
    let b = "sys/class/net/lo";
    t.attr(format!("{b}/address"), "00:00:00:00:00:00");
    t.attr(format!("{b}/addr_assign_type"), 0);
    t.attr(format!("{b}/addr_len"), 6);
    t.attr(format!("{b}/broadcast"), "00:00:00:00:00:00");
    t.attr(format!("{b}/carrier"), 1);
    t.attr(format!("{b}/flags"), "0x9");
    t.attr(format!("{b}/ifindex"), 1);
    t.attr(format!("{b}/iflink"), 1);
    t.attr(format!("{b}/mtu"), 65536);
    t.attr(format!("{b}/operstate"), "unknown");
    t.attr(format!("{b}/tx_queue_len"), 1000);
    t.attr(format!("{b}/type"), 772);
    t.attr(format!("{b}/uevent"), "INTERFACE=lo\nIFINDEX=1");
}

/// Renders one NIC with the given ifindex.
pub(super) fn render(ctx: &mut Ctx, n: &NicSpec, ifindex: u32) -> Result<(), SynthError> {
    if !mac_ok(&n.mac) {
        return Err(SynthError::Spec(format!(
            "{}: MAC {} is not a lower-case unicast address",
            n.name, n.mac
        )));
    }
    // The chain of PCI functions from the root bus to the NIC's function.
    let mut chain = vec!["devices".to_string(), pci_root(&n.pci)];
    chain.extend(n.bridges.iter().cloned());
    chain.push(n.pci.clone());
    let (bus, leaf) = match n.bus {
        NicBus::Pci => ("pci", None),
        NicBus::Virtio => {
            let i = n.virtio_index.ok_or_else(|| {
                SynthError::Spec(format!("{}: virtio NIC without virtio-index", n.name))
            })?;
            ("virtio", Some(vec![format!("virtio{i}")]))
        }
        NicBus::Usb => {
            let port = n
                .usb_port
                .clone()
                .ok_or_else(|| SynthError::Spec(format!("{}: USB NIC without usb-port", n.name)))?;
            let busnum = port.split('-').next().unwrap_or("1").to_string();
            (
                "usb",
                Some(vec![
                    format!("usb{busnum}"),
                    port.clone(),
                    format!("{port}:1.0"),
                ]),
            )
        }
    };
    let t = &mut ctx.tree;
    let func = format!("sys/{}", chain.join("/"));
    if n.bus != NicBus::Usb {
        let class = if n.wireless { "0x028000" } else { "0x020000" };
        t.attr(format!("{func}/class"), class);
        t.attr(format!("{func}/vendor"), &n.vendor_id);
        t.attr(format!("{func}/device"), &n.device_id);
    }
    if let Some(extra) = &leaf {
        if n.bus == NicBus::Virtio {
            // The netdev hangs off virtioN; the PCI function is bound to virtio-pci.
            let up = "../".repeat(chain.len());
            t.link(
                format!("{func}/driver"),
                format!("{up}bus/pci/drivers/virtio-pci"),
            );
            t.attr("sys/bus/pci/drivers/virtio-pci/uevent", "");
        }
        chain.extend(extra.iter().cloned());
    }
    let dev = format!("sys/{}", chain.join("/"));
    match n.bus {
        NicBus::Pci => {}
        NicBus::Virtio => {
            t.attr(format!("{dev}/vendor"), "0x1af4");
            t.attr(format!("{dev}/device"), "0x0001");
        }
        NicBus::Usb => {
            // idVendor/idProduct live on the USB device, the parent of the interface.
            let usbdev = format!("sys/{}", chain[..chain.len() - 1].join("/"));
            t.attr(format!("{usbdev}/idVendor"), &n.vendor_id);
            t.attr(format!("{usbdev}/idProduct"), &n.device_id);
            t.attr(format!("{usbdev}/manufacturer"), &n.vendor_db);
            if let Some(m) = &n.model_db {
                t.attr(format!("{usbdev}/product"), m);
            }
            t.attr(format!("{dev}/bInterfaceClass"), "ff");
        }
    }
    let up = "../".repeat(chain.len());
    t.link(
        format!("{dev}/driver"),
        format!("{up}bus/{bus}/drivers/{}", n.driver),
    );
    t.attr(format!("sys/bus/{bus}/drivers/{}/uevent", n.driver), "");

    let b = format!("sys/class/net/{}", n.name);
    t.link(
        format!("{b}/device"),
        format!("../../../{}", chain.join("/")),
    );
    t.attr(format!("{b}/address"), &n.mac);
    t.attr(format!("{b}/addr_assign_type"), 0);
    t.attr(format!("{b}/addr_len"), 6);
    t.attr(format!("{b}/broadcast"), "ff:ff:ff:ff:ff:ff");
    t.attr(format!("{b}/carrier"), u8::from(n.carrier));
    t.attr(format!("{b}/dev_id"), "0x0");
    t.attr(format!("{b}/dev_port"), 0);
    t.attr(
        format!("{b}/duplex"),
        if n.carrier && n.speed.is_some() {
            "full"
        } else {
            "unknown"
        },
    );
    t.attr(format!("{b}/flags"), "0x1003");
    t.attr(format!("{b}/ifindex"), ifindex);
    t.attr(format!("{b}/iflink"), ifindex);
    t.attr(format!("{b}/mtu"), 1500);
    t.attr(format!("{b}/name_assign_type"), 4);
    t.attr(
        format!("{b}/operstate"),
        if n.carrier { "up" } else { "down" },
    );
    let speed = match (n.carrier, n.speed) {
        (true, Some(s)) => i64::from(s),
        _ => -1,
    };
    t.attr(format!("{b}/speed"), speed);
    t.attr(format!("{b}/tx_queue_len"), 1000);
    t.attr(format!("{b}/type"), 1);
    if let Some(p) = &n.phys_port_name {
        t.attr(format!("{b}/phys_port_name"), p);
    }
    let devtype = if n.wireless { "DEVTYPE=wlan\n" } else { "" };
    t.attr(
        format!("{b}/uevent"),
        format!("{devtype}INTERFACE={}\nIFINDEX={ifindex}", n.name),
    );
    if n.wireless {
        t.attr(format!("{b}/wireless/uevent"), "");
    }

    let mut props: Vec<(String, String)> = Vec::new();
    let mut p = |k: &str, v: &str| props.push((k.to_string(), v.to_string()));
    p("ID_NET_NAMING_SCHEME", NAMING_SCHEME);
    p("ID_NET_NAME_MAC", &format!("enx{}", n.mac.replace(':', "")));
    if let Some(o) = &n.onboard_name {
        p("ID_NET_NAME_ONBOARD", o);
    }
    p(
        "ID_NET_NAME_PATH",
        n.path_name.as_deref().unwrap_or(&n.name),
    );
    match n.bus {
        NicBus::Pci | NicBus::Virtio => {
            p("ID_BUS", "pci");
            p("ID_VENDOR_ID", &n.vendor_id);
            p("ID_MODEL_ID", &n.device_id);
            p("ID_PCI_CLASS_FROM_DATABASE", "Network controller");
            p(
                "ID_PCI_SUBCLASS_FROM_DATABASE",
                if n.wireless {
                    "Network controller"
                } else {
                    "Ethernet controller"
                },
            );
            p("ID_VENDOR_FROM_DATABASE", &n.vendor_db);
            if let Some(m) = &n.model_db {
                p("ID_MODEL_FROM_DATABASE", m);
            }
            let path = format!("pci-{}", n.pci);
            p("ID_PATH", &path);
            p("ID_PATH_TAG", &path.replace([':', '.'], "_"));
        }
        NicBus::Usb => {
            let port = n.usb_port.as_deref().unwrap_or("1-1");
            let tail = port.split_once('-').map_or("1", |(_, t)| t);
            p("ID_BUS", "usb");
            p("ID_VENDOR_ID", &n.vendor_id);
            p("ID_MODEL_ID", &n.device_id);
            p("ID_USB_DRIVER", &n.driver);
            p("ID_USB_INTERFACES", ":ff0000:020600:0a0000:");
            p("ID_USB_INTERFACE_NUM", "00");
            p("ID_VENDOR_FROM_DATABASE", &n.vendor_db);
            if let Some(m) = &n.model_db {
                p("ID_MODEL_FROM_DATABASE", m);
            }
            let path = format!("pci-{}-usb-0:{tail}:1.0", n.pci);
            p("ID_PATH", &path);
            p("ID_PATH_TAG", &path.replace([':', '.'], "_"));
        }
    }
    p("ID_NET_DRIVER", &n.driver);
    p("ID_NET_LINK_FILE", LINK_FILE);
    p("ID_NET_NAME", &n.name);
    p(
        "SYSTEMD_ALIAS",
        &format!("/sys/subsystem/net/devices/{}", n.name),
    );
    ctx.udev_net(ifindex, &props);
    Ok(())
}
