//! The sandbox every process the platform starts on a researcher's behalf
//! runs in: the Jupyter server, and through it every kernel, terminal and
//! `pip install` a notebook runs.
//!
//! Mechanism: Debian's `bubblewrap` (`bwrap`) builds the process a new
//! mount, PID, IPC and UTS namespace whose root is an empty tmpfs holding
//! only
//! - the environment's own root (venv, home, Jupyter and IPython dirs),
//!   read-write, at its host path (console scripts hard-code it);
//! - the system folders (`/usr`, `/etc`, the `/bin`, `/lib*` links) and the
//!   base interpreter's prefix, read-only;
//! - a private `/proc` (its own processes only), a minimal `/dev`, and a
//!   private, size-limited `/tmp` and `/dev/shm`.
//!
//! Nothing else of the host exists inside: not the data dir (keys, `meta.db`,
//! the vault, other environments), not other processes (no signals, no
//! `/proc/<pid>/environ`). The process starts with an empty environment plus
//! what the caller sets, `no_new_privs`, no capabilities, and a seccomp
//! filter refusing what notebooks never need (ptrace, mount, bpf, keyctl,
//! namespaces, kernel modules, …).
//!
//! When the platform runs as root, each environment also gets its own
//! unprivileged uid (derived from its id): `bwrap` sets up the namespaces as
//! root, then `setpriv` drops to that uid with no groups and an empty
//! capability bounding set, so a process-count limit is per environment and
//! a sandbox escape lands in an account that owns nothing else. When the
//! platform runs unprivileged, `bwrap` runs in an unprivileged user
//! namespace (nested user namespaces refused) as the platform's own uid.
//!
//! Limits (`prlimit` before `bwrap`, inherited by everything inside): address
//! space per process (`RLIMIT_AS`: a runaway allocation fails with
//! `MemoryError` instead of waking the host's OOM killer), processes per
//! environment uid (`RLIMIT_NPROC`, root hosts only: on an unprivileged host
//! the count would include the platform's own threads), no core dumps.
//!
//! Why bubblewrap and not Landlock alone: Landlock restricts paths but
//! neither hides processes nor gives a private `/tmp`; a mount namespace does
//! all three, and bwrap is the small, audited launcher Flatpak uses for
//! exactly this. Why not cgroups: their controllers are not delegated on
//! many lab hosts (nor here), rlimits work everywhere.

use nix::unistd::Uid;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::process::Command;
use westtek_domain::ports::ResourceLimits;
use westtek_domain::{DomainError, EnvironmentId};

/// Code of a launch refused because the host cannot sandbox.
pub const SANDBOX_UNAVAILABLE: &str = "sandbox_unavailable";

/// The first fd an alias folder is handed to bwrap on (the seccomp programs
/// take 3 and 4).
const ALIAS_FD_BASE: i32 = 10;

/// Size of the private `/tmp` and `/dev/shm` (memory-backed).
const TMPFS_BYTES: u64 = 1 << 30;

/// First uid of the per-environment range (root hosts).
const UID_BASE: u32 = 1_000_000_000;
/// Size of the per-environment uid range.
const UID_SPAN: u32 = 1_000_000_000;

/// Programs the sandbox is built with, from Debian's `bubblewrap` and
/// `util-linux`.
#[derive(Clone, Debug)]
struct Tools {
    bwrap: PathBuf,
    prlimit: PathBuf,
    setpriv: PathBuf,
}

/// How researcher processes are run on this host.
#[derive(Clone, Debug)]
enum Mode {
    /// In the sandbox.
    Enforced(Tools),
    /// The host cannot sandbox; launches are refused with this reason.
    Unavailable(String),
    /// `--insecure-no-sandbox`: as the platform's own user, unconfined.
    Disabled,
}

/// What an IT admin is told about the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SandboxStatus {
    /// `enforced`, `disabled` (the insecure flag) or `unavailable`.
    pub mode: &'static str,
    /// Whether each environment runs under its own uid (root hosts).
    pub per_environment_uid: bool,
    /// Why the sandbox is unavailable or disabled.
    pub detail: Option<String>,
}

/// The sandbox of this host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sandbox {
    mode: Arc<Mode>,
    as_root: bool,
    filters: Arc<Vec<Vec<u8>>>,
}

