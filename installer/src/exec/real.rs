//! [`RealHost`]: the host that does things, and the rules it applies before it writes a disk.

use super::{
    files, ioctl, run_command, Cmd, CmdError, DiskIo, ExtractProgress, ExtractReport, Host,
    HostError, Output, PartitionNode,
};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Where every planned disk is named: a stable identity, never `/dev/sdX`.
pub const BY_ID_DIR: &str = "/dev/disk/by-id";

/// How long to retry when udev (or another tool) holds the disk's lock or has a partition open
/// for a moment: udev probes every disk after a write is closed.
const BUSY_RETRY: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const PARTX_TIMEOUT: Duration = Duration::from_secs(30);
const EXCL_RETRY: Duration = Duration::from_secs(3);

/// Which paths a host will open for writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskPolicy {
    test_devices: Vec<PathBuf>,
}

impl DiskPolicy {
    /// Only `/dev/disk/by-id/<name>` (the production rule).
    pub fn by_id_only() -> DiskPolicy {
        DiskPolicy::default()
    }

    /// Also these exact paths (image files, loop devices): for tests only.
    pub fn with_test_devices(paths: impl IntoIterator<Item = PathBuf>) -> DiskPolicy {
        DiskPolicy {
            test_devices: paths.into_iter().collect(),
        }
    }

    /// `path` is on the test allow-list.
    pub fn is_test_device(&self, path: &Path) -> bool {
        self.test_devices.iter().any(|p| p == path)
    }

    /// Refuses anything but a direct child of `/dev/disk/by-id` or an allow-listed test device.
    pub fn check(&self, path: &Path) -> Result<(), HostError> {
        if self.is_test_device(path) {
            return Ok(());
        }
        let direct_child = path.parent() == Some(Path::new(BY_ID_DIR))
            && matches!(path.components().next_back(), Some(Component::Normal(_)))
            && !path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
        if direct_child {
            Ok(())
        } else {
            Err(HostError::NotAllowed {
                path: path.to_path_buf(),
                reason: format!(
                    "disks are written only by their stable identity under {BY_ID_DIR}/ \
                     (the path the plan names)"
                ),
            })
        }
    }
}

/// How a host makes the kernel see a new partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reread {
    /// `BLKRRPART` on the whole disk (production).
    Ioctl,
    /// `partx -u DISK`: adds and updates partitions one by one with `BLKPG`, which also works
    /// on loop devices without partition scanning and on kernels without a GPT parser.
    Partx,
}

/// The host that really runs commands and writes files and disks.
#[derive(Debug, Clone)]
pub struct RealHost {
    policy: DiskPolicy,
    reread: Reread,
    image_sector_size: u32,
    confine: Option<PathBuf>,
}

impl Default for RealHost {
    fn default() -> Self {
        RealHost::new()
    }
}

impl RealHost {
    /// The production host: writes only `/dev/disk/by-id/` disks, re-reads with `BLKRRPART`.
    pub fn new() -> RealHost {
        RealHost {
            policy: DiskPolicy::by_id_only(),
            reread: Reread::Ioctl,
            image_sector_size: 512,
            confine: None,
        }
    }

    /// A test host: may also write exactly `devices` (image files or loop devices), and
    /// re-reads partition tables with `partx`.
    pub fn for_test_devices(devices: impl IntoIterator<Item = PathBuf>) -> RealHost {
        RealHost {
            policy: DiskPolicy::with_test_devices(devices),
            reread: Reread::Partx,
            image_sector_size: 512,
            confine: None,
        }
    }

    /// Re-reads partition tables this way (a test host can exercise the `BLKRRPART` path on a
    /// loop device attached with partition scanning).
    pub fn reread_with(mut self, how: Reread) -> RealHost {
        self.reread = how;
        self
    }

    /// The logical sector size an allow-listed image *file* pretends to have (default 512).
    pub fn image_sector_size(mut self, bytes: u32) -> RealHost {
        self.image_sector_size = bytes;
        self
    }

