/** How SSH connections are made (the CLI's --identity, --known-hosts, …). */
export interface SshOptions {
  /** Private key file; default: the agent (SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
  identity?: string | undefined;
  /** Passphrase of the key file. */
  passphrase?: string | undefined;
  /** known_hosts file; default ~/.ssh/known_hosts. */
  knownHosts?: string | undefined;
  /** Accept any host key (unsafe; --insecure-accept-host-key). Default false. */
  acceptUnknownHostKey?: boolean | undefined;
  /** SSH connections per host. Default 2. */
  connectionsPerHost?: number | undefined;
  /** Channels (commands) at once per connection. Default 4. */
  channelsPerConnection?: number | undefined;
  /** Connection attempts before giving up. Default 3. */
  retries?: number | undefined;
  /** First backoff between attempts; doubles each time. Default 500 ms. */
  retryDelayMs?: number | undefined;
  /** TCP connect + handshake timeout. Default 20 s. */
  connectTimeoutMs?: number | undefined;
  /** The username when the hosts file names none. Default: the local user. */
  username?: string | undefined;
}
