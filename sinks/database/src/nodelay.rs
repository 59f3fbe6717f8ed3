//! TCP_NODELAY for sqlx 0.9.0's server connections.
//!
//! sqlx 0.9.0 stopped setting `TCP_NODELAY` on its sockets (launchbadge/sqlx#4022; reported as
//! #4335, fixed by #4336, not released as of 0.9.0). Without it, Nagle's algorithm holds back the
//! tail of every request larger than what the first `send` accepts until the server's delayed
//! ACK arrives: about 40 ms per multi-row statement. Measured here on PostgreSQL over loopback
//! TCP: a 100,000-event load ran at 3,600 rows/s with the delay and 10,700 rows/s over a Unix
//! socket, where Nagle does not apply.
//!
//! sqlx offers no hook to reach its socket, so right after connecting (`after_connect`) the sink
//! asks the server which client port it sees and sets `TCP_NODELAY` on this process's TCP socket
//! whose local port is that one and whose peer port is the server's. Linux only (it lists
//! `/proc/self/fd`); elsewhere, behind NAT or through a proxy (where the ports do not match) it
//! does nothing. Remove this module once sqlx ships #4336.

/// Sets `TCP_NODELAY` on the socket with these ports; returns whether one was found.
#[cfg(target_os = "linux")]
pub(crate) fn set_for(local_port: u16, peer_port: u16) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let mut found = false;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if is_socket && ports(fd) == Some((local_port, peer_port)) {
            let one: libc::c_int = 1;
            // SAFETY: `fd` is an open socket of this process (a reused descriptor would at worst
            // be another socket with the very same ports); the option value is a valid c_int
            // whose size is passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            found |= rc == 0;
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_for(_local_port: u16, _peer_port: u16) -> bool {
    false
}

/// Local and peer TCP ports of `fd`, if it is an IPv4/IPv6 socket.
#[cfg(target_os = "linux")]
fn ports(fd: libc::c_int) -> Option<(u16, u16)> {
    fn port_of(
        fd: libc::c_int,
        get: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int,
    ) -> Option<u16> {
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the buffer and its length are valid for writing; the kernel writes at most
        // `len` bytes.
        let rc = unsafe {
            get(
                fd,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let addr: &libc::sockaddr_in =
                    unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
                Some(u16::from_be(addr.sin_port))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let addr: &libc::sockaddr_in6 =
                    unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
                Some(u16::from_be(addr.sin6_port))
            }
            _ => None,
        }
    }
    Some((
        port_of(fd, libc::getsockname)?,
        port_of(fd, libc::getpeername)?,
    ))
}

/// Whether `TCP_NODELAY` is set on this process's socket with these ports (for tests).
#[cfg(target_os = "linux")]
pub fn is_set_for(local_port: u16, peer_port: u16) -> Option<bool> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        if ports(fd) == Some((local_port, peer_port)) {
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: valid out-pointers of the sizes passed.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            return (rc == 0).then_some(value != 0);
        }
    }
    None
}