    /// The disk policy in force.
    pub fn policy(&self) -> &DiskPolicy {
        &self.policy
    }

    /// Keeps every file write, directory and link below `root` (the install target) inside it:
    /// the root image's own symbolic links (`/etc -> /somewhere`, `../../..`) are resolved the
    /// way the live system would resolve them, so a write through one could land on the live
    /// system. Such a write is refused before anything is created. Paths outside `root` (the
    /// journal, the progress file) are not affected.
    pub fn confine_writes_to(mut self, root: impl Into<PathBuf>) -> RealHost {
        self.confine = Some(root.into());
        self
    }

    /// Refuses `path` when it lies below the confinement root lexically but its nearest
    /// existing ancestor resolves outside it.
    fn check_confined(&self, path: &Path) -> Result<(), HostError> {
        let Some(root) = &self.confine else {
            return Ok(());
        };
        // Outside the root, or while the root does not exist yet (nothing in it can redirect).
        if !path.starts_with(root) || fs::symlink_metadata(root).is_err() {
            return Ok(());
        }
        let real_root = fs::canonicalize(root).map_err(io_err("resolving", root))?;
        let mut at = path.parent();
        while let Some(a) = at {
            if fs::symlink_metadata(a).is_ok() {
                break;
            }
            at = a.parent();
        }
        let ancestor = at.unwrap_or(root);
        let real = fs::canonicalize(ancestor).map_err(io_err("resolving", ancestor))?;
        if real.starts_with(&real_root) {
            Ok(())
        } else {
            Err(HostError::Io {
                action: "refusing to write",
                path: path.to_path_buf(),
                source: io::Error::other(format!(
                    "{} resolves to {}, outside the target {} (a symbolic link in the root image)",
                    ancestor.display(),
                    real.display(),
                    root.display()
                )),
            })
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostError + 'a {
    move |source| HostError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn errno_err(action: &'static str, path: &Path, e: Errno) -> HostError {
    HostError::Io {
        action,
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

/// Takes the BSD lock udev honours (systemd's "Locking Block Device Access"): while we hold
/// it, udev does not probe the disk half-written. Retries while someone else holds it.
fn lock_exclusive(file: File, path: &Path) -> Result<Flock<File>, HostError> {
    let deadline = Instant::now() + BUSY_RETRY;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                thread::sleep(POLL);
            }
            Err((_, e)) => return Err(errno_err("locking (flock) the disk", path, e)),
        }
    }
}

/// Opens a whole disk read-write with `O_EXCL`, which fails with EBUSY while anything holds the
/// disk or one of its partitions: a mounted filesystem, swap, device-mapper, md. The last line
/// of defence behind preflight. udev rules (`mdadm -I`, `pvscan`) hold a disk exclusively for a
/// moment after it changes, so EBUSY is retried briefly before it counts.
fn open_exclusive(path: &Path) -> Result<File, HostError> {
    let deadline = Instant::now() + EXCL_RETRY;
    loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_EXCL)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                if Instant::now() >= deadline {
                    return Err(HostError::NotAllowed {
                        path: path.to_path_buf(),
                        reason: "the system is using it (mounted, swap, or held by \
                                 device-mapper/md); it is not the disk the plan expects free"
                            .into(),
                    });
                }
                thread::sleep(POLL);
            }
            Err(e) => return Err(io_err("opening", path)(e)),
        }
    }
}