/// One sandboxed process to start.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// The environment the process belongs to.
    pub env: EnvironmentId,
    /// Its root: the only writable folder.
    pub env_root: PathBuf,
    /// Further folders visible read-only (the base interpreter's prefix).
    pub read_only: Vec<PathBuf>,
    /// Host folders and files made invisible inside (an empty read-only
    /// folder or an empty file over them): a restore drill hides the
    /// original interpreter, so it proves the restored one runs alone.
    pub hidden: Vec<PathBuf>,
    /// Single files visible read-only at another path: `(host, inside)`
    /// (the platform's `uv` at `/opt/westtek/bin/uv`).
    pub files: Vec<(PathBuf, PathBuf)>,
    /// Folders of `env_root` also mounted (read-write) at a second, short
    /// path inside, given as open folders (the platform opened them without
    /// following symlinks; bwrap mounts the fd, not a path the sandbox
    /// could have turned into a symlink): `(folder, path inside)`. Unix
    /// socket paths are limited to 107 bytes.
    pub aliases: Vec<(Arc<std::fs::File>, PathBuf)>,
    /// The program (an absolute path inside the sandbox) and its arguments.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment of the process.
    pub env_vars: Vec<(OsString, OsString)>,
    /// Working directory (inside `env_root`).
    pub cwd: PathBuf,
    pub limits: ResourceLimits,
}

impl Sandbox {
    /// This host's sandbox, probed once per process.
    pub fn host() -> Self {
        static HOST: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
        HOST.get_or_init(|| Self::detect(false)).clone()
    }

    /// Probes the host: `bwrap`, `prlimit` and `setpriv` installed, and a
    /// trivial sandbox actually starts. With `insecure`, nothing is probed
    /// and processes run unconfined.
    pub fn detect(insecure: bool) -> Self {
        let as_root = Uid::effective().is_root();
        let filters = match seccomp_filters() {
            Ok(f) => f,
            Err(e) => {
                return Self {
                    mode: Arc::new(if insecure {
                        Mode::Disabled
                    } else {
                        Mode::Unavailable(e)
                    }),
                    as_root,
                    filters: Arc::new(Vec::new()),
                }
            }
        };
        let mode = if insecure {
            tracing::warn!("the sandbox is DISABLED (--insecure-no-sandbox): researcher code runs as the platform's own user and can read its keys and every lab's files");
            Mode::Disabled
        } else {
            match probe(as_root) {
                Ok(tools) => Mode::Enforced(tools),
                Err(reason) => {
                    tracing::error!(%reason, "no sandbox on this host: Jupyter will not be launched (start with --insecure-no-sandbox to run it unconfined)");
                    Mode::Unavailable(reason)
                }
            }
        };
        Self {
            mode: Arc::new(mode),
            as_root,
            filters: Arc::new(filters),
        }
    }

    /// What this host's sandbox does.
    pub fn status(&self) -> SandboxStatus {
        match &*self.mode {
            Mode::Enforced(_) => SandboxStatus {
                mode: "enforced",
                per_environment_uid: self.as_root,
                detail: None,
            },
            Mode::Unavailable(reason) => SandboxStatus {
                mode: "unavailable",
                per_environment_uid: false,
                detail: Some(reason.clone()),
            },
            Mode::Disabled => SandboxStatus {
                mode: "disabled",
                per_environment_uid: false,
                detail: Some(
                    "started with --insecure-no-sandbox: notebooks run as the platform's own user"
                        .into(),
                ),
            },
        }
    }

    /// Whether processes are confined.
    pub fn enforced(&self) -> bool {
        matches!(*self.mode, Mode::Enforced(_))
    }

    /// The uid the environment's processes run as, when it has its own.
    pub fn uid_of(&self, env: EnvironmentId) -> Option<u32> {
        (self.enforced() && self.as_root).then(|| environment_uid(env))
    }

    /// Gives the environment's files to its uid (root hosts; a no-op
    /// elsewhere). Files written by the platform (builds, restores) are the
    /// platform's until then. Symlinks are never followed.
    ///
    /// # Errors
    /// I/O failures.
    pub fn hand_over(&self, root: &Path, env: EnvironmentId) -> std::io::Result<()> {
        match self.uid_of(env) {
            Some(uid) => chown_tree(root, uid),
            None => Ok(()),
        }
    }

    /// The command starting `spec` in the sandbox (or unconfined when
    /// disabled). Its environment is exactly `spec.env_vars`.
    ///
    /// # Errors
    /// `Upstream` with [`SANDBOX_UNAVAILABLE`] when the host cannot sandbox.
    pub fn command(&self, spec: &SandboxSpec) -> Result<Command, DomainError> {
        self.std_command(spec).map(Command::from)
    }

