"""Plain-text helpers the orchestrator and the specialists share: key terms and sentences, cited drafts, and
what kind of task a message is."""