impl Host for RealHost {
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        run_command(cmd)
    }

    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), HostError> {
        self.check_confined(path)?;
        tracing::info!(path = %path.display(), bytes = contents.len(), mode = format!("{mode:o}"), "writing file");
        let name = path
            .file_name()
            .ok_or_else(|| io_err("writing", path)(io::ErrorKind::InvalidInput.into()))?;
        let tmp = path.with_file_name(format!(".{}.tappaas-new", name.to_string_lossy()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        f.write_all(contents).map_err(io_err("writing", &tmp))?;
        // The umask narrowed the mode given to open(2); set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("setting the mode of", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("renaming a new file to", path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("syncing directory", dir))?;
        }
        Ok(())
    }

    fn open_disk(&self, path: &Path) -> Result<Box<dyn DiskIo>, HostError> {
        self.policy.check(path)?;
        let meta = fs::metadata(path).map_err(io_err("looking up", path))?;
        let ft = meta.file_type();
        if ft.is_file() && self.policy.is_test_device(path) {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_err("opening", path))?;
            tracing::info!(path = %path.display(), size = meta.len(), "opened image file for writing");
            return Ok(Box::new(FileDisk {
                file: Handle::Plain(file),
                path: path.to_path_buf(),
                size: meta.len(),
                sector: self.image_sector_size,
            }));
        }
        if !ft.is_block_device() {
            return Err(HostError::NotAllowed {
                path: path.to_path_buf(),
                reason: "it is not a block device".into(),
            });
        }
        let devno = meta.rdev();
        let (major, minor) = (nix::sys::stat::major(devno), nix::sys::stat::minor(devno));
        if Path::new(&format!("/sys/dev/block/{major}:{minor}/partition")).exists() {
            return Err(HostError::NotAllowed {
                path: path.to_path_buf(),
                reason: format!("it is a partition ({major}:{minor}), not a whole disk"),
            });
        }
        let file = open_exclusive(path)?;
        let size = ioctl::size_bytes(&file)
            .map_err(|e| errno_err("reading the size (BLKGETSIZE64) of", path, e))?;
        let sector = ioctl::logical_sector_size(&file)
            .map_err(|e| errno_err("reading the sector size (BLKSSZGET) of", path, e))?;
        let locked = lock_exclusive(file, path)?;
        tracing::info!(path = %path.display(), size, sector, "opened disk for writing");
        Ok(Box::new(FileDisk {
            file: Handle::Locked(locked),
            path: path.to_path_buf(),
            size,
            sector,
        }))
    }

    fn reread_partitions(&self, disk: &Path) -> Result<(), HostError> {
        self.policy.check(disk)?;
        match self.reread {
            Reread::Partx => {
                // `partx -u` (util-linux 2.38) neither adds nor removes partitions when no range
                // is given, so do what BLKRRPART does: drop every partition, add the table's.
                // `partx -d` fails when there is nothing to delete, hence the check.
                if kernel_has_partitions(disk) {
                    self.run(&Cmd::new("partx").arg("-d").arg(disk).timeout(PARTX_TIMEOUT))?;
                }
                self.run(&Cmd::new("partx").arg("-a").arg(disk).timeout(PARTX_TIMEOUT))?;
                Ok(())
            }
            Reread::Ioctl => {
                tracing::info!(disk = %disk.display(), "re-reading partition table (BLKRRPART)");
                let file = File::open(disk).map_err(io_err("opening", disk))?;
                let locked = lock_exclusive(file, disk)?;
                let deadline = Instant::now() + BUSY_RETRY;
                loop {
                    match ioctl::reread_partition_table(&locked) {
                        Ok(()) => return Ok(()),
                        // udev's probe of the new partitions can hold one open for a moment.
                        Err(Errno::EBUSY) if Instant::now() < deadline => thread::sleep(POLL),
                        Err(e) => {
                            return Err(errno_err(
                                "re-reading the partition table (BLKRRPART) of",
                                disk,
                                e,
                            ))
                        }
                    }
                }
            }
        }
    }

    fn wait_for_partitions(
        &self,
        nodes: &[PartitionNode],
        timeout: Duration,
    ) -> Result<(), HostError> {
        tracing::info!(
            count = nodes.len(),
            timeout_s = timeout.as_secs_f64(),
            "waiting for partition nodes"
        );
        let deadline = Instant::now() + timeout;
        loop {
            let pending: Vec<String> = nodes.iter().filter_map(|n| node_problem(n).err()).collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HostError::PartitionsNotReady { timeout, pending });
            }
            thread::sleep(POLL);
        }
    }
    fn create_dir(&self, path: &Path, mode: u32) -> Result<(), HostError> {
        self.check_confined(path)?;
        files::create_dir(path, mode)
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError> {
        self.check_confined(link)?;
        files::symlink(target, link)
    }

    fn remove_file(&self, path: &Path) -> Result<(), HostError> {
        self.check_confined(path)?;
        files::remove_file(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        files::path_exists(path)
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        files::find_program(name)
    }

    fn extract_image(
        &self,
        image: &Path,
        dest: &Path,
        progress: &mut dyn ExtractProgress,
    ) -> Result<ExtractReport, HostError> {
        files::extract_image(image, dest, progress)
    }
}

/// The kernel currently lists partitions of `disk` (sysfs children with a `partition` file).
fn kernel_has_partitions(disk: &Path) -> bool {
    let Some(name) = fs::canonicalize(disk)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_os_string()))
    else {
        return false;
    };
    let dir = Path::new("/sys/class/block").join(name);
    fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.path().join("partition").exists()))
        .unwrap_or(false)
}