    /// [`Sandbox::command`] for blocking code.
    ///
    /// # Errors
    /// As [`Sandbox::command`].
    pub fn std_command(&self, spec: &SandboxSpec) -> Result<std::process::Command, DomainError> {
        let plan = self.plan(spec)?;
        let mut cmd = std::process::Command::new(&plan.program);
        cmd.args(&plan.args).env_clear().current_dir(&plan.cwd);
        cmd.envs(plan.env.iter().map(|(k, v)| (k, v)));
        use command_fds::CommandFdExt as _;
        cmd.fd_mappings(plan.fds)
            .map_err(|e| DomainError::internal(e.to_string()))?;
        Ok(cmd)
    }

    /// What to execute for `spec`.
    fn plan(&self, spec: &SandboxSpec) -> Result<Plan, DomainError> {
        let tools = match &*self.mode {
            Mode::Enforced(tools) => tools,
            Mode::Unavailable(reason) => {
                return Err(DomainError::Upstream {
                    code: SANDBOX_UNAVAILABLE,
                    message: format!(
                        "this host cannot sandbox notebooks ({reason}); an IT admin must fix it (or start the platform with --insecure-no-sandbox)"
                    ),
                })
            }
            Mode::Disabled => {
                return Ok(Plan {
                    program: spec.program.clone(),
                    args: spec.args.clone(),
                    env: spec.env_vars.clone(),
                    cwd: spec.cwd.clone(),
                    fds: Vec::new(),
                })
            }
        };
        let uid = self.uid_of(spec.env);
        let mut args: Vec<OsString> = vec![
            format!("--as={}", spec.limits.memory_bytes).into(),
            "--core=0".into(),
        ];
        if uid.is_some() {
            args.push(format!("--nproc={}", spec.limits.max_processes).into());
        }
        args.push("--".into());
        args.push(tools.bwrap.clone().into());
        args.extend(bwrap_args(spec, self.as_root));
        let mut fds = Vec::new();
        for (i, (dir, _)) in spec.aliases.iter().enumerate() {
            let fd = dir.try_clone().map_err(DomainError::internal)?;
            fds.push(command_fds::FdMapping {
                parent_fd: fd.into(),
                child_fd: ALIAS_FD_BASE + i32::try_from(i).unwrap_or(0),
            });
        }
        for (i, filter) in self.filters.iter().enumerate() {
            let child_fd = 3 + i32::try_from(i).unwrap_or(0);
            let fd = filter_fd(filter).map_err(DomainError::internal)?;
            args.push("--add-seccomp-fd".into());
            args.push(child_fd.to_string().into());
            fds.push(command_fds::FdMapping {
                parent_fd: fd,
                child_fd,
            });
        }
        args.push("--".into());
        if let Some(uid) = uid {
            args.push(tools.setpriv.clone().into());
            for a in [
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ] {
                args.push(a.into());
            }
        }
        args.push(spec.program.clone().into());
        args.extend(spec.args.iter().cloned());
        Ok(Plan {
            program: tools.prlimit.clone(),
            args,
            env: Vec::new(),
            // bwrap changes into spec.cwd inside; the launcher starts in /.
            cwd: PathBuf::from("/"),
            fds,
        })
    }
}

/// A process to start: the program, its arguments, environment, working
/// directory and the fds it inherits.
struct Plan {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    fds: Vec<command_fds::FdMapping>,
}

/// The uid of an environment on root hosts: stable, from its id, in a range
/// no distribution allocates.
pub fn environment_uid(env: EnvironmentId) -> u32 {
    let hash = blake3::hash(env.to_string().as_bytes());
    let mut four = [0u8; 4];
    four.copy_from_slice(&hash.as_bytes()[..4]);
    UID_BASE + u32::from_le_bytes(four) % UID_SPAN
}

