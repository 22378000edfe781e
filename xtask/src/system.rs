//! Installs the Debian packages the workspace needs, when they are missing.
//!
//! * `librocksdb-dev`: the `rocksdb` crate links Debian's RocksDB 7.8
//!   (see `.cargo/config.toml`) instead of building its bundled C++;
//! * `libclang1-14`, `libclang-common-14-dev`: bindgen, for `librocksdb-sys`;
//! * `zookeeper`, `libzookeeper-mt-dev`: ZooKeeper's Java `zkCli.sh` and its C
//!   client, which the compatibility tests run against zab;
//! * `python3-kazoo`: kazoo, the Python client, for the same (run with
//!   Debian's `/usr/bin/python3`);
//! * `libcurator-recipes-java` and `openjdk-17-jdk-headless`: Apache
//!   Curator, the Java client framework, for the same (its scenarios run
//!   from source, which needs the JDK's compiler);
//! * `libkrb5-dev` and `pkgconf`: MIT's GSS-API library, which `zab-server`
//!   links for Kerberos (`libgssapi-sys` finds it with pkg-config);
//! * `krb5-kdc` and `krb5-admin-server`: a KDC and `kadmin.local`, which the
//!   Kerberos tests run a realm of their own with.

use std::path::Path;
use std::process::Command;

/// (package, a file it installs that tells whether it is present)
const PACKAGES: &[(&str, &str)] = &[
    ("librocksdb-dev", "/usr/include/rocksdb/c.h"),
    ("libclang1-14", "/usr/lib/llvm-14/lib/libclang.so.1"),
    (
        "libclang-common-14-dev",
        "/usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h",
    ),
    ("zookeeper", "/usr/share/zookeeper/bin/zkCli.sh"),
    ("libzookeeper-mt-dev", "/usr/include/zookeeper/zookeeper.h"),
    (
        "python3-kazoo",
        "/usr/lib/python3/dist-packages/kazoo/__init__.py",
    ),
    (
        "libcurator-recipes-java",
        "/usr/share/java/curator-recipes.jar",
    ),
    ("openjdk-17-jdk-headless", "/usr/bin/javac"),
    ("libkrb5-dev", "/usr/include/gssapi/gssapi.h"),
    ("pkgconf", "/usr/bin/pkg-config"),
    ("krb5-kdc", "/usr/sbin/krb5kdc"),
    ("krb5-admin-server", "/usr/sbin/kadmin.local"),
];

pub fn ensure_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, marker)| !Path::new(marker).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing system packages: {}", missing.join(" "));
    let sudo = !is_root();
    apt(sudo, &["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    apt(sudo, &args)?;
    Ok(())
}

fn apt(sudo: bool, args: &[&str]) -> Result<(), String> {
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    } else {
        Command::new("apt-get")
    };
    let status = cmd
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