fn read_sectors(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `Ok` when `node` exists and the kernel has it at the planned start and size; otherwise a
/// line saying what is wrong. sysfs counts in 512-byte units whatever the sector size.
fn node_problem(node: &PartitionNode) -> Result<(), String> {
    let p = node.path.display();
    let real = fs::canonicalize(&node.path).map_err(|_| format!("{p}: does not exist yet"))?;
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sys = Path::new("/sys/class/block").join(&name);
    let (Some(start), Some(size)) = (
        read_sectors(&sys.join("start")),
        read_sectors(&sys.join("size")),
    ) else {
        return Err(format!(
            "{p} -> {}: not a partition the kernel knows",
            real.display()
        ));
    };
    if start * 512 != node.start_bytes || size * 512 != node.size_bytes {
        return Err(format!(
            "{p} -> {}: kernel has start {} size {} bytes, plan says start {} size {}",
            real.display(),
            start * 512,
            size * 512,
            node.start_bytes,
            node.size_bytes
        ));
    }
    Ok(())
}

#[derive(Debug)]
enum Handle {
    Locked(Flock<File>),
    Plain(File),
}

/// A disk (or allow-listed image file) opened by [`RealHost`].
#[derive(Debug)]
struct FileDisk {
    file: Handle,
    path: PathBuf,
    size: u64,
    sector: u32,
}

impl FileDisk {
    fn file(&mut self) -> &mut File {
        match &mut self.file {
            Handle::Locked(f) => f,
            Handle::Plain(f) => f,
        }
    }
}

impl Read for FileDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file().read(buf)
    }
}

impl Write for FileDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Seek for FileDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