/// `bwrap`'s arguments up to (not including) the seccomp fds and `--`.
fn bwrap_args(spec: &SandboxSpec, as_root: bool) -> Vec<OsString> {
    let mut a = Args::default();
    a.add(["--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    a.add(["--unshare-cgroup-try", "--die-with-parent", "--new-session"]);
    a.add(["--hostname", "jupyter"]);
    if as_root {
        // setpriv drops to the environment's uid after the mounts.
        a.add([
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_SETPCAP",
        ]);
    } else {
        a.add(["--unshare-user", "--disable-userns"]);
    }
    a.add(["--ro-bind", "/usr", "/usr"]);
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let p = Path::new("/").join(top);
        match std::fs::read_link(&p) {
            Ok(target) => {
                a.add(["--symlink"]);
                a.path(&target);
                a.path(&p);
            }
            Err(_) if p.is_dir() => {
                a.add(["--ro-bind"]);
                a.path(&p);
                a.path(&p);
            }
            Err(_) => {}
        }
    }
    a.add(["--ro-bind", "/etc", "/etc"]);
    // /etc/resolv.conf often points into /run (systemd-resolved).
    if let Ok(target) = std::fs::canonicalize("/etc/resolv.conf") {
        if !target.starts_with("/etc") && !target.starts_with("/usr") {
            a.ro_bind_with_parents(&target);
        }
    }
    a.add(["--proc", "/proc", "--dev", "/dev"]);
    for tmp in ["/tmp", "/dev/shm"] {
        a.add(["--perms", "01777", "--size"]);
        a.s(&TMPFS_BYTES.to_string());
        a.add(["--tmpfs", tmp]);
    }
    for ro in &spec.read_only {
        if ro.starts_with("/usr") || ro.starts_with("/etc") || !ro.is_absolute() {
            continue;
        }
        a.ro_bind_with_parents(ro);
    }
    for h in &spec.hidden {
        if !h.is_absolute() || h.starts_with(&spec.env_root) {
            continue;
        }
        match std::fs::symlink_metadata(h) {
            Ok(m) if m.is_dir() => {
                a.add(["--tmpfs"]);
                a.path(h);
                a.add(["--remount-ro"]);
                a.path(h);
            }
            Ok(m) if m.is_file() => {
                a.add(["--ro-bind", "/dev/null"]);
                a.path(h);
            }
            _ => {}
        }
    }
    for (host, inside) in &spec.files {
        a.parents(inside);
        a.add(["--ro-bind"]);
        a.path(host);
        a.path(inside);
    }
    a.parents(&spec.env_root);
    a.add(["--bind"]);
    a.path(&spec.env_root);
    a.path(&spec.env_root);
    for (i, (_, inside)) in spec.aliases.iter().enumerate() {
        a.parents(inside);
        a.add(["--bind-fd"]);
        a.s(&(ALIAS_FD_BASE + i32::try_from(i).unwrap_or(0)).to_string());
        a.path(inside);
    }
    a.add(["--clearenv"]);
    for (k, v) in &spec.env_vars {
        a.add(["--setenv"]);
        a.0.push(k.clone());
        a.0.push(v.clone());
    }
    a.add(["--chdir"]);
    a.path(&spec.cwd);
    a.0
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn add<const N: usize>(&mut self, items: [&str; N]) {
        self.0.extend(items.iter().map(OsString::from));
    }
    fn s(&mut self, s: &str) {
        self.0.push(s.into());
    }
    fn path(&mut self, p: &Path) {
        self.0.push(p.as_os_str().to_owned());
    }
    /// Creates `p`'s ancestors as world-searchable folders, so a bind below
    /// a private home (`/root/.pyenv/…`) is reachable by an unprivileged uid.
    fn parents(&mut self, p: &Path) {
        let mut ancestors: Vec<&Path> = p.ancestors().skip(1).collect();
        ancestors.reverse();
        for dir in ancestors {
            if dir == Path::new("/") || dir == Path::new("/usr") || dir == Path::new("/etc") {
                continue;
            }
            self.add(["--perms", "0755", "--dir"]);
            self.path(dir);
        }
    }
    fn ro_bind_with_parents(&mut self, p: &Path) {
        self.parents(p);
        self.add(["--ro-bind"]);
        self.path(p);
        self.path(p);
    }
}

/// Checks that a sandbox can be built here; the tools found, or why not.
fn probe(as_root: bool) -> Result<Tools, String> {
    let find = |name: &str| {
        ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    };
    let bwrap = find("bwrap").ok_or_else(|| {
        "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)".to_string()
    })?;
    let prlimit = find("prlimit").ok_or("prlimit (util-linux) is not installed")?;
    let setpriv = find("setpriv").ok_or("setpriv (util-linux) is not installed")?;
    let tools = Tools {
        bwrap,
        prlimit,
        setpriv,
    };
    let root = std::env::temp_dir();
    let spec = SandboxSpec {
        env: EnvironmentId::new(),
        env_root: root.clone(),
        read_only: Vec::new(),
        hidden: Vec::new(),
        files: Vec::new(),
        aliases: Vec::new(),
        program: PathBuf::from("/bin/true"),
        args: Vec::new(),
        env_vars: Vec::new(),
        cwd: root,
        limits: ResourceLimits::default(),
    };
    let out = std::process::Command::new(&tools.bwrap)
        .args(bwrap_args(&spec, as_root))
        .arg("--")
        .arg("/bin/true")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("bwrap cannot be run: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let hint = if as_root {
            ""
        } else {
            " (unprivileged user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)"
        };
        return Err(format!(
            "bubblewrap cannot create a sandbox here: {why}{hint}"
        ));
    }
    Ok(tools)
}

