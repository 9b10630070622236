//! Which addresses a logout token may be sent to. The URI comes from registered client
//! metadata, but a hostile or careless registration could still aim the server at its own
//! network (SSRF), so loopback, private, link-local and other special-use addresses are refused
//! unless the configuration allows them. The check runs on the addresses the name resolves to
//! at send time, inside the HTTP client's resolver, so a DNS answer cannot slip past it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The addresses deliveries may reach beyond the public internet.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Networks allowed although special-use (for example `127.0.0.0/8` in development).
    pub allowed: Vec<IpNet>,
}

/// A delivery target the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{address} is a loopback, private, link-local or otherwise special-use address; add it to back_channel.allowed_networks to allow it"
)]
pub struct TargetRefused {
    /// The refused address.
    pub address: IpAddr,
}

impl TargetPolicy {
    /// Whether `address` may be contacted.
    pub fn check(&self, address: IpAddr) -> Result<(), TargetRefused> {
        let address = canonical(address);
        if !is_special(address) || self.allowed.iter().any(|net| net.contains(&address)) {
            Ok(())
        } else {
            Err(TargetRefused { address })
        }
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn is_special(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 192 && b == 0) // IETF protocol assignments (RFC 6890)
                || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 // NAT64 (64:ff9b::/96) and friends
        }
    }
}

/// The HTTP client's resolver: the system's answers, filtered by the policy.
pub(crate) struct CheckedResolver(pub(crate) Arc<TargetPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match policy.check(address.ip()) {
                    Ok(()) => true,
                    Err(error) => {
                        refused = Some(error);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(refused) => Box::new(refused),
                    None => format!("{host} did not resolve to any address").into(),
                };
                return Err(error);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused_unless_allowed() {
        let policy = TargetPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            let address: IpAddr = refused.parse().unwrap();
            assert!(policy.check(address).is_err(), "{refused} must be refused");
        }
        for allowed in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(policy.check(allowed.parse().unwrap()).is_ok(), "{allowed}");
        }
        let loopback = TargetPolicy {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(loopback.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(loopback.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(loopback.check("10.0.0.1".parse().unwrap()).is_err());
    }
}
