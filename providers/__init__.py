"""Provider adapters: verify, parse and map each provider's webhooks."""