/// A pipe's read end holding `bytes` (bwrap reads a seccomp program from it).
fn filter_fd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // Close-on-exec: only the sandbox it is mapped into (by dup2) gets it,
    // not whatever else the platform spawns meanwhile.
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let mut w = std::fs::File::from(write);
    w.write_all(bytes)?;
    drop(w);
    debug_assert!(read.as_raw_fd() >= 0);
    Ok(read)
}

/// The compiled seccomp programs: one refusing (EPERM) what notebooks never
/// need, one answering `clone3` with ENOSYS (libc then falls back to
/// `clone`, whose flags the first program can inspect: no new user
/// namespace).
fn seccomp_filters() -> Result<Vec<Vec<u8>>, String> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("no seccomp filter for {}", std::env::consts::ARCH))?;
    let denied: &[i64] = &[
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_perf_event_open,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_vhangup,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied.iter().map(|nr| (*nr, Vec::new())).collect();
    let new_ns = u64::try_from(
        libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWCGROUP
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS,
    )
    .map_err(|e| e.to_string())?;
    // Any namespace flag in clone's flags argument (argument 0 on x86_64
    // and aarch64).
    let mut clone_rules = Vec::new();
    for bit in 0..64u32 {
        let flag = 1u64 << bit;
        if new_ns & flag == 0 {
            continue;
        }
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(|e| e.to_string())?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let eperm = u32::try_from(libc::EPERM).map_err(|e| e.to_string())?;
    let enosys = u32::try_from(libc::ENOSYS).map_err(|e| e.to_string())?;
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(eperm),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(enosys),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for filter in [deny, clone3] {
        let program: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        let mut bytes = Vec::with_capacity(program.len() * 8);
        for ins in program {
            bytes.extend_from_slice(&ins.code.to_ne_bytes());
            bytes.push(ins.jt);
            bytes.push(ins.jf);
            bytes.extend_from_slice(&ins.k.to_ne_bytes());
        }
        out.push(bytes);
    }
    Ok(out)
}

/// `lchown`s everything under `root` (and `root`) not yet owned by `uid`.
fn chown_tree(root: &Path, uid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.uid() != uid || meta.gid() != uid {
            std::os::unix::fs::lchown(&p, Some(uid), Some(uid))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// The read-only folders a venv needs: its base interpreter's prefix (from
/// `pyvenv.cfg`'s `home`, and where `bin/python` really lives).
pub fn interpreter_prefixes(venv: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(cfg) = std::fs::read_to_string(venv.join("pyvenv.cfg")) {
        for line in cfg.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k.trim() == "home" {
                let home = PathBuf::from(v.trim());
                if let Some(prefix) = home.parent() {
                    out.push(prefix.to_path_buf());
                }
            }
        }
    }
    if let Ok(real) = std::fs::canonicalize(venv.join("bin").join("python")) {
        if let Some(prefix) = real.parent().and_then(Path::parent) {
            if !real.starts_with(venv) && !out.iter().any(|p| prefix.starts_with(p)) {
                out.push(prefix.to_path_buf());
            }
        }
    }
    out.retain(|p| p.is_absolute() && p != Path::new("/"));
    out.sort();
    out.dedup();
    out
}

/// The read-only folders a venv needs, restricted to real interpreter
/// installations outside the data dir: `pyvenv.cfg` lives in the venv,
/// which code in the sandbox writes, so what it names is mounted only when
/// [`is_interpreter_prefix`] holds (never, say, the data dir or `/root`).
pub fn trusted_prefixes(venv: &Path, data_dir: &Path) -> Vec<PathBuf> {
    let (kept, refused): (Vec<PathBuf>, Vec<PathBuf>) = interpreter_prefixes(venv)
        .into_iter()
        .partition(|p| is_interpreter_prefix(p, data_dir));
    if !refused.is_empty() {
        tracing::warn!(venv = %venv.display(), refused = ?refused, "a venv names a folder that is not an interpreter installation; not mounted");
    }
    kept
}

/// Whether `prefix` is a Python installation the platform may expose (mount
/// read-only into a sandbox, capture as a snapshot's base layer): an
/// absolute path without symlinks, not `/`, neither inside nor above the
/// data dir, owned by root or the platform's own user (so no sandbox made
/// it), holding `bin/python3*` and `lib/python3.*/os.py`. A venv's
/// `pyvenv.cfg` can only point at such a folder that already exists: the
/// host's own interpreters.
pub fn is_interpreter_prefix(prefix: &Path, data_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !prefix.is_absolute() || prefix == Path::new("/") {
        return false;
    }
    if std::fs::canonicalize(prefix).ok().as_deref() != Some(prefix) {
        return false;
    }
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if prefix.starts_with(&data) || data.starts_with(prefix) {
        return false;
    }
    let me = nix::unistd::geteuid().as_raw();
    let owned =
        |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == 0 || m.uid() == me);
    if !owned(prefix) {
        return false;
    }
    let has = |dir: &Path, pred: &dyn Fn(&str) -> bool| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_str().is_some_and(pred))
        })
    };
    let bin = prefix.join("bin");
    let lib = prefix.join("lib");
    has(&bin, &|n| n.starts_with("python3"))
        && std::fs::read_dir(&lib).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("python3."))
                    && e.path().join("os.py").is_file()
            })
        })
}

