//! The block-device ioctls the engine needs: the only `unsafe` code in the installer.
//!
//! nix generates these wrappers as `unsafe fn` because an ioctl's argument is whatever the
//! request code says it is. Each safe function below passes exactly the argument its request
//! takes, from `<linux/fs.h>`, on a descriptor borrowed from an open `File`.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

mod raw {
    nix::ioctl_none!(
        /// `BLKRRPART = _IO(0x12, 95)`: re-read the partition table.
        blkrrpart,
        0x12,
        95
    );
    nix::ioctl_read!(
        /// `BLKGETSIZE64 = _IOR(0x12, 114, size_t)`: size in bytes (size_t is u64 on Linux
        /// 64-bit, the only targets we build for).
        blkgetsize64,
        0x12,
        114,
        u64
    );
    nix::ioctl_read_bad!(
        /// `BLKSSZGET = _IO(0x12, 104)`: logical sector size, written to an `int`.
        blksszget,
        nix::request_code_none!(0x12, 104),
        nix::libc::c_int
    );
}

/// Asks the kernel to re-read the partition table of the whole disk `f` (`BLKRRPART`).
pub(crate) fn reread_partition_table(f: &File) -> nix::Result<()> {
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the whole call because
    // `f` is borrowed.
    unsafe { raw::blkrrpart(f.as_raw_fd()) }.map(|_| ())
}

/// The size of block device `f` in bytes (`BLKGETSIZE64`).
pub(crate) fn size_bytes(f: &File) -> nix::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points at `size`, alive
    // and exclusively borrowed for the call; the descriptor is open because `f` is borrowed.
    unsafe { raw::blkgetsize64(f.as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// The logical sector size of block device `f` (`BLKSSZGET`).
pub(crate) fn logical_sector_size(f: &File) -> nix::Result<u32> {
    let mut size: nix::libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer, which points at `size`, alive and
    // exclusively borrowed for the call; the descriptor is open because `f` is borrowed.
    unsafe { raw::blksszget(f.as_raw_fd(), &mut size) }?;
    u32::try_from(size).map_err(|_| nix::errno::Errno::EINVAL)
}
