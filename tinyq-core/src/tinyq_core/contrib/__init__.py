"""First-party integrations, each an optional extra with a dependency of its own and built
only on the public plugin hooks (``tinyq_core.plugin``), as a third-party plugin would be."""