/// An environment variable pair.
pub fn var(k: &str, v: impl AsRef<OsStr>) -> (OsString, OsString) {
    (k.into(), v.as_ref().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_uids_are_stable_unprivileged_and_distinct() {
        let a = EnvironmentId::new();
        let b = EnvironmentId::new();
        assert_eq!(environment_uid(a), environment_uid(a));
        assert_ne!(environment_uid(a), environment_uid(b));
        assert!(environment_uid(a) >= UID_BASE);
        assert!(environment_uid(a) < UID_BASE + UID_SPAN);
    }

    #[test]
    fn the_seccomp_programs_compile_for_this_machine() {
        let f = seccomp_filters().unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|p| !p.is_empty() && p.len() % 8 == 0));
    }

    #[test]
    fn only_the_environment_root_is_bound_writable() {
        let env = EnvironmentId::new();
        let rt = tempfile::tempdir().unwrap();
        let spec = SandboxSpec {
            env,
            env_root: PathBuf::from("/srv/westtek/envs/e1"),
            read_only: vec![
                PathBuf::from("/root/.pyenv/versions/3.11.7"),
                PathBuf::from("/usr"),
            ],
            hidden: vec![],
            files: vec![],
            aliases: vec![(
                Arc::new(std::fs::File::open(rt.path()).unwrap()),
                PathBuf::from("/run/jupyter"),
            )],
            program: PathBuf::from("/srv/westtek/envs/e1/venv/bin/jupyter"),
            args: vec![],
            env_vars: vec![var("HOME", "/srv/westtek/envs/e1/home")],
            cwd: PathBuf::from("/srv/westtek/envs/e1/home"),
            limits: ResourceLimits::default(),
        };
        let args: Vec<String> = bwrap_args(&spec, true)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let binds: Vec<&[String]> = args.windows(3).filter(|w| w[0] == "--bind").collect();
        assert_eq!(binds.len(), 1, "{args:?}");
        assert_eq!(binds[0][1], "/srv/westtek/envs/e1");
        // The alias is mounted from the open folder, never by path.
        let by_fd: Vec<&[String]> = args.windows(3).filter(|w| w[0] == "--bind-fd").collect();
        assert_eq!(by_fd.len(), 1, "{args:?}");
        assert_eq!(by_fd[0][1], ALIAS_FD_BASE.to_string());
        assert_eq!(by_fd[0][2], "/run/jupyter");
        let joined = args.join(" ");
        assert!(
            joined.contains("--ro-bind /root/.pyenv/versions/3.11.7 /root/.pyenv/versions/3.11.7")
        );
        assert!(joined.contains("--perms 0755 --dir /root "));
        assert!(joined.contains("--clearenv --setenv HOME /srv/westtek/envs/e1/home"));
        assert!(
            !joined.contains("--ro-bind /usr /usr --ro-bind /usr"),
            "{joined}"
        );
    }

    #[test]
    fn a_venvs_interpreter_prefix_is_read_from_pyvenv_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /opt/conda/bin\nversion_info = 3.11.7\n",
        )
        .unwrap();
        assert_eq!(
            interpreter_prefixes(&venv),
            vec![PathBuf::from("/opt/conda")]
        );
    }
}