impl DiskIo for FileDisk {
    fn path(&self) -> &Path {
        &self.path
    }
    fn size_bytes(&self) -> u64 {
        self.size
    }
    fn logical_sector_size(&self) -> u32 {
        self.sector
    }
    fn sync(&mut self) -> io::Result<()> {
        let f = self.file();
        f.flush()?;
        f.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_accepts_only_direct_by_id_children() {
        let p = DiskPolicy::by_id_only();
        assert!(p
            .check(Path::new("/dev/disk/by-id/nvme-Samsung_123"))
            .is_ok());
        for bad in [
            "/dev/sda",
            "/dev/disk/by-id",
            "/dev/disk/by-id/",
            "/dev/disk/by-id/../../sda",
            "/dev/disk/by-id/./x/../../sda",
            "/dev/disk/by-path/pci-0000:00:05.0",
            "dev/disk/by-id/x",
            "/tmp/disk.img",
        ] {
            let e = p.check(Path::new(bad)).unwrap_err();
            assert!(
                e.to_string()
                    .contains("stable identity under /dev/disk/by-id/"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn policy_allow_list_is_exact() {
        let p = DiskPolicy::with_test_devices([PathBuf::from("/tmp/a.img")]);
        assert!(p.check(Path::new("/tmp/a.img")).is_ok());
        assert!(p.check(Path::new("/tmp/b.img")).is_err());
        assert!(p.check(Path::new("/tmp/./a.img/../a.img")).is_err());
    }

    #[test]
    fn production_host_refuses_image_files_even_when_they_exist() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = RealHost::new().open_disk(f.path()).unwrap_err();
        assert!(matches!(e, HostError::NotAllowed { .. }), "{e}");
    }

    #[test]
    fn test_host_opens_only_its_listed_image() {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(1 << 20).unwrap();
        let host = RealHost::for_test_devices([f.path().to_path_buf()]).image_sector_size(4096);
        let d = host.open_disk(f.path()).unwrap();
        assert_eq!((d.size_bytes(), d.logical_sector_size()), (1 << 20, 4096));
        let other = tempfile::NamedTempFile::new().unwrap();
        assert!(host.open_disk(other.path()).is_err());
    }

    #[test]
    fn confined_writes_never_follow_a_link_out_of_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let outside = dir.path().join("live-etc");
        fs::create_dir_all(target.join("var/lib")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // An absolute link as the live system resolves it, and a relative one climbing out.
        std::os::unix::fs::symlink(&outside, target.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../live-etc", target.join("var/log")).unwrap();
        let h = RealHost::new().confine_writes_to(&target);
        for path in [
            target.join("etc/hostname"),
            target.join("etc/new-dir/file"),
            target.join("var/log/tappaas-install.log"),
        ] {
            let err = h.write_file(&path, b"x", 0o644).unwrap_err().to_string();
            assert!(err.contains("outside the target"), "{err}");
        }
        let err = h
            .create_dir(&target.join("etc/tappaas"), 0o755)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the target"), "{err}");
        let err = h
            .symlink(Path::new("/x"), &target.join("etc/localtime"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the target"), "{err}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "written outside"
        );
        // Inside the target, and outside the confinement root altogether, writes go on.
        h.write_file(&target.join("var/lib/ok"), b"x", 0o644)
            .unwrap();
        h.create_dir(&target.join("var/lib/new/deeper"), 0o755)
            .unwrap();
        h.write_file(&dir.path().join("journal"), b"x", 0o600)
            .unwrap();
        // The root itself may be made, and everything in it, while it does not exist.
        let fresh = dir.path().join("fresh-target");
        let h2 = RealHost::new().confine_writes_to(&fresh);
        h2.create_dir(&fresh.join("etc"), 0o755).unwrap();
        h2.write_file(&fresh.join("etc/hostname"), b"x", 0o644)
            .unwrap();
        // An unconfined host is what it was.
        RealHost::new()
            .write_file(&target.join("etc/hostname"), b"x", 0o644)
            .unwrap();
        assert!(outside.join("hostname").exists());
    }

    #[test]
    fn write_file_sets_the_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        let h = RealHost::new();
        h.write_file(&p, b"one", 0o600).unwrap();
        h.write_file(&p, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn waiting_for_missing_partitions_times_out_naming_them() {
        let node = PartitionNode {
            path: "/dev/disk/by-id/virtio-nothing-part3".into(),
            start_bytes: 1 << 20,
            size_bytes: 1 << 30,
        };
        let t0 = Instant::now();
        let e = RealHost::new()
            .wait_for_partitions(&[node], Duration::from_millis(200))
            .unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(200));
        let msg = e.to_string();
        assert!(
            msg.contains("virtio-nothing-part3: does not exist yet"),
            "{msg}"
        );
        assert!(msg.contains("after 0.2s"), "{msg}");
    }
}
