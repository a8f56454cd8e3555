//! The crypto under every HTTPS connection faber-db makes (off-site storage, AWS SSO, webhooks):
//! rustls with ring's provider. reqwest and object_store are built without a provider of their
//! own (aws-lc-rs, 1.6 MB of the binary), so one must be installed before any client is built;
//! a client built without one panics. The two doors to HTTP call [`ready`]: `Bucket::open`
//! (everything off-site) and the webhook sender.

/// Installs ring's provider as the process default, once; later calls find it there.
pub fn ready() {
    // An error only says a provider is installed already, which is all this asks for.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_once_the_provider_is_ready() {
        super::ready();
        super::ready();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        reqwest::Client::builder()
            .build()
            .expect("an HTTPS client with ring's provider");
    }
}
